# Cython declarations for lines.py (see docs/decisions.md, "Typed engine objects").

cdef class LineRules:
    cdef public object filter, products, earns, claim
