# Cython declarations for bounds.py (see docs/decisions.md, "Typed engine objects"): called by
# the scoring modules as C functions; the transaction, its lines and the member read as C structs
# (record_fields.pxd). The sums of checked figures are C integers (docs/decisions.md, "Scoring's
# checks"): each operand is within ±LIMIT there, so no sum nears 64 bits.

cimport cython

from engine.record_fields cimport LineItem, Member, Transaction

cdef long long _MOST


cpdef valid_time(ms)
@cython.locals(line=LineItem, paid=cython.longlong, too_large=cython.bint)
cpdef input_problem(Transaction txn)
cpdef all_fit(tuple values)
@cython.locals(day_points=dict)
cpdef room_to_earn(Member member, day, points, growth, spend, from_pending=*)
cpdef room_to_restore(Member member, points)
cdef long long _sum(long long a, long long b) noexcept
cdef bint _sum_fits(long long a, long long b) noexcept
cdef bint _sum3_fits(long long a, long long b, long long c) noexcept
