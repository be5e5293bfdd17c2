"""SPEC §11.1-11.3: the spending checks, redeeming points from the lots that expire first,
redemption windows, and points as cash by ratio and by steps, with their worked examples."""

from datetime import date

import pytest

from engine.balance import UNRECOVERED_KEPT
from engine.transactions import Transaction
from tests.builders import adjust, book, buy, line, ms, redeem, refund, score

DAY = "2026-03-04 10:00"  # a Wednesday
RATIO = """
[redemption.cash]
mode = "ratio"
points_per_unit = 100
unit_minor = 100
max_share_percent = 50
"""
STEPS = """
[redemption.cash]
mode = "tiered"
[[redemption.cash.steps]]
points = 1000
value_minor = 1000
[[redemption.cash.steps]]
points = 5000
value_minor = 6000
"""
ROLLING = '[points.expiry]\npolicy = "rolling_days"\ndays = 30\n'


def with_points(body: str, points: int, member: str = "m1"):
    target = book(body=body)
    score(target, adjust("a1", member, DAY, points))
    return target


@pytest.mark.parametrize(("txn", "reason"), [
    (Transaction("t", "m1", ms(DAY), "redeem"), "missing_points"),
    (Transaction("t", "m1", ms(DAY), "redeem", points=-5), "negative_amount"),
    (Transaction("t", "m1", ms(DAY), "payment"), "missing_amount"),
    (Transaction("t", "m1", ms(DAY), "coupon_issue"), "missing_coupon_id"),
    (Transaction("t", "m1", ms(DAY), "coupon_use", amount_minor=100), "missing_coupon_code"),
    (Transaction("t", "m1", ms(DAY), "payment", amount_minor=-1), "negative_amount"),
    # `points` below 0 is malformed on every kind (SPEC §11.1), not only where it is read: a probe
    # found a purchase, an event and a refund accepted with it
    (Transaction("t", "m1", ms(DAY), "purchase", amount_minor=100, points=-5), "negative_amount"),
    (Transaction("t", "m1", ms(DAY), "event", event_type="sign_in", points=-5), "negative_amount"),
    (Transaction("t", "m1", ms(DAY), "refund", refund_of="a1", points=-5), "negative_amount"),
])
def test_malformed_spending_is_rejected_with_its_reason(txn, reason):
    result = score(with_points("", 100), txn)[0]
    assert (result.outcome, result.reason) == ("rejected", reason)


def test_spending_never_enrolls_an_unknown_member():
    target = book()
    result = score(target, redeem("r1", "nobody", DAY, points=10))[0]
    assert (result.outcome, result.reason) == ("rejected", "unknown_member")
    assert "nobody" not in target.members


@pytest.mark.parametrize(("status", "reason"), [("frozen", "card_frozen"), ("lost", "card_lost")])
def test_a_card_that_cannot_spend_is_rejected_and_the_id_stays_free(status, reason):
    target = with_points("", 100)
    target.members["m1"].status = status
    assert score(target, redeem("r1", "m1", DAY, points=10))[0].reason == reason
    target.members["m1"].status = "active"
    result = score(target, redeem("r1", "m1", DAY, points=10))[0]
    assert (result.outcome, result.points) == ("accepted", -10)


def test_a_redeem_spends_exactly_its_points_and_never_touches_growth_or_tier_sums():
    target = with_points("", 500)
    member = target.members["m1"]
    before = (member.growth, member.total_points, member.since_points)
    result = score(target, redeem("r1", "m1", DAY, points=120))[0]
    assert (result.outcome, result.points, result.value_minor) == ("accepted", -120, 0)
    assert member.points == 380
    assert (member.growth, member.total_points, member.since_points) == before


def test_more_than_available_is_insufficient_and_a_debt_leaves_nothing_available():
    target = with_points("", 100)
    assert score(target, redeem("r1", "m1", DAY, points=101))[0].reason == "insufficient_points"
    score(target, adjust("a2", "m1", DAY, -300))
    assert target.members["m1"].points == -200
    assert score(target, redeem("r2", "m1", DAY, points=1))[0].reason == "insufficient_points"


def test_pending_points_are_not_available():
    target = book(body="[points]\npending_days = 7\n[points.spend]\nunit_minor = 100\nper_unit = 1\n")
    score(target, buy("p1", "m1", DAY, line(10_000)))
    assert target.members["m1"].pending == 100
    assert score(target, redeem("r1", "m1", DAY, points=1))[0].reason == "insufficient_points"


def test_points_come_from_the_lot_that_expires_first_and_the_ledger_names_the_lots():
    target = book(body=ROLLING)
    score(target, adjust("a1", "m1", "2026-03-01 10:00", 100), adjust("a2", "m1", "2026-03-03 10:00", 100))
    score(target, redeem("r1", "m1", DAY, points=150))
    first, second = date(2026, 3, 31).toordinal(), date(2026, 4, 2).toordinal()
    assert [(lot.expires, lot.amount) for lot in target.members["m1"].lots] == [(second, 50)]
    assert target.ledger[-1].lots == ((first, 100), (second, 50))
    assert target.ledger[-1].kind == "redeem"


def test_an_abnormal_member_under_block_earn_and_redeem_cannot_redeem():
    target = with_points('[anomaly]\ndaily_points_threshold = 10\naction = "block_earn_and_redeem"\n', 5)
    target.members["m1"].abnormal = True
    assert score(target, redeem("r1", "m1", DAY, points=1))[0].reason == "redeem_blocked"


@pytest.mark.parametrize(("window", "allowed"), [
    ('dates = ["2026-03-04"]', True), ("days_of_month = [5, 6]", False), ('weekdays = ["wed"]', True),
    ('weekdays = ["mon"]\ndays_of_month = [4]', True), ('weekdays = ["mon", "tue"]', False)])
def test_redemption_windows_allow_a_day_matching_one_entry_of_one_list(window, allowed):
    target = with_points(f"[redemption]\n{window}\n", 100)
    result = score(target, redeem("r1", "m1", DAY, points=10))[0]
    assert (result.outcome, result.reason) == (("accepted", "") if allowed else ("rejected", "outside_window"))


def test_points_as_cash_without_its_table_is_not_enabled():
    assert score(with_points("", 5000), redeem("r1", "m1", DAY, amount=2900))[0].reason == "cash_not_enabled"


def test_the_kinds_checks_go_in_order():
    target = with_points("[redemption]\ndays_of_month = [5]\n", 1)
    assert score(target, redeem("r1", "m1", DAY, amount=2900))[0].reason == "outside_window"
    assert score(with_points("", 1), redeem("r1", "m1", DAY, amount=2900))[0].reason == "cash_not_enabled"


def test_ratio_example_all_offered_is_capped_by_the_share_of_the_order():
    """100 points = 1.00, 50 %, order 29.00, 5,000 available: min(50, 14) units."""
    result = score(with_points(RATIO, 5000), redeem("r1", "m1", DAY, amount=2900))[0]
    assert (result.outcome, result.points, result.value_minor) == ("accepted", -1400, 1400)


def test_ratio_example_an_offer_of_1050_spends_1000():
    result = score(with_points(RATIO, 5000), redeem("r1", "m1", DAY, points=1050, amount=2900))[0]
    assert (result.points, result.value_minor) == (-1000, 1000)


@pytest.mark.parametrize(("rules", "order", "offered", "outcome"), [
    (RATIO, 100_000, 9000, ("rejected", "insufficient_points", 0)),  # 90 units: 9,000 points, 2,600 available
    (RATIO, 2900, 9000, ("accepted", "", -1400)),  # the share caps it at 14 units, which are available
    (STEPS, 10_000, 9000, ("rejected", "insufficient_points", 0)),  # the 5,000 step
    (STEPS, 5_000, 9000, ("accepted", "", -1000))])
def test_an_offer_settling_more_than_is_available_is_insufficient_not_cut_down(rules, order, offered, outcome):
    """SPEC 11.3: the checks of redeeming apply to what the offer settles (an outside probe: it was
    cut down to the 2,600 available and accepted for them)."""
    result = score(with_points(rules, 2600), redeem("r1", "m1", DAY, points=offered, amount=order))[0]
    assert (result.outcome, result.reason, result.points) == outcome


def test_ratio_with_no_whole_unit_is_insufficient():
    assert score(with_points(RATIO, 5000), redeem("r1", "m1", DAY, points=99, amount=2900))[0].reason == \
        "insufficient_points"
    assert score(with_points(RATIO, 5000), redeem("r1", "m1", DAY, amount=199))[0].reason == "insufficient_points"


@pytest.mark.parametrize(("order", "points", "value"), [(10_000, 5000, 6000), (5_000, 1000, 1000)])
def test_tiered_example_takes_the_largest_step_that_fits(order, points, value):
    """Steps 1,000 -> 10.00 and 5,000 -> 60.00, 100 %, 5,500 available."""
    result = score(with_points(STEPS, 5500), redeem("r1", "m1", DAY, amount=order))[0]
    assert (result.outcome, result.points, result.value_minor) == ("accepted", -points, value)


def test_tiered_with_no_step_that_fits_is_insufficient():
    assert score(with_points(STEPS, 900), redeem("r1", "m1", DAY, amount=10_000))[0].reason == "insufficient_points"
    assert score(with_points(STEPS, 5500), redeem("r1", "m1", DAY, amount=900))[0].reason == "insufficient_points"


def test_a_duplicate_redeem_returns_the_first_ones_value():
    target = with_points(RATIO, 5000)
    first, again = score(target, redeem("r1", "m1", DAY, amount=2900), redeem("r1", "m1", DAY, amount=9900))
    assert (again.outcome, again.points, again.value_minor) == ("duplicate", first.points, first.value_minor)
    assert target.members["m1"].points == 3600


def test_a_refund_of_a_redeem_restores_the_exact_lots_once():
    target = book(body=ROLLING + RATIO)
    score(target, adjust("a1", "m1", "2026-03-01 10:00", 1000), adjust("a2", "m1", "2026-03-03 10:00", 1000))
    lots = [(lot.expires, lot.amount) for lot in target.members["m1"].lots]
    spent = score(target, redeem("r1", "m1", DAY, amount=2900))[0]
    back, again = score(target, refund("x1", "m1", DAY, "r1"), refund("x2", "m1", DAY, "r1"))
    assert (back.outcome, back.points, back.value_minor) == ("accepted", 1400, -spent.value_minor)
    assert (again.outcome, again.reason) == ("rejected", "nothing_to_refund")
    assert [(lot.expires, lot.amount) for lot in target.members["m1"].lots] == lots


def test_a_restored_lot_past_its_expiry_expires_at_the_next_midnight():
    target = book(body=ROLLING)
    score(target, adjust("a1", "m1", "2026-03-01 10:00", 100), redeem("r1", "m1", "2026-03-30 10:00", points=100))
    score(target, refund("x1", "m1", "2026-04-01 10:00", "r1"))  # the lot's last day was 30 March
    assert target.members["m1"].points == 100
    score(target, adjust("a2", "m1", "2026-04-02 10:00", 1))
    assert target.members["m1"].points == 1
    assert target.ledger[-2].kind == "expire"
    assert target.ledger[-2].points == -100


def test_restored_points_repay_a_debt_first():
    target = with_points("", 100)
    score(target, redeem("r1", "m1", DAY, points=100), adjust("a2", "m1", DAY, -30))
    score(target, refund("x1", "m1", DAY, "r1"))
    member = target.members["m1"]
    assert (member.points, member.debt, sum(lot.amount for lot in member.lots)) == (70, 0, 70)


CLAMPED = "allow_negative_points = false\n[points.spend]\nunit_minor = 100\nper_unit = 1\n"


@pytest.mark.parametrize("goods_first", [True, False])
def test_refunding_the_goods_and_the_redeem_ends_the_same_in_either_order(goods_first):
    # an outside probe: the goods refunded first could not take back the points the redeem had
    # spent (clamped at zero), and the redeem's refund then gave them back: 1,000 points a cycle
    target = book(body=CLAMPED)
    for n, day in enumerate(["2026-12-01", "2026-12-02", "2026-12-03"]):
        goods = refund(f"g{n}", "m1", f"{day} 10:02", f"p{n}", 100000)
        gift = refund(f"x{n}", "m1", f"{day} 10:02", f"r{n}")
        score(target, buy(f"p{n}", "m1", f"{day} 10:00", line(100000)),
              redeem(f"r{n}", "m1", f"{day} 10:01", points=1000), *((goods, gift) if goods_first else (gift, goods)))
    member = target.members["m1"]
    assert (member.points, member.lots, member.unrecovered) == (0, [], ())
    entries = [e for e in target.ledger if e.member_id == "m1"]
    assert sum(e.points for e in entries) == 0
    assert sum(e.unrecovered for e in entries) == 0


def test_restored_points_repay_what_refunds_could_not_take_and_later_earnings_do_not():
    target = book(body=CLAMPED)
    score(target, buy("p1", "m1", DAY, line(100000)), redeem("r1", "m1", DAY, points=400),
          refund("g1", "m1", DAY, "p1", 100000))  # 600 taken back, 400 not
    assert (target.members["m1"].points, sum(p for _, p in target.members["m1"].unrecovered)) == (0, 400)
    score(target, buy("p2", "m1", DAY, line(25000)))  # earned later: not taken
    assert (target.members["m1"].points, sum(p for _, p in target.members["m1"].unrecovered)) == (250, 400)
    [back] = score(target, refund("x1", "m1", DAY, "r1"))  # the 400 spent come back, and go
    assert (back.outcome, back.points) == ("accepted", 0)  # what the balance gained, as a clamped refund says
    member = target.members["m1"]
    assert (member.points, member.unrecovered) == (250, ())
    assert [(e.kind, e.points, e.unrecovered) for e in target.ledger[-2:]] == [
        ("restore", 400, 0), ("reverse", -400, -400)]


def test_a_redeem_refund_repays_only_what_refunds_after_that_redeem_could_not_take():
    # the hypothesis invariant's case: a take-back clamped before the redeem is not its business
    target = book(body=CLAMPED)
    score(target, buy("p1", "m1", DAY, line(10000)), redeem("r1", "m1", DAY, points=100),
          refund("g1", "m1", DAY, "p1", 10000),  # 100 not taken back, before r2
          buy("p2", "m1", DAY, line(20000)), redeem("r2", "m1", DAY, points=200), refund("x2", "m1", DAY, "r2"))
    member = target.members["m1"]
    assert (member.points, sum(p for _, p in member.unrecovered)) == (200, 100)
    score(target, refund("x1", "m1", DAY, "r1"))  # r1's own 100 come back and repay it
    assert (member.points, member.unrecovered) == (200, ())


def test_what_refunds_could_not_take_back_is_kept_in_a_bounded_record():
    target = book(body=CLAMPED)
    for n in range(20):  # a loop a member could run for ever: its record must not grow with it
        score(target, buy(f"p{n}", "m1", DAY, line(10000)), redeem(f"r{n}", "m1", DAY, points=100),
              refund(f"g{n}", "m1", DAY, f"p{n}", 10000))
    member = target.members["m1"]
    assert (len(member.unrecovered), sum(p for _, p in member.unrecovered)) == (UNRECOVERED_KEPT, 2000)
    score(target, refund("x19", "m1", DAY, "r19"))  # the newest entries are as they were
    assert (member.points, sum(p for _, p in member.unrecovered)) == (0, 1900)


def test_refunds_of_kinds_that_cannot_be_refunded_are_rejected():
    target = with_points("", 100)
    result = score(target, refund("x1", "m1", DAY, "a1"))[0]
    assert (result.outcome, result.reason) == ("rejected", "not_refundable")
