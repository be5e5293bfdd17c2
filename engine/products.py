"""Product rules: special rules, then product rules, claim a line and say what it earns."""

from engine.filters import Matcher
from engine.rounding import exact, rounded
from engine.rules import LineMatch, ProductRule
from engine.transactions import LineItem

__all__ = ["ProductRules"]


class _Claim:
    def __init__(self, rule: ProductRule, position: int, minor_per_major: int) -> None:
        self.position = position
        """The rule's place in the document (1 is the first): a why names it by that."""
        self.matcher = Matcher(rule.match)
        self.mode = rule.mode
        self.points = rule.points or 0
        self.unit_minor = rule.unit_minor or 1
        self.per_unit = rule.per_unit or 0
        percent = exact(rule.percent or 0)
        # paid × percent / 100 / minor_per_major, as one fraction for one rounding step
        self.percent_num = percent.numerator
        self.percent_den = percent.denominator * 100 * minor_per_major

    def points_for(self, line: LineItem, halves_up: bool) -> int:
        """`halves_up`: the programme's rounding is half_up (`Programme.halves_up`), else floor;
        `rounded` is a C call compiled, where the rounder the programme holds is a Python one."""
        if self.mode == "fixed":
            return self.points * max(line.quantity, 1)
        if self.mode == "per_amount":
            return rounded(line.paid_minor, self.unit_minor, halves_up) * self.per_unit
        return rounded(line.paid_minor * self.percent_num, self.percent_den, halves_up)


class ProductRules:
    def __init__(self, rules: list[ProductRule], minor_per_major: int) -> None:
        # numbered before ordering: a rule's why names its place in the document
        numbered = sorted(enumerate(rules, 1), key=lambda n: n[1].priority != "special")
        self.claims = [_Claim(rule, position, minor_per_major) for position, rule in numbered]
        # Most lines match none: one test against every rule's values together answers them.
        self.any_rule = Matcher(LineMatch(sku=[s for r in rules for s in r.match.sku],
                                          category=[c for r in rules for c in r.match.category],
                                          name_contains=[n for r in rules for n in r.match.name_contains],
                                          product_id=[p for r in rules for p in r.match.product_id]))

    def find(self, line: LineItem) -> _Claim | None:
        """The first special rule, else the first product rule (file order) that matches."""
        if not self.any_rule.matches(line):
            return None
        for found in self.claims:
            if found.matcher.matches(line):
                return found
        return None
