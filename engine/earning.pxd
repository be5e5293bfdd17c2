# Cython declarations for earning.py (see docs/decisions.md, "Typed engine objects").

cimport cython

from engine.bounds cimport room_to_earn
from engine.filters cimport LineFilter, Matcher
from engine.lines cimport LineRules
from engine.products cimport ProductRules, _Claim
from engine.programme cimport Programme
from engine.record_fields cimport LineItem, Member, Profile, Transaction
from engine.rounding cimport rounded
from engine.tiers cimport TierRule


@cython.final
cdef class PurchaseValue:
    cdef public object points, growth_from_spend, eligible, paid, carry, why, base


@cython.locals(value=PurchaseValue)
cdef PurchaseValue _valued(points, growth_from_spend, eligible, paid, carry, why, base)
cpdef bint purchase_fits(Member member, day, PurchaseValue value, growth) except -1
cpdef purchase_growth(Programme programme, PurchaseValue value, points)
# The amounts' sums are C integers: every caller's lines are within bounds, each amount in
# [0, LIMIT] and their sum at most LIMIT (scoring and refunds: bounds.input_problem; the quote:
# _check_request, its member prices only lower them), so no sum nears 64 bits; earning.py's
# overflowcheck directive makes one that did raise rather than wrap.
@cython.locals(tier=TierRule, line=LineItem, rules=LineRules, line_filter=LineFilter, products=ProductRules,
               named=Matcher, claim=_Claim, asks=bint, claiming=bint, shortcut=bint, flagged=bint, amount=cython.longlong, paid=cython.longlong,
               refused=cython.longlong, claimed_paid=cython.longlong, eligible=cython.longlong,
               unclaimed=cython.longlong, profile=Profile)
cpdef value_purchase(Programme programme, Member member, Transaction txn, day, per_order=*, bint explain=*)
