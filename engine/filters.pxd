# Cython declarations for filters.py (see docs/decisions.md, "Struct fields read as C fields"):
# a line test is a C call that reads the line as a C struct.

cimport cython

from engine.record_fields cimport LineItem


cdef class Matcher:
    cdef public frozenset sku, product_id, category
    cdef public tuple names
    cdef public object empty
    @cython.locals(name=str)
    cpdef matches(self, LineItem line)


cdef class LineFilter:
    cdef public object promotional, discounted, no_barcode, black, white, asks
    cdef public Matcher blacklist, whitelist
    cpdef test(self, LineItem line)
