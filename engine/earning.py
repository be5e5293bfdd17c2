"""What a purchase's lines earn: eligible lines, product rules, the spend rule, multipliers, per-order points."""

from typing import TYPE_CHECKING, NamedTuple

from engine.filters import LineFilter
from engine.members import Member
from engine.products import ProductRules, _Claim
from engine.rules import Filters, ProductRule
from engine.transactions import LineItem, Transaction
from engine.types import Day

if TYPE_CHECKING:
    from engine.programme import Programme

__all__ = ["LineRules", "PurchaseValue", "value_purchase"]


class LineRules:
    """Whether a line earns and which product rule claims it depend only on the line's
    identity, so the answer is remembered in `known`, which the purchase loop reads directly."""

    def __init__(self, filters: Filters, products: list[ProductRule], minor_per_major: int) -> None:
        self.filter = LineFilter(filters)
        self.products = ProductRules(products, minor_per_major)
        self.known: dict[tuple, tuple[bool, _Claim | None]] = {}

    def classify(self, key: tuple, line: LineItem) -> tuple[bool, _Claim | None]:
        earns = self.filter.earns(line)
        answer = (earns, self.products.claim(line) if earns else None)
        if len(self.known) > 200_000:
            self.known.clear()
        self.known[key] = answer
        return answer


class PurchaseValue(NamedTuple):
    points: int
    """After multipliers and per-order points, before the anomaly rule."""
    growth_from_spend: int
    eligible: int
    paid: int
    carry: int


def value_purchase(programme: "Programme", member: Member, txn: Transaction, day: Day,
                   per_order: bool = True) -> PurchaseValue:
    """SPEC §3 steps 1-5 for one paid purchase. A purchase sent without lines is one
    order-level amount that only the spend rule sees."""
    rounding = programme.round
    claimed = unclaimed = eligible = paid = 0
    if txn.lines:
        known = programme.lines.known
        for line in txn.lines:
            amount = line.paid_minor
            paid += amount
            key = (line.sku, line.product_id, line.category, line.name, line.promotional,
                   line.member_discounted)  # built inline: this loop is the hottest in patron
            answer = known.get(key) or programme.lines.classify(key, line)
            earns, claim = answer
            if not earns:
                continue
            eligible += amount
            if claim is None:
                unclaimed += amount
            else:
                claimed += claim.points_for(line, rounding)
    else:
        paid = eligible = unclaimed = txn.amount_minor
    spend, carry = programme.spend_points(unclaimed, member.carry_minor if per_order else 0)
    tier = programme.ladder.tiers[member.tier]
    points = 0
    if tier.earns_points:
        numerator, denominator = programme.multipliers.factor(day, tier.name, member.profile.birthday)
        base = claimed + spend
        points = base if denominator == 1 == numerator else rounding(base * numerator, denominator)
        if per_order:
            points += programme.per_order
    return PurchaseValue(points, programme.growth_for_spend(eligible), eligible, paid, carry)
