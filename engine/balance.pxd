# Cython declarations for balance.py (see docs/decisions.md, "Typed engine objects"): called by
# the scoring modules as C functions.

cimport cython

from engine.record_fields cimport Held, Lot, Member


@cython.locals(lot=Lot, latest=Lot)
cpdef add_points(Member member, amount, expires, bint given_back=*)
cpdef hold_points(Member member, amount, release, expires, txn_id)
@cython.locals(lot=Lot)
cpdef take_points(Member member, amount, allow_negative)
@cython.locals(held=Held)
cpdef cancel_held(Member member, txn_id, amount)
