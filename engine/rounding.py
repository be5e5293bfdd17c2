"""The programme's one rounding step R, in integer arithmetic so that no float ever touches points."""

from collections.abc import Callable
from fractions import Fraction

__all__ = ["Rounder", "exact", "rounder"]

Rounder = Callable[[int, int], int]
"""R(numerator / denominator) for a non-negative numerator and a positive denominator."""


def _floor(numerator: int, denominator: int) -> int:
    return numerator // denominator


def _half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def rounder(mode: str) -> Rounder:
    """`carry` rounds down: the spend below one unit is carried, not rounded."""
    return _half_up if mode == "half_up" else _floor


def exact(value: object) -> Fraction:
    """A rules number (int or Decimal) as an exact fraction."""
    return Fraction(str(value))
