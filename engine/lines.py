"""Which of a purchase's lines earn (filters) and which product rule claims each."""

from engine.filters import LineFilter, Matcher
from engine.products import ProductRules
from engine.rules import Filters, LineMatch, ProductRule

__all__ = ["LineRules"]


class LineRules:
    """The two questions the purchase loop asks of each line, specialised to the rules: the
    filter's `test` (asked only when its `asks`: some line may not earn) and the product rules'
    `find` (asked only when there are `claims`). Checking the rules' small sets directly costs
    less than remembering answers per line.

    `named` matches every value the blacklist and the product rules name, together. A line it
    does not match (nearly every line) is on no blacklist and claimed by no rule, so only the
    filter's flags can refuse it: one test of the line instead of the blacklist's and the product
    rules' each. `shortcut` is False when a whitelist decides (a line it does not name is refused)
    or when there is nothing to name (the loop asks nothing then anyway)."""

    def __init__(self, filters: Filters, products: list[ProductRule], minor_per_major: int) -> None:
        self.filter = LineFilter(filters)
        self.products = ProductRules(products, minor_per_major)
        black = filters.blacklist
        self.named = Matcher(LineMatch(sku=black.sku + [s for r in products for s in r.match.sku],
                                       category=black.category + [c for r in products for c in r.match.category],
                                       name_contains=black.name_contains + [n for r in products
                                                                           for n in r.match.name_contains],
                                       product_id=black.product_id + [p for r in products
                                                                     for p in r.match.product_id]))
        self.shortcut = self.filter.whitelist.empty and not self.named.empty
