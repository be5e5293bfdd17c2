"""Which of a purchase's lines earn (filters) and which product rule claims each."""

from engine.filters import LineFilter
from engine.products import ProductRules
from engine.rules import Filters, ProductRule

__all__ = ["LineRules"]


class LineRules:
    """The two questions the purchase loop asks of each line, specialised to the rules: `earns`
    and `claim` are None when the programme has nothing to ask (every line earns; no product
    rules). Checking the rules' small sets directly costs less than remembering answers per line."""

    def __init__(self, filters: Filters, products: list[ProductRule], minor_per_major: int) -> None:
        self.filter = LineFilter(filters)
        self.products = ProductRules(products, minor_per_major)
        self.earns = self.filter.earns
        self.claim = self.products.claim
