"""The programme's one rounding step R, in integer arithmetic so that no float ever touches points."""

from collections.abc import Callable
from fractions import Fraction

__all__ = ["Rounder", "exact", "rounded", "rounder"]

Rounder = Callable[[int, int], int]
"""R(numerator / denominator) for a non-negative numerator and a positive denominator."""


def _floor(numerator: int, denominator: int) -> int:
    return numerator // denominator


def _half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def rounder(mode: str) -> Rounder:
    """`carry` rounds down: the spend below one unit is carried, not rounded."""
    return _half_up if mode == "half_up" else _floor


def rounded(numerator: int, denominator: int, halves_up: bool) -> int:
    """What `rounder` of a mode gives, `halves_up` for half_up's: for a compiled caller, a C call
    where the rounder it holds is a Python one (the spend rule's points, each purchase)."""
    return _half_up(numerator, denominator) if halves_up else _floor(numerator, denominator)


def exact(value: object) -> Fraction:
    """A rules number (int or Decimal) as an exact fraction."""
    return Fraction(str(value))
