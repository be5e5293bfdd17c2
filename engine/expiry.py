"""Points expiry: when a lot earned on a day expires, under each policy."""

from datetime import date

from engine.rules import ExpiryRules
from engine.types import NEVER, Day

__all__ = ["ExpiryPolicy"]


class ExpiryPolicy:
    def __init__(self, rules: ExpiryRules) -> None:
        self.policy = rules.policy
        self.years = rules.years or 0
        self.days = rules.days or 0
        self._cache: dict[Day, Day] = {}

    def expires(self, earned: Day) -> Day:
        """The day at whose 00:00 points earned on `earned` expire (NEVER for no expiry)."""
        found = self._cache.get(earned)
        if found is None:
            found = self._cache[earned] = self._compute(earned)
        return found

    def _compute(self, earned: Day) -> Day:
        if self.policy == "jan1_after_years":
            return date(date.fromordinal(earned).year + self.years + 1, 1, 1).toordinal()
        if self.policy == "rolling_days":
            return earned + self.days
        if self.policy == "annual_reset":
            return date(date.fromordinal(earned).year + 1, 1, 1).toordinal()
        return NEVER
