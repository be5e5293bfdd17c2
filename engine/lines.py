"""Which of a purchase's lines earn (filters) and which product rule claims each, remembered per line."""

from engine.filters import LineFilter
from engine.products import ProductRules, _Claim
from engine.rules import Filters, ProductRule
from engine.transactions import LineItem

__all__ = ["LineRules"]


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
