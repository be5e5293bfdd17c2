"""Which lines of a purchase earn: programme flags, blacklist and whitelist."""

from collections.abc import Callable

from engine.rules import Filters, LineMatch
from engine.transactions import LineItem

__all__ = ["LineFilter", "LineTest", "Matcher"]

LineTest = Callable[[LineItem], bool]


class Matcher:
    """A line matches on sku, product id or category (exact), or on a piece of its name
    (case-insensitive, because tills disagree on capitals)."""

    def __init__(self, match: LineMatch) -> None:
        self.sku = frozenset(match.sku)
        self.product_id = frozenset(match.product_id)
        self.category = frozenset(match.category)
        self.names = tuple(n.casefold() for n in match.name_contains)
        self.empty = not (self.sku or self.product_id or self.category or self.names)
        self.matches: LineTest = _matching(self.sku, self.product_id, self.category, self.names)
        """Asks only about what the match names: a purchase's every line goes through it."""


def _matching(skus: frozenset[str], product_ids: frozenset[str], categories: frozenset[str],
              names: tuple[str, ...]) -> LineTest:
    """A matcher's test, skipping the parts it leaves empty (a cell's truth costs less than a set lookup)."""
    def matches(line: LineItem) -> bool:
        if skus and line.sku in skus:
            return True
        if product_ids and line.product_id in product_ids:
            return True
        if categories and line.category in categories:
            return True
        if names:
            name = line.name.casefold()
            for piece in names:
                if piece in name:
                    return True
        return False
    return matches


class LineFilter:
    def __init__(self, filters: Filters) -> None:
        self.promotional = filters.promotional_lines_earn
        self.discounted = filters.member_discounted_lines_earn
        self.no_barcode = filters.no_barcode_lines_earn
        self.blacklist = Matcher(filters.blacklist)
        self.whitelist = Matcher(filters.whitelist)
        self.earns: LineTest | None = self._test()
        """None when every line earns: the purchase loop then asks nothing."""

    def _test(self) -> LineTest | None:
        refuse_promotional, refuse_discounted = not self.promotional, not self.discounted
        refuse_no_barcode = not self.no_barcode
        black = None if self.blacklist.empty else self.blacklist.matches
        white = None if self.whitelist.empty else self.whitelist.matches
        if not (refuse_promotional or refuse_discounted or refuse_no_barcode or black or white):
            return None

        def earns(line: LineItem) -> bool:
            if refuse_promotional and line.promotional:
                return False
            if refuse_discounted and line.member_discounted:
                return False
            if refuse_no_barcode and not line.sku:
                return False
            if black is not None and black(line):
                return False
            return white is None or white(line)
        return earns
