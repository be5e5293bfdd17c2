# Cython declarations for rounding.py (see docs/decisions.md, "Typed engine objects"): the
# programme rounds the spend rule's points with a C call.

cpdef _floor(numerator, denominator)
cpdef _half_up(numerator, denominator)
cpdef rounded(numerator, denominator, bint halves_up)
