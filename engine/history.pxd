# Cython declarations for history.py (see docs/decisions.md, "Typed engine objects"): a replay
# tells `remember` of nearly every purchase and event, so its dicts are C fields and their
# lookups C calls (as a plain class, each call read two attributes by name and asked dict.get).

cimport cython


@cython.final
cdef class RecentHistory:
    cdef dict _arrived, _days

    @cython.locals(arrived=list)
    cpdef remember(self, member_id, day, txn_id)


@cython.locals(recent=RecentHistory)
cpdef remember_in(history, member_id, day, txn_id)
cpdef _add(dict members, member_id, txn_id)
