"""SPEC §11.6 and the worked examples a quote answers (§11.3 points as cash, §11.5 coupon values):
member prices after the tier discount, the points the purchase earns, the largest points-as-cash
deduction, usable coupons, stored value; and the invariants: a quote changes nothing, and what
it says is what the transactions then do."""

import copy

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.book import Book
from engine.errors import InvalidRequestError, UnknownMemberError
from engine.spending.quote import quote
from engine.transactions import LineItem, Transaction
from tests.builders import adjust, book, buy, line, ms, pay, recharge, redeem, score, score_one
from tests.engine.test_invariants import VARIANTS, fresh, lines, streams
from tests.engine.test_redemption import RATIO, STEPS  # SPEC §11.3's worked examples

DAY = "2026-03-04 10:00"  # a Wednesday
AT = ms(DAY)
TIERS = """
[[tiers]]
name = "Basic"

[[tiers]]
name = "Gold"
metric = "points"
threshold = 1000000
discount_percent = 90
[tiers.discount_excludes]
category = ["infant_formula"]
sku = ["GIFT-CARD"]
name_contains = ["deposit"]
product_id = ["P-TOBACCO"]
"""
SPEND = "[points.spend]\nunit_minor = 100\nper_unit = 1\n"


def gold(body: str = SPEND, top: str = "", points: int = 0):
    """A book with member m1 in Gold (90 %), with `points` spendable."""
    target = book(top, body, TIERS)
    score(target, adjust("a0", "m1", "2026-03-04 08:00", points or 1))
    target.members["m1"].tier = 1
    return target


def basic(body: str, points: int):
    target = book(body=body)
    score(target, adjust("a0", "m1", "2026-03-04 08:00", points))
    return target


def prices(answer) -> list[tuple[int, int, bool]]:
    return [(p.price_minor, p.line.paid_minor, p.line.member_discounted) for p in answer.lines]


# -- member prices (tier discount_percent / discount_excludes) --------------------------


def test_a_tier_discount_prices_each_line_and_never_touches_excluded_ones():
    target = gold()
    basket = [line(10000, category="grocery"), line(5000, category="infant_formula"), line(2000, sku="GIFT-CARD"),
              line(300, name="Bottle DEPOSIT"), line(700, product_id="P-TOBACCO"), line(999)]
    answer = quote(target, "m1", basket, AT)
    assert prices(answer) == [(10000, 9000, True), (5000, 5000, False), (2000, 2000, False), (300, 300, False),
                              (700, 700, False), (999, 899, True)]
    assert (answer.tier, answer.total_minor, answer.member_total_minor) == ("Gold", 18999, 17899)


@pytest.mark.parametrize(("rounding", "member_price"), [("floor", 909), ("half_up", 910)])
def test_the_member_price_takes_the_programmes_one_rounding_step(rounding, member_price):
    target = gold(top=f'[points]\nrounding = "{rounding}"\n[points.spend]\nunit_minor = 100\nper_unit = 1\n', body="")
    assert prices(quote(target, "m1", [line(1011)], AT)) == [(1011, member_price, True)]  # 909.9


def test_a_line_already_at_its_member_price_is_not_discounted_twice():
    target = gold()
    assert prices(quote(target, "m1", [line(900, member_discounted=True)], AT)) == [(900, 900, True)]


def test_a_tier_without_a_discount_quotes_the_prices_given():
    target = basic(SPEND, 10)
    assert prices(quote(target, "m1", [line(1000), line(500, promotional=True)], AT)) == [(1000, 1000, False),
                                                                                          (500, 500, False)]


# -- the points the purchase earns -----------------------------------------------------


def test_the_quoted_points_are_what_the_purchase_at_member_prices_then_earns():
    target = gold()
    answer = quote(target, "m1", [line(10000), line(5000, category="infant_formula")], AT)
    assert (answer.points, answer.growth, answer.points_reason) == (140, 140, "")  # 90.00 + 50.00, 1 per 1.00
    result = score(target, buy("t1", "m1", DAY, *[p.line for p in answer.lines]))[0]
    assert (result.points, result.growth) == (140, 140)


@pytest.mark.parametrize(("action", "points", "reason"), [("flag", 6000, "flagged"), ("hold", 6000, "held"),
                                                           ("block_earn", 0, "blocked")])
def test_the_quote_foresees_the_anomaly_threshold(action, points, reason):
    target = basic(SPEND + f"[anomaly]\ndaily_points_threshold = 5000\naction = \"{action}\"\n", 10)
    answer = quote(target, "m1", [line(600000)], AT)
    assert (answer.points, answer.points_reason) == (points, reason)
    assert not target.members["m1"].abnormal  # foreseen, not judged
    result = score(target, buy("t1", "m1", DAY, line(600000)))[0]
    assert (result.points, result.reason) == (points, reason)


def test_a_purchase_crossing_the_threshold_under_block_earn_and_redeem_quotes_no_deduction():
    """The till sends the purchase, then the redeem: the purchase's crossing blocks the redeem, so
    the quote says so (an outside probe was quoted 48.00 off that its redeem was refused)."""
    body = SPEND + RATIO + '[anomaly]\ndaily_points_threshold = 5000\naction = "block_earn_and_redeem"\n'
    target = basic(body, 4000)
    answer = quote(target, "m1", [line(600000)], AT)
    assert (answer.points_reason, answer.cash_points, answer.cash_reason) == ("blocked", 0, "redeem_blocked")
    assert answer.available_points == 4000  # the balance now, before the purchase
    purchase, spend = score(target, buy("t1", "m1", DAY, line(600000)),
                            redeem("r1", "m1", DAY, amount=answer.member_total_minor))
    assert (purchase.reason, spend.outcome, spend.reason) == ("blocked", "rejected", "redeem_blocked")


def test_the_quoted_deduction_counts_the_purchases_own_points_spendable_at_once():
    """With no `pending_days` the purchase's points are spendable by the redeem sent after it (an
    outside probe: quoted 1.00 off, given 3.00)."""
    target = basic(SPEND + RATIO, 150)
    answer = quote(target, "m1", [line(20000)], AT)
    assert (answer.points, answer.cash_points, answer.cash_value_minor) == (200, 300, 300)
    purchase, spend = score(target, buy("t1", "m1", DAY, line(20000)), redeem("r1", "m1", DAY, amount=20000))
    assert (purchase.points, -spend.points, spend.value_minor) == (200, 300, 300)


@pytest.mark.parametrize("inventory", [0, 1])
def test_a_coupon_the_purchase_itself_issues_is_quoted_only_when_no_inventory_can_refuse_it(inventory):
    """The purchase enters Silver, whose upgrade coupon the use sent after it may take; with an
    inventory, used up by another member here, the quote cannot know (a reviewer)."""
    coupon = ('[[coupons]]\nid = "SILVER"\nkind = "voucher"\nvalue_minor = 800\nvalid_days = 30\n'
              f'issue_on = "upgrade"\ntiers = ["Silver"]\ninventory = {inventory}\n')
    tiers = '[[tiers]]\nname = "Basic"\n[[tiers]]\nname = "Silver"\nmetric = "spend"\nthreshold = 100000\n'
    target = book(body=SPEND + coupon, tiers=tiers)
    score(target, buy("o1", "other", DAY, line(100_000)), adjust("a0", "m1", "2026-03-04 08:00", 1))
    answer = quote(target, "m1", [line(100_000)], AT)
    assert [(c.coupon.instance.code, c.value_minor) for c in answer.coupons] == (
        [("SILVER-m1-1", 800)] if not inventory else [])
    score(target, buy("t1", "m1", DAY, line(100_000)))
    assert [c.code for c in target.members["m1"].coupons] == (["SILVER-m1-1"] if not inventory else [])


def test_a_frozen_card_earns_nothing_and_can_spend_nothing():
    target = basic(SPEND + RATIO, 5000)
    target.members["m1"].status = "frozen"
    answer = quote(target, "m1", [line(2900)], AT)
    assert (answer.points, answer.points_reason, answer.cash_points, answer.cash_reason) == (0, "frozen", 0,
                                                                                               "card_frozen")


# -- points as cash: SPEC §11.3's worked examples ----------------------------------------


def test_ratio_example_the_largest_deduction_on_an_order_of_29_is_14_yuan():
    answer = quote(basic(RATIO, 5000), "m1", [line(2900)], AT)
    assert (answer.cash_points, answer.cash_value_minor, answer.cash_reason) == (1400, 1400, "")


@pytest.mark.parametrize(("order", "points", "value"), [(10000, 5000, 6000), (5000, 1000, 1000)])
def test_tiered_example_the_biggest_step_the_points_and_the_order_allow(order, points, value):
    answer = quote(basic(STEPS, 5500), "m1", [line(order)], AT)
    assert (answer.cash_points, answer.cash_value_minor) == (points, value)


def test_the_deduction_is_on_the_order_at_member_prices():
    answer = quote(gold(RATIO, points=5000), "m1", [line(10000)], AT)  # 90.00 after the discount: 45.00 at most
    assert (answer.member_total_minor, answer.cash_points, answer.cash_value_minor) == (9000, 4500, 4500)


@pytest.mark.parametrize(("body", "points", "basket", "reason"), [
    ("", 5000, [line(2900)], "cash_not_enabled"),
    (RATIO + "[redemption]\nweekdays = [\"sat\"]\n", 5000, [line(2900)], "outside_window"),
    (RATIO, 99, [line(2900)], "insufficient_points"),
    (RATIO, 5000, [line(199)], "insufficient_points"),  # 50 % of 1.99 is less than one unit
    (RATIO, 5000, [line(0)], "insufficient_points"),
])
def test_why_there_is_no_deduction_is_the_redeems_reason(body, points, basket, reason):
    answer = quote(basic(body, points), "m1", basket, AT)
    assert (answer.cash_points, answer.cash_value_minor, answer.cash_reason) == (0, 0, reason)


def test_a_member_blocked_from_redeeming_is_quoted_redeem_blocked():
    target = basic(RATIO + "[anomaly]\ndaily_points_threshold = 10\naction = \"block_earn_and_redeem\"\n", 5000)
    target.members["m1"].abnormal = True
    assert quote(target, "m1", [line(2900)], AT).cash_reason == "redeem_blocked"


# -- coupons: SPEC §11.5's values ------------------------------------------------------

COUPONS = SPEND + """
[[coupons]]
id = "V10"
kind = "voucher"
value_minor = 1000
min_charge_minor = 5000
valid_days = 10

[[coupons]]
id = "WINE80"
kind = "discount"
percent = 80
designated = { category = ["wine"] }
valid_days = 10

[[coupons]]
id = "CAKE"
kind = "gift"
gift_sku = "CAKE-01"
valid_days = 10

[[coupons]]
id = "LATER"
kind = "voucher"
value_minor = 500
valid_after_days = 3
valid_days = 10
"""


def with_coupons(*ids: str):
    target = gold(COUPONS)
    score(target, *[Transaction(f"i{n}", "m1", AT, "coupon_issue", coupon_id=c) for n, c in enumerate(ids)])
    return target


def coupons(found) -> list[tuple[str, int, str]]:
    return [(c.coupon.instance.code, c.value_minor, c.reason) for c in found]


def test_usable_coupons_with_their_value_on_this_basket_and_the_others_with_why_not():
    target = with_coupons("V10", "WINE80", "CAKE", "LATER")
    answer = quote(target, "m1", [line(4000, category="wine"), line(2000)], AT)  # member prices 36.00 + 18.00
    assert coupons(answer.coupons) == [("CAKE-m1-1", 0, ""), ("V10-m1-1", 1000, ""),
                                       ("WINE80-m1-1", 720, "")]  # 36.00 - 80 % of it
    assert coupons(answer.unusable_coupons) == [("LATER-m1-1", 0, "coupon_not_yet_valid")]
    assert answer.coupons[0].coupon.gift_sku == "CAKE-01"
    assert (answer.coupons[1].coupon.kind, answer.coupons[1].coupon.value_minor) == ("voucher", 1000)


def test_a_coupon_that_does_not_fit_the_basket_says_why():
    target = with_coupons("V10", "WINE80")
    answer = quote(target, "m1", [line(4000)], AT)
    assert coupons(answer.coupons) == []
    assert coupons(answer.unusable_coupons) == [("V10-m1-1", 0, "below_min_charge"),
                                                ("WINE80-m1-1", 0, "not_applicable")]


def test_used_and_lapsed_coupons_are_not_offered():
    target = with_coupons("V10", "CAKE")
    score(target, Transaction("u1", "m1", AT, "coupon_use", coupon_code="CAKE-m1-1", amount_minor=100))
    later = ms("2026-03-20 10:00")
    score(target, adjust("a1", "m1", "2026-03-20 09:00", 1))  # the stream moves past V10's validity
    answer = quote(target, "m1", [line(9000)], later)
    assert (answer.coupons, answer.unusable_coupons) == ([], [])


# -- stored value, and what needs no rules --------------------------------------------


def test_the_stored_value_balance_in_principal_and_bonus():
    body = "[[recharge_bonuses]]\nname = \"b\"\nmin_amount_minor = 10000\nbonus_minor = 1500\n"
    target = book(body=body)
    score(target, recharge("r1", "m1", DAY, 20000), pay("p1", "m1", DAY, 3000))
    answer = quote(target, "m1", [line(100)], AT)
    assert (answer.stored_value, answer.bonus_value, answer.available_points) == (17000, 1500, 0)


@pytest.mark.parametrize(("member", "basket", "at", "words"), [
    ("", [line(100)], AT, "member_id"),
    (" ", [line(100)], AT, "member_id: expected 1 to 100 characters, not only spaces"),
    ("m\x001", [line(100)], AT, "without control or hidden characters"),
    ("m1", [], AT, "lines:"),
    ("m1", [line(100), line(-1)], AT, "lines[1].paid_minor"),
    ("m1", [LineItem(sku="S", paid_minor=1, quantity=-2)], AT, "lines[0].quantity"),
    ("m1", [line(10**15 + 1)], AT, "lines[0].paid_minor"),
    ("m1", [line(10**15), line(10**15)], AT, "above 10^15"),
    ("m1", [line(100)], 5, "occurred_at_ms"),
    ("m1", [line(100)], ms("2026-02-01 10:00"), "too_late"),
    ("m1", [line(100)], ms("2026-03-09 10:00"), "in_future"),
])
def test_a_basket_no_purchase_could_be_is_refused_naming_the_field(member, basket, at, words):
    with pytest.raises(InvalidRequestError, match=words.replace("[", r"\[").replace("^", r"\^")):
        quote(basic(SPEND, 10), member, basket, at)


def test_an_unknown_member_is_refused():
    with pytest.raises(UnknownMemberError):
        quote(basic(SPEND, 10), "nobody", [line(100)], AT)


# -- invariants --------------------------------------------------------------------------


def trial(target: Book) -> Book:
    """A copy of the member, to try a transaction on the state the quote saw."""
    return Book(target.programme, {"a": copy.deepcopy(target.members["a"])}, today=target.today)


def paid(target: Book, sent: list[LineItem], at: int) -> Book:
    """`trial` once the quoted purchase is scored: the state its spending then meets."""
    tried = trial(target)
    score_one(tried, Transaction("q", "a", at, "purchase", lines=sent))
    return tried


def _frozen(target) -> bytes:
    return msgspec.msgpack.encode(sorted(target.members.items())) + msgspec.msgpack.encode(target.stock.snapshot())


@settings(max_examples=60, deadline=None)
@given(variant=st.sampled_from(list(VARIANTS)), txns=streams(members=("a",)),
       basket=st.lists(lines, min_size=1, max_size=4), later=st.integers(0, 6 * 3_600_000), data=st.data())
def test_a_quote_changes_nothing_and_says_what_the_transactions_then_do(variant, txns, basket, later, data):
    target = fresh(variant)
    score(target, *txns)
    # points enough to pay with, most of the time (a stream may have spent or reversed them all)
    score_one(target, Transaction("bonus", "a", txns[-1].occurred_at_ms, "adjustment", note="test",
                                  amount_minor=data.draw(st.integers(1, 20_000))))
    target.members["a"].tier = data.draw(st.integers(0, 2))  # Gold's and Silver's discounts too
    target.take_changes()
    target.take_notices()
    at = txns[-1].occurred_at_ms + later
    before = _frozen(target)
    answer = quote(target, "a", basket, at)
    assert _frozen(target) == before
    assert (target.ledger, target.dirty, target.notices) == ([], {}, [])
    sent = [p.line for p in answer.lines]
    assert sum(p.price_minor for p in answer.lines) == answer.total_minor == sum(b.paid_minor for b in basket)
    assert all(0 <= p.line.paid_minor <= p.price_minor for p in answer.lines)
    # what the coupons and points as cash would give, each sent after the purchase, as a till sends them
    for offered in answer.coupons:
        use = Transaction("u", "a", at, "coupon_use", coupon_code=offered.coupon.instance.code, lines=sent,
                          amount_minor=answer.member_total_minor)
        result = score_one(paid(target, sent, at), use)
        assert (result.outcome, result.value_minor) == ("accepted", offered.value_minor)
    redeem = Transaction("r", "a", at, "redeem", amount_minor=answer.member_total_minor)
    result = score_one(paid(target, sent, at), redeem) if answer.member_total_minor else None
    if answer.cash_points:
        assert (result.outcome, -result.points, result.value_minor) == ("accepted", answer.cash_points,
                                                                       answer.cash_value_minor)
    elif result is not None:
        assert (result.outcome, result.reason) == ("rejected", answer.cash_reason)
    purchase = score_one(target, Transaction("q", "a", at, "purchase", lines=sent))
    if purchase.outcome == "accepted":
        assert (purchase.points, purchase.growth, purchase.reason) == (answer.points, answer.growth,
                                                                       answer.points_reason)
    else:
        assert (purchase.reason, answer.points) == ("amount_too_large", 0)
