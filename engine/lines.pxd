# Cython declarations for lines.py (see docs/decisions.md, "Typed engine objects").

cimport cython

from engine.filters cimport LineFilter, Matcher
from engine.products cimport ProductRules


@cython.final
cdef class LineRules:
    cdef public LineFilter filter
    cdef public ProductRules products
    cdef public Matcher named
    cdef public bint shortcut
