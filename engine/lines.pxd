# Cython declarations for lines.py (see docs/decisions.md, "Typed engine objects").

from engine.filters cimport LineFilter
from engine.products cimport ProductRules


cdef class LineRules:
    cdef public LineFilter filter
    cdef public ProductRules products
