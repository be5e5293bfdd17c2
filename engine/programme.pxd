# Cython declarations for programme.py (see docs/decisions.md, "Typed engine objects"): what
# scoring reads of a programme on every transaction, read directly by typed references.

cimport cython

from engine.anomaly cimport AnomalyRule
from engine.calendar cimport LocalCalendar
from engine.expiry cimport ExpiryPolicy
from engine.lines cimport LineRules
from engine.multipliers cimport MultiplierTable
from engine.rounding cimport rounded
from engine.tags cimport TagRules
from engine.tiers cimport TierLadder


@cython.final
cdef class Programme:
    cdef public object rules, version, round, carries, spend_unit, spend_per_unit, per_order
    cdef public object pending_days, growth_from_points, growth_num, growth_den, growth_unit
    cdef public object growth_per_unit, events, max_lateness, allow_negative, enrolls_unknown
    cdef public object default_tiers, coupons, redemption_window, discounts, why
    cdef public LocalCalendar calendar
    cdef public LineRules lines
    cdef public MultiplierTable multipliers
    cdef public ExpiryPolicy expiry
    cdef public AnomalyRule anomaly
    cdef public TierLadder ladder
    cdef public TagRules tags
    cdef public bint halves_up

    cpdef growth_for_points(self, points)
    cpdef growth_for_spend(self, eligible)
    cpdef spend_points(self, unclaimed, carry)
    cpdef default_tier(self, channel)
