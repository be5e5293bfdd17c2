"""When points may be spent (docs/rules.md, "Spending"): redemption dates, days of the month, weekdays."""

from datetime import date

from engine.rules import RedemptionRules
from engine.types import Day

__all__ = ["RedemptionWindow"]

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class RedemptionWindow:
    """When any list is not empty, a local day must match an entry of one of them."""

    def __init__(self, rules: RedemptionRules) -> None:
        self.dates = frozenset(d.toordinal() for d in rules.dates)
        self.days_of_month = frozenset(rules.days_of_month)
        self.weekdays = frozenset(_WEEKDAYS.index(w) for w in rules.weekdays)
        self.always = not (self.dates or self.days_of_month or self.weekdays)

    def allows(self, day: Day) -> bool:
        if self.always or day in self.dates:
            return True
        local = date.fromordinal(day)
        return local.day in self.days_of_month or local.weekday() in self.weekdays
