# Cython declarations for earning.py (see docs/decisions.md, "Typed engine objects").

cimport cython

from engine.programme cimport Programme
from engine.tiers cimport TierRule


cpdef purchase_growth(Programme programme, value, points)
@cython.locals(tier=TierRule)
cpdef value_purchase(Programme programme, member, txn, day, per_order=*)
