# Cython declarations for balance.py (see docs/decisions.md, "Typed engine objects"): called by
# the scoring modules as C functions.

cpdef add_points(member, amount, expires)
cpdef hold_points(member, amount, release, expires, txn_id)
cpdef take_points(member, amount, allow_negative)
cpdef cancel_held(member, txn_id, amount)
