# Cython declarations for anomaly.py (see docs/decisions.md, "Typed engine objects").

cdef class AnomalyRule:
    cdef public object threshold, action, blocks, keep_days

    cpdef judge(self, member, day, points)
