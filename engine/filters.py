"""Which lines of a purchase earn: programme flags, blacklist and whitelist."""

from engine.rules import Filters, LineMatch
from engine.transactions import LineItem

__all__ = ["LineFilter", "Matcher"]


class Matcher:
    """A line matches on sku, product id or category (exact), or on a piece of its name
    (case-insensitive, because tills disagree on capitals)."""

    def __init__(self, match: LineMatch) -> None:
        self.sku = frozenset(match.sku)
        self.product_id = frozenset(match.product_id)
        self.category = frozenset(match.category)
        self.names = tuple(n.casefold() for n in match.name_contains)
        self.empty = not (self.sku or self.product_id or self.category or self.names)

    def matches(self, line: LineItem) -> bool:
        if line.sku in self.sku or line.product_id in self.product_id or line.category in self.category:
            return True
        if self.names:
            name = line.name.casefold()
            return any(piece in name for piece in self.names)
        return False


class LineFilter:
    def __init__(self, filters: Filters) -> None:
        self.promotional = filters.promotional_lines_earn
        self.discounted = filters.member_discounted_lines_earn
        self.no_barcode = filters.no_barcode_lines_earn
        self.blacklist = Matcher(filters.blacklist)
        self.whitelist = Matcher(filters.whitelist)

    def earns(self, line: LineItem) -> bool:
        if line.promotional and not self.promotional:
            return False
        if line.member_discounted and not self.discounted:
            return False
        if not line.sku and not self.no_barcode:
            return False
        if not self.blacklist.empty and self.blacklist.matches(line):
            return False
        return self.whitelist.empty or self.whitelist.matches(line)
