"""Tier windows and validity periods: their words in the rules, and the days they cover."""

import re

from msgspec import Struct

from engine.calendar import add_months, end_of_month
from engine.types import Day

__all__ = ["Period", "parse_validity", "parse_window", "valid_through", "window_start"]

_AMOUNT = re.compile(r"^([1-9][0-9]{0,3}) (days|months)( end_of_month)?$")


class Period(Struct, frozen=True):
    """`unit` is "lifetime" / "permanent" (no end), "days" or "months"."""

    unit: str
    count: int = 0
    end_of_month: bool = False

    @property
    def endless(self) -> bool:
        return self.unit in ("lifetime", "permanent")


def parse_window(text: str) -> Period | None:
    """`lifetime`, `N months` or `N days`; None when the words mean nothing."""
    if text == "lifetime":
        return Period("lifetime")
    found = _AMOUNT.match(text)
    if found is None or found.group(3):
        return None
    return Period(found.group(2), int(found.group(1)))


def parse_validity(text: str) -> Period | None:
    """`permanent`, `N days`, `N months` or `N months end_of_month`; None otherwise."""
    if text == "permanent":
        return Period("permanent")
    found = _AMOUNT.match(text)
    if found is None or (found.group(3) and found.group(2) != "months"):
        return None
    return Period(found.group(2), int(found.group(1)), bool(found.group(3)))


def window_start(window: Period, as_of: Day) -> Day:
    """First day a window covers when judged as of `as_of` (inclusive): as of 25 Aug 2020,
    "12 months" starts on 26 Aug 2019. Lifetime starts at day 0."""
    if window.unit == "days":
        return as_of - window.count + 1
    if window.unit == "months":
        return add_months(as_of, -window.count) + 1
    return 0


def valid_through(validity: Period, upgraded: Day) -> Day:
    """Last valid day of a tier entered on `upgraded`; 0 means permanent."""
    if validity.unit == "days":
        return upgraded + validity.count - 1
    if validity.unit == "months":
        later = add_months(upgraded, validity.count)
        return end_of_month(later) if validity.end_of_month else later - 1
    return 0


def longest_days(period: Period) -> int:
    """An upper bound of the days a period can span, for pruning what it no longer needs."""
    return period.count * (31 if period.unit == "months" else 1) + 1
