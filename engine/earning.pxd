# Cython declarations for earning.py (see docs/decisions.md, "Typed engine objects").

cimport cython

from engine.filters cimport LineFilter
from engine.products cimport ProductRules, _Claim
from engine.programme cimport Programme
from engine.record_fields cimport LineItem, Member, Transaction
from engine.tiers cimport TierRule


cdef class PurchaseValue:
    cdef public object points, growth_from_spend, eligible, paid, carry, why, base


cpdef purchase_growth(Programme programme, PurchaseValue value, points)
@cython.locals(tier=TierRule, line=LineItem, line_filter=LineFilter, products=ProductRules, claim=_Claim,
               asks=bint, claiming=bint)
cpdef value_purchase(Programme programme, Member member, Transaction txn, day, per_order=*)
