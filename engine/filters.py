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
        # the same values listed, for among(): a tuple is read in C as an array
        self.skus, self.product_ids, self.categories = tuple(self.sku), tuple(self.product_id), tuple(self.category)
        self.sku_lengths, self.product_id_lengths = lengths_of(self.skus), lengths_of(self.product_ids)
        self.category_lengths = lengths_of(self.categories)
        self.names = tuple(n.casefold() for n in match.name_contains)
        self.empty = not (self.sku or self.product_id or self.category or self.names)

    def matches(self, line: LineItem) -> bool:
        """Asks only about what the match names (a set's truth costs less than a lookup): a
        purchase's every line goes through it."""
        if self.sku_lengths and among(line.sku, self.sku, self.skus, self.sku_lengths):
            return True
        if self.product_id_lengths and among(line.product_id, self.product_id, self.product_ids,
                                             self.product_id_lengths):
            return True
        if self.category_lengths and among(line.category, self.category, self.categories, self.category_lengths):
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


def among(value: str, values: frozenset[str], listed: tuple[str, ...], lengths: int) -> bool:
    """`value in values` (`listed` holds the same members, `lengths` is `lengths_of(listed)`).
    Compiled, a str among a few is compared with each in C (str_among_sized, filters.pxd), and not
    at all when no member has its length (a line's product id or category, mostly): a set lookup
    hashes the line's string, decoded fresh with each transaction, and costs more than comparing
    the lengths of a few."""
    found = str_among_sized(value, listed, lengths) if COMPILED else -1  # noqa: F821 (C, filters.pxd)
    return found == 1 if found >= 0 else value in values


def lengths_of(listed: tuple[str, ...]) -> int:
    """A bit for each length of the str listed (bit 63 for any of 63 or more), 0 for none listed:
    a str of no length here is none of them. Every bit when one is not exactly a str (it is
    compared as Python does)."""
    bits = 0
    for value in listed:
        if type(value) is not str:
            return _EVERY_LENGTH
        bits |= _ONE << min(len(value), 63)  # compiled, shifted as 64 unsigned bits (filters.pxd)
    return bits


_ONE = 1
_EVERY_LENGTH = 0xFFFF_FFFF_FFFF_FFFF


class LineFilter:
    def __init__(self, filters: Filters) -> None:
        self.promotional = filters.promotional_lines_earn
        self.discounted = filters.member_discounted_lines_earn
        self.no_barcode = filters.no_barcode_lines_earn
        self.blacklist = Matcher(filters.blacklist)
        self.whitelist = Matcher(filters.whitelist)
        self.black, self.white = not self.blacklist.empty, not self.whitelist.empty
        self.flagged = not (self.promotional and self.discounted and self.no_barcode)
        """False when no flag refuses a line."""
        self.asks = self.flagged or self.black or self.white
        """False when every line earns: the purchase loop then asks nothing."""

    def test(self, line: LineItem) -> bool:
        """Whether the line earns; the purchase loop asks only when `asks`."""
        if not self.flags_pass(line):
            return False
        if self.black and self.blacklist.matches(line):
            return False
        return not self.white or self.whitelist.matches(line)

    def flags_pass(self, line: LineItem) -> bool:
        """Whether the programme's flags let the line earn (promotional, member discounted, no
        barcode): all `test` asks of a line that no list names (lines.LineRules.named)."""
        if not self.promotional and line.promotional:
            return False
        if not self.discounted and line.member_discounted:
            return False
        return self.no_barcode or bool(line.sku)
