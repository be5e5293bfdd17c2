"""Which lines of a purchase earn: programme flags, blacklist and whitelist."""

from engine.rules import Filters, LineMatch
from engine.transactions import LineItem

try:
    import cython

    COMPILED = cython.compiled
except ImportError:  # the pure engine needs no Cython installed
    COMPILED = False

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
        """Asks only about what the match names (a set's truth costs less than a lookup): a
        purchase's every line goes through it."""
        if self.sku and line.sku in self.sku:
            return True
        if self.product_id and line.product_id in self.product_id:
            return True
        if self.category and line.category in self.category:
            return True
        if self.names:
            # Compiled, an ASCII name (nearly every till's) is folded and searched in C without
            # making its folded copy: ascii_folded_in answers 1 or 0, or -1 for any other name
            # (folded below, as Python does). ASCII folds by A-Z alone, and a piece still not ASCII
            # once folded is in no ASCII text.
            found = ascii_folded_in(line.name, self.names) if COMPILED else -1  # noqa: F821 (C, filters.pxd)
            if found >= 0:
                return found == 1
            name = line.name.casefold()
            for piece in self.names:
                if piece in name:
                    return True
        return False


class LineFilter:
    def __init__(self, filters: Filters) -> None:
        self.promotional = filters.promotional_lines_earn
        self.discounted = filters.member_discounted_lines_earn
        self.no_barcode = filters.no_barcode_lines_earn
        self.blacklist = Matcher(filters.blacklist)
        self.whitelist = Matcher(filters.whitelist)
        self.black, self.white = not self.blacklist.empty, not self.whitelist.empty
        self.asks = not (self.promotional and self.discounted and self.no_barcode) or self.black or self.white
        """False when every line earns: the purchase loop then asks nothing."""

    def test(self, line: LineItem) -> bool:
        """Whether the line earns; the purchase loop asks only when `asks`."""
        if not self.promotional and line.promotional:
            return False
        if not self.discounted and line.member_discounted:
            return False
        if not self.no_barcode and not line.sku:
            return False
        if self.black and self.blacklist.matches(line):
            return False
        return not self.white or self.whitelist.matches(line)
