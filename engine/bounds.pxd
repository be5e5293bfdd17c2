# Cython declarations for bounds.py (see docs/decisions.md, "Typed engine objects"): called by
# the scoring modules as C functions.

cpdef valid_time(ms)
cpdef input_problem(txn)
cpdef room_to_earn(member, day, points, growth, spend)
