"""Member prices (docs/rules.md, "Tier benefits and quotes"): a tier's `discount_percent` on every line its
`discount_excludes` does not match, with the programme's one rounding step."""

from msgspec import Struct
from msgspec.structs import replace

from engine.filters import Matcher
from engine.rounding import Rounder
from engine.rules import Rules
from engine.transactions import LineItem

__all__ = ["PricedLine", "TierDiscounts"]


class PricedLine(Struct, frozen=True):
    """A basket line at the member price: `line` is what the purchase sends (its `paid_minor` the
    member price, `member_discounted` set when the discount lowered it); `price_minor` was asked."""

    line: LineItem
    price_minor: int


class TierDiscounts:
    """Per tier, the percent to pay and the lines never discounted; compiled once per rules version."""

    def __init__(self, rules: Rules) -> None:
        self.percents = [tier.discount_percent for tier in rules.tiers]
        self.excluded = [Matcher(tier.discount_excludes) for tier in rules.tiers]

    def price(self, tier: int, lines: list[LineItem], rounding: Rounder) -> list[PricedLine]:
        """Each line at R(paid × percent / 100). A line sent already `member_discounted` has its
        member price and is not discounted twice."""
        percent, excluded = self.percents[tier], self.excluded[tier]
        priced = []
        for line in lines:
            paid = line.paid_minor
            member_price = paid
            if percent < 100 and not line.member_discounted and not excluded.matches(line):
                member_price = rounding(paid * percent, 100)
            sent = line if member_price == paid else replace(line, paid_minor=member_price, member_discounted=True)
            priced.append(PricedLine(sent, paid))
        return priced
