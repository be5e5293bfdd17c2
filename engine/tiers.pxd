# Cython declarations for tiers.py (see docs/decisions.md, "Typed engine objects").

cimport cython

from engine.record_fields cimport Member
from engine.window_sums cimport WindowSums


@cython.final
cdef class TierRule:
    cdef public object index, name, metric, window, threshold, validity, extension, next_day, earns_points
    cdef public object downgrade_to, permanent, resets_growth
    cdef public Py_ssize_t slot  # an index into the ladder's sums (-1: none)
    cdef public bint single  # judged on single purchases
    cdef public Py_ssize_t lifetime_sum  # which lifetime sum (tiers.py's _LIFETIME_SUMS; -1: none)


@cython.final
cdef class TierLadder:
    cdef public list tiers, names, above
    cdef public object on_change, on_expiry, periodic, single_minimum, keep_days, paid_skus
    cdef public frozenset window_metrics
    cdef public bint batch, windows_earned
    cdef public WindowSums sums

    @cython.locals(windows=dict, days=dict)
    cpdef record(self, Member member, metric, day, amount)
    cpdef record_single(self, Member member, day, eligible, txn_id)
    @cython.locals(which=Py_ssize_t)
    cpdef value(self, Member member, TierRule rule, as_of)
    cpdef holds(self, Member member, TierRule rule, as_of)
