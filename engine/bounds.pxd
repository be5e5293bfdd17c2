# Cython declarations for bounds.py (see docs/decisions.md, "Typed engine objects"): called by
# the scoring modules as C functions; the transaction, its lines and the member read as C structs
# (record_fields.pxd).

cimport cython

from engine.record_fields cimport LineItem, Member, Transaction


cpdef valid_time(ms)
@cython.locals(line=LineItem)
cpdef input_problem(Transaction txn)
cpdef all_fit(tuple values)
@cython.locals(day_points=dict)
cpdef room_to_earn(Member member, day, points, growth, spend)
