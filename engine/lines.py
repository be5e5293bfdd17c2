"""Which of a purchase's lines earn (filters) and which product rule claims each."""

from engine.filters import LineFilter
from engine.products import ProductRules
from engine.rules import Filters, ProductRule

__all__ = ["LineRules"]


class LineRules:
    """The two questions the purchase loop asks of each line, specialised to the rules: the
    filter's `test` (asked only when its `asks`: some line may not earn) and the product rules'
    `find` (asked only when there are `claims`). Checking the rules' small sets directly costs
    less than remembering answers per line."""

    def __init__(self, filters: Filters, products: list[ProductRule], minor_per_major: int) -> None:
        self.filter = LineFilter(filters)
        self.products = ProductRules(products, minor_per_major)
