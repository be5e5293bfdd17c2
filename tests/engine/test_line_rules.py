"""The purchase loop's line tests, specialised to each programme (engine/lines.py), answer as the
rules read (docs/rules.md): flags, then the blacklist, then the whitelist; then the first special
rule, else the first product rule, that matches. Written here plainly, for every shape of rules."""

from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.filters import Matcher
from engine.lines import LineRules
from engine.rules import Filters, LineMatch, ProductRule
from engine.transactions import LineItem

SKUS, PRODUCTS, CATEGORIES = ["S1", "S2", ""], ["P1", "P2", ""], ["wine", "tea", ""]
NAMES = ["Bottle DEPOSIT", "green tea", "", "Déposit"]

matches = st.builds(
    LineMatch,
    sku=st.lists(st.sampled_from(SKUS[:2]), max_size=2),
    category=st.lists(st.sampled_from(CATEGORIES[:2]), max_size=2),
    name_contains=st.lists(st.sampled_from(["deposit", "TEA", "dé"]), max_size=2),
    product_id=st.lists(st.sampled_from(PRODUCTS[:2]), max_size=2),
)
filters = st.builds(Filters, promotional_lines_earn=st.booleans(), member_discounted_lines_earn=st.booleans(),
                    no_barcode_lines_earn=st.booleans(), blacklist=matches, whitelist=matches)
product_rules = st.lists(st.builds(ProductRule, priority=st.sampled_from(["special", "product"]), match=matches,
                                   mode=st.just("fixed"), points=st.integers(1, 9)), max_size=3)
lines = st.builds(LineItem, sku=st.sampled_from(SKUS), product_id=st.sampled_from(PRODUCTS),
                  category=st.sampled_from(CATEGORIES), name=st.sampled_from(NAMES), paid_minor=st.just(100),
                  promotional=st.booleans(), member_discounted=st.booleans())


def matched(match: LineMatch, line: LineItem) -> bool:
    return (line.sku in match.sku or line.product_id in match.product_id or line.category in match.category
            or any(piece.casefold() in line.name.casefold() for piece in match.name_contains))


def listed(match: LineMatch) -> bool:
    return bool(match.sku or match.product_id or match.category or match.name_contains)


def earns(rules: Filters, line: LineItem) -> bool:
    if (line.promotional and not rules.promotional_lines_earn) or (
            line.member_discounted and not rules.member_discounted_lines_earn):
        return False
    if not line.sku and not rules.no_barcode_lines_earn:
        return False
    if listed(rules.blacklist) and matched(rules.blacklist, line):
        return False
    return not listed(rules.whitelist) or matched(rules.whitelist, line)


def claimed(rules: list[ProductRule], line: LineItem) -> int:
    """The claiming rule's place in the document (1 is the first), 0 for none."""
    ordered = [n for n in enumerate(rules, 1) if n[1].priority == "special"]
    ordered += [n for n in enumerate(rules, 1) if n[1].priority == "product"]
    return next((place for place, rule in ordered if matched(rule.match, line)), 0)


@settings(max_examples=300, deadline=None)
@given(rules=filters, products=product_rules, basket=st.lists(lines, min_size=1, max_size=6))
def test_specialised_line_tests_answer_as_the_rules_read(rules, products, basket):
    compiled = LineRules(rules, products, 100)
    for line in basket:
        line_filter, product_rules = compiled.filter, compiled.products
        assert (not line_filter.asks or line_filter.test(line)) == earns(rules, line), line
        found = product_rules.find(line) if product_rules.claims else None
        assert (found.position if found is not None else 0) == claimed(products, line), line


def test_a_programme_without_filters_or_product_rules_asks_nothing_of_a_line():
    compiled = LineRules(Filters(), [], 100)
    assert not compiled.filter.asks
    assert not compiled.products.claims


# Letters whose folds differ from plain lower case or leave ASCII (Kelvin sign, sharp s, dotted I),
# and long names (the compiled fold once had a 256-character buffer; it folds as it compares now).
PIECE_TEXT = st.text(alphabet="abDEpoSit ßKİé\u212a-1", max_size=5)
ASCII_NAMES = st.text(alphabet="abDEpoSit -1\x00\x7f", max_size=40)  # names the C path takes
NAME_TEXT = st.one_of(st.text(alphabet="abDEpoSit ßKİé\u212a-1", max_size=30), ASCII_NAMES,
                      st.builds(lambda head, tail: "x" * 250 + head + tail, st.sampled_from(["", "DEPO"]),
                                st.sampled_from(["SIT", "sit", "ß"])))


@settings(max_examples=400, deadline=None)
@example(pieces=["sit"], name="x" * 253 + "SIT")  # where the old buffer ended
@example(pieces=["sit"], name="x" * 254 + "SIT")
@example(pieces=["sit"], name="x" * 253 + "SIs")
@given(pieces=st.lists(PIECE_TEXT, min_size=1, max_size=3), name=NAME_TEXT)
def test_a_name_matches_as_its_casefold_reads(pieces, name):
    """Compiled, an ASCII name is folded and searched in C (engine/filters.pxd): the answer is
    Python's casefold and `in`, for any text."""
    line = LineItem(sku="S", product_id="P", category="c", name=name, paid_minor=1)
    expected = any(piece.casefold() in name.casefold() for piece in pieces)
    assert Matcher(LineMatch(name_contains=pieces)).matches(line) == expected


class Code(str):
    """A str subclass: compiled, a line's value that is not exactly a str is looked up by Python."""


# Codes of every str kind (Latin-1, two-byte, four-byte), sets past the compiled comparison's 8
# members, and members that are not str (a LineMatch built in Python is not type-checked).
CODE_TEXT = st.text(alphabet="S1 é\x00\u0113\U0001f600", max_size=3)  # "S\x00" and "S\u0113" share bytes
CODES = st.one_of(CODE_TEXT, CODE_TEXT.map(Code), CODE_TEXT.map(lambda code: "".join([code, ""])),
                  st.integers(0, 2))


@settings(max_examples=400, deadline=None)
@example(value="S1", values=["S1"])
@example(value="S\x00", values=["S\u0113"])  # the same first bytes in different kinds
@example(value="\u0113", values=["\u0101", "\u0113"])  # same length and kind, other letters
@example(value="S", values=["S1", 1])
@given(value=CODES, values=st.lists(CODES, max_size=12))
def test_a_sku_product_or_category_matches_as_a_set_lookup_reads(value, values):
    """Compiled, a str among a few is compared in C without hashing (engine/filters.pxd): the
    answer is Python's `in` of the set."""
    line = LineItem(sku=value, product_id=value, category=value, paid_minor=1)
    expected = value in frozenset(values)
    for match in (LineMatch(sku=values), LineMatch(product_id=values), LineMatch(category=values)):
        assert Matcher(match).matches(line) == expected, match


LONG_CODES = ["x" * n for n in (0, 1, 62, 63, 64, 65, 127, 128)] + ["y" * 64, "x" * 63 + "y"]


@settings(max_examples=200, deadline=None)
@given(value=st.sampled_from(LONG_CODES), values=st.lists(st.sampled_from(LONG_CODES), max_size=4))
def test_a_value_of_a_length_no_member_has_is_none_of_them(value, values):
    """Compiled, a value no member's length has is told apart by its length alone (filters.lengths_of:
    every length from 63 on shares a bit), and a value of a member's length is still compared."""
    line = LineItem(sku=value, product_id=value, category=value, paid_minor=1)
    for match in (LineMatch(sku=values), LineMatch(product_id=values), LineMatch(category=values)):
        assert Matcher(match).matches(line) == (value in values), match


def test_lengths_are_a_bit_each_and_every_bit_for_a_member_not_exactly_a_str():
    from engine.filters import lengths_of

    assert lengths_of(()) == 0
    assert lengths_of(("", "ab", "cd")) == 0b101
    assert lengths_of(("x" * 63, "x" * 70)) == 1 << 63  # compiled, shifted as 64 unsigned bits
    assert lengths_of(("a", 1)) == lengths_of((Code("a"),)) == (1 << 64) - 1
