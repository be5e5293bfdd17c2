# Cython declarations for events.py (see docs/decisions.md, "Typed engine objects"): scoring calls
# an event's cap and count as C functions, which call the calendar's month as one.

from engine.calendar cimport month_index
from engine.record_fields cimport Member


cpdef bint is_capped(Member member, rule, day) except -1
cpdef count_event(Member member, rule, day, keep_days)
