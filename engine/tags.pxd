# Cython declarations for tags.py (see docs/decisions.md, "Typed engine objects" and "Midnight
# compiled"): a midnight visit judges every tag rule; the rules and the member typed, so their
# fields are read as C struct members and the window sums are C calls.

cimport cython

from engine.record_fields cimport Member
from engine.window_sums cimport WindowSums


@cython.final
cdef class TagRule:
    cdef public object name, condition, amount, window, slot


@cython.final
cdef class TagRules:
    cdef public WindowSums sums
    cdef public list rules
    cdef public object names, window_metrics, counts_purchases, keep_days

    @cython.locals(rule=TagRule, held=list)
    cpdef judged(self, Member member, as_of)
    @cython.locals(days=dict)
    cpdef _oldest_in_window(self, Member member, TagRule rule, as_of)
