# Cython declarations for multipliers.py (see docs/decisions.md, "Typed engine objects").

cdef class MultiplierTable:
    cdef public list compiled
    cdef public object multiply, uses_birthday
    cdef public dict _cache

    cpdef factor(self, day, tier, birthday)
