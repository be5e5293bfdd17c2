# Cython declarations for coupon_stock.py (see docs/decisions.md, "Typed engine objects"): a
# take (every coupon issued, an enrollment's welcome coupon among them) asks its limit and its
# refill as C calls.

cimport cython


@cython.final
cdef class CountedStock:
    cdef public dict taken
    cdef public object granted, refill

    cpdef limit(self, coupon_id, inventory)
    cpdef take(self, coupon_id, inventory)
    cpdef _refilled(self, coupon_id, count, inventory)


@cython.locals(counted=CountedStock)
cpdef take_from(stock, coupon_id, inventory)
