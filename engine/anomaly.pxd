# Cython declarations for anomaly.py (see docs/decisions.md, "Typed engine objects").

cimport cython

from engine.record_fields cimport Member


@cython.final
cdef class AnomalyRule:
    cdef public object threshold, action, blocks, keep_days

    @cython.locals(counters=dict)
    cpdef judge(self, Member member, day, points)
    cpdef _crossing(self)
    cpdef _while_abnormal(self)
    cpdef _forget_old_days(self, dict counters, day)
    cdef bint _earns(self, Member member, day, total, points) except -1


cpdef bint counted_in_day(points, reason) except -1
