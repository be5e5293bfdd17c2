# Cython declarations for bounds.py (see docs/decisions.md, "Typed engine objects"): called by
# the scoring modules as C functions; the transaction, its lines and the member read as C structs
# (record_fields.pxd). The sums of checked figures are C integers (docs/decisions.md, "Scoring's
# checks"): each operand is within ±LIMIT there, so no sum nears 64 bits.

cimport cython

from engine.record_fields cimport LineItem, Member, Transaction

cdef extern from *:
    """
    /* Where an exact int lies against [0, most] (most >= 0): -1 below 0, 1 past `most`, else 0.
       One past a long long lies past every bound on its sign's side; the conversion cannot fail
       for an exact int (the caller checked the type). */
    static inline int patron_place(PyObject *value, long long most) {
        int overflow;
        long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow)
            return overflow;
        return number < 0 ? -1 : number > most ? 1 : 0;
    }
    """
    int place "patron_place" (object value, long long most)


cdef long long _MOST
cdef bint COMPILED


cpdef valid_time(ms)
@cython.locals(line=LineItem, paid=cython.longlong, too_large=cython.bint, amount_at=int, quantity_at=int)
cpdef input_problem(Transaction txn)
cpdef all_fit(tuple values)
@cython.locals(line=LineItem)
cpdef refund_amount(Transaction txn)
cpdef room_to_earn(Member member, day, points, growth, spend, from_pending=*)
@cython.locals(day_points=dict)
cdef bint _room_for(Member member, day, long long points, long long growth, long long spend,
                    long long from_pending) except -1
cpdef room_to_restore(Member member, points)
cdef inline int _place(value) noexcept
cdef long long _sum(long long a, long long b) noexcept
cdef bint _sum_fits(long long a, long long b) noexcept
cdef bint _sum3_fits(long long a, long long b, long long c) noexcept
