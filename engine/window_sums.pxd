# Cython declarations for window_sums.py (see docs/decisions.md, "Typed engine objects"): its
# classes compiled as extension types, so that a typed reference reads an attribute directly.

cimport cython

from engine.record_fields cimport Member

@cython.final
cdef class _Window:
    cdef public object metric, period
    cdef public dict starts

    cpdef start(self, as_of)


@cython.final
cdef class WindowSums:
    cdef public list windows
    cdef public dict _by_metric, _entries

    @cython.locals(window=_Window, windows=dict, days=dict, mine=list)
    cpdef total(self, Member member, slot, as_of)
    cpdef added(self, Member member, metric, days, day, amount)
    cpdef pruned(self, Member member, metric, days, day, amount)


cpdef _slid(dict days, list entry, as_of, start)
cpdef _between(dict days, first, end)
