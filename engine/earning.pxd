# Cython declarations for earning.py (see docs/decisions.md, "Typed engine objects").

cimport cython

from engine.programme cimport Programme
from engine.record_fields cimport LineItem, Member, Transaction
from engine.tiers cimport TierRule


cpdef purchase_growth(Programme programme, value, points)
@cython.locals(tier=TierRule, line=LineItem)
cpdef value_purchase(Programme programme, Member member, Transaction txn, day, per_order=*)
