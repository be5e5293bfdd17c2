# Cython declarations for products.py (see docs/decisions.md, "Struct fields read as C fields"):
# finding a line's product rule and its points are C calls that read the line as a C struct.

cimport cython

from engine.filters cimport Matcher
from engine.record_fields cimport LineItem
from engine.rounding cimport rounded


@cython.final
cdef class _Claim:
    cdef public object position, mode, points, unit_minor, per_unit, percent_num, percent_den
    cdef public Matcher matcher
    cpdef points_for(self, LineItem line, bint halves_up)


@cython.final
cdef class ProductRules:
    cdef public list claims
    cdef public Matcher any_rule
    @cython.locals(found=_Claim)
    cpdef _Claim find(self, LineItem line)
