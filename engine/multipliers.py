"""Point multipliers by tier, birthday, dates, weekdays and date ranges, combined by max or multiply."""

import math
from datetime import date
from fractions import Fraction

from engine.calendar import weekday
from engine.rounding import exact
from engine.rules import Multiplier
from engine.types import Day

__all__ = ["MultiplierTable"]

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Compiled:
    def __init__(self, multiplier: Multiplier) -> None:
        when = multiplier.when
        self.factor = exact(multiplier.factor)
        self.tiers = frozenset(when.tiers) if when.tiers is not None else None
        self.birthday = when.birthday
        self.dates = frozenset(d.toordinal() for d in when.dates) if when.dates is not None else None
        self.weekdays = frozenset(_WEEKDAYS.index(w) for w in when.weekdays) if when.weekdays else None
        self.first = when.from_.toordinal() if when.from_ else None
        self.last = when.to.toordinal() if when.to else None

    def applies(self, day: Day, tier: str, birthday: str) -> bool:
        if self.tiers is not None and tier not in self.tiers:
            return False
        if self.birthday is not None and not _celebrates(birthday, day, self.birthday):
            return False
        if self.dates is not None and day not in self.dates:
            return False
        if self.weekdays is not None and weekday(day) not in self.weekdays:
            return False
        if self.first is not None and day < self.first:
            return False
        return self.last is None or day <= self.last


def _celebrates(birthday: str, day: Day, scope: str) -> bool:
    """Birthdays are MM-DD; 29 February is celebrated on 28 February in other years."""
    if len(birthday) != 5:
        return False
    today = date.fromordinal(day)
    month, dom = int(birthday[:2]), int(birthday[3:])
    if scope == "month":
        return today.month == month
    if (month, dom) == (2, 29) and today.month == 2 and today.day == 28:
        return not _leap(today.year)
    return (today.month, today.day) == (month, dom)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


class MultiplierTable:
    """Factors are exact fractions; the answer for a (day, tier, birthday) is remembered
    because a batch asks the same question thousands of times."""

    def __init__(self, multipliers: list[Multiplier], stacking: str) -> None:
        self.compiled = [_Compiled(m) for m in multipliers]
        self.multiply = stacking == "multiply"
        self.uses_birthday = any(c.birthday for c in self.compiled)
        # day -> tier -> birthday -> answer: three lookups of an int and two str cost less than
        # making a tuple key, hashing it and comparing it with the one held
        self._cache: dict[Day, dict[str, dict[str, tuple[int, int, tuple[int, ...]]]]] = {}
        self._held = 0

    def factor(self, day: Day, tier: str, birthday: str) -> tuple[int, int, tuple[int, ...]]:
        """(numerator, denominator) of the combined factor, (1, 1) when none applies, and the
        places of the multipliers that made it (0 is the first), for the purchase's why."""
        if self._held > 100_000:
            self._cache.clear()
            self._held = 0
        key = birthday if self.uses_birthday else ""
        tiers = self._cache.get(day)
        birthdays = None if tiers is None else tiers.get(tier)
        found = None if birthdays is None else birthdays.get(key)
        if found is None:
            found = self._combine(day, tier, birthday)
            # stored by one write of a dict made whole, so that an error (in working the answer
            # out, or hashing a key) leaves no empty dict behind, held and never counted
            if birthdays is not None:
                birthdays[key] = found
            elif tiers is not None:
                tiers[tier] = {key: found}
            else:
                self._cache[day] = {tier: {key: found}}
            self._held += 1
        return found

    def _combine(self, day: Day, tier: str, birthday: str) -> tuple[int, int, tuple[int, ...]]:
        applied = tuple(i for i, c in enumerate(self.compiled) if c.applies(day, tier, birthday))
        if not applied:
            return (1, 1, ())
        factors = [self.compiled[i].factor for i in applied]
        combined = math.prod(factors, start=Fraction(1)) if self.multiply else max(factors)
        return (combined.numerator, combined.denominator, applied)
