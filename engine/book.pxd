# Cython declarations for book.py (see docs/decisions.md, "Typed engine objects").

from engine.programme cimport Programme
from engine.record_fields cimport Member


cdef class Book:
    cdef public Programme programme
    cdef public object members, txns, today, ledger, dirty, history, awake, wakeups, tag_counts, notices, stock

    cpdef write_earned(self, Member member, day, ref, kind, points, pending, growth, why)
