# Cython declarations for book.py (see docs/decisions.md, "Typed engine objects").

cimport cython

from engine.programme cimport Programme
from engine.record_fields cimport Member


@cython.final
cdef class Book:
    cdef public Programme programme
    cdef public object members, txns, today, history, wakeups, tag_counts, notices, stock
    cdef public list ledger
    cdef public dict dirty
    cdef public set awake
    cdef public bint keep_outputs

    cpdef write_earned(self, Member member, day, ref, kind, points, pending, growth, why)
    cpdef write_coupon(self, Member member, day, cause, ref, kind, coupon_code)
    cpdef notify_detail(self, kind, member_id, day, detail)
    cpdef today_for(self, Member member)
    cpdef as_of(self, Member member, day)


@cython.locals(table=dict)
cpdef found(mapping, key)
