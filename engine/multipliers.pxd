# Cython declarations for multipliers.py (see docs/decisions.md, "Typed engine objects").

cimport cython


@cython.final
cdef class MultiplierTable:
    cdef public list compiled
    cdef public object multiply
    cdef public bint uses_birthday
    cdef public dict _cache
    cdef public Py_ssize_t _held

    @cython.locals(tiers=dict, birthdays=dict)
    cpdef factor(self, day, tier, birthday)
