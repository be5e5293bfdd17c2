# Cython declarations for expiry.py (see docs/decisions.md, "Typed engine objects").

cimport cython

@cython.final
cdef class ExpiryPolicy:
    cdef public object policy, years, days
    cdef public dict _cache

    cpdef expires(self, earned)
