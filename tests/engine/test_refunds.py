"""Refunds (docs/rules.md) reverse what the original actually earned, proportionally and cumulatively."""

from engine.calendar import parse_day
from engine.replay import advance_to
from engine.transactions import Transaction
from tests.builders import book, buy, line, ms, recharge, refund, score

SPEND = "[points.spend]\nunit_minor = 1000\nper_unit = 10\n"
DAY = "2026-03-04 10:00"  # a Wednesday


def test_a_full_refund_reverses_exactly_what_was_earned_multipliers_and_per_order_included():
    body = "[points]\nper_order = 5\n" + SPEND + """
[[multipliers]]
name = "wednesdays"
factor = 1.5
when = { weekdays = ["wed"] }
"""
    target = book(body=body)
    bought, returned = score(target, buy("t1", "m1", DAY, line(2900), line(3300)),
                             refund("r1", "m1", "2026-03-05 10:00", "t1", 6200))
    assert bought.points == 90 + 5
    assert (returned.points, returned.growth) == (-95, -95)
    assert target.members["m1"].points == 0


def test_partial_refunds_are_proportional_and_never_reverse_more_than_was_earned():
    target = book(body=SPEND)
    results = score(target, buy("t1", "m1", DAY, line(1000), line(1000), line(1000)),  # 30 points on 3000
                    refund("r1", "m1", DAY, "t1", 1000), refund("r2", "m1", DAY, "t1", 1000),
                    refund("r3", "m1", DAY, "t1", 1000))
    # floor(30 x 1000/3000) = 10, floor(30 x 2000/3000) - 10 = 10, 30 - 20 = 10
    assert [r.points for r in results] == [30, -10, -10, -10]
    assert target.members["m1"].points == 0


def test_rounding_leftovers_come_back_with_the_last_refund():
    target = book(body=SPEND)
    results = score(target, buy("t1", "m1", DAY, line(2900)),  # 20 points
                    refund("r1", "m1", DAY, "t1", 1000), refund("r2", "m1", DAY, "t1", 1000),
                    refund("r3", "m1", DAY, "t1", 900))
    assert [r.points for r in results] == [20, -6, -7, -7]


def test_a_refund_of_more_than_was_paid_is_capped_at_the_original():
    target = book(body=SPEND)
    results = score(target, buy("t1", "m1", DAY, line(2900)), refund("r1", "m1", DAY, "t1", 99_999))
    assert results[1].points == -20


def test_a_refund_after_everything_was_refunded_is_rejected():
    results = score(book(body=SPEND), buy("t1", "m1", DAY, line(2900)),
                    refund("r1", "m1", DAY, "t1", 2900), refund("r2", "m1", DAY, "t1", 100))
    assert (results[2].outcome, results[2].reason) == ("rejected", "nothing_to_refund")


def test_a_refund_amount_defaults_to_the_sum_of_its_lines():
    results = score(book(body=SPEND), buy("t1", "m1", DAY, line(2000), line(2000)),
                    refund("r1", "m1", DAY, "t1", 0, line(2000)))
    assert results[1].points == -20


def test_a_refund_of_an_unknown_original_is_negative_earning_of_its_lines_without_per_order():
    body = "[points]\nper_order = 5\n" + SPEND
    result = score(book(body=body), refund("r1", "m1", DAY, "nowhere", 0, line(2900)))[0]
    assert (result.outcome, result.points, result.reason) == ("accepted", -20, "unknown_original")


def test_a_refund_names_a_purchase_of_the_same_member():
    """Another member's purchase with that id is not this member's original: for m2 it is
    unknown (negative earning of the refund's lines), and m1's purchase is left whole."""
    target = book(body=SPEND)
    score(target, buy("t1", "m1", DAY, line(2900)),
          Transaction("c1", "m1", ms(DAY), "adjustment", amount_minor=100, note="goodwill"))
    results = score(target, refund("r1", "m2", DAY, "t1", 0, line(2000)), refund("r2", "m1", DAY, "c1", 100))
    assert [(r.outcome, r.points, r.reason) for r in results] == [
        ("accepted", -20, "unknown_original"), ("rejected", 0, "not_refundable")]
    assert target.txns[("m1", "t1")].refunded_minor == 0
    assert target.members["m1"].points == 20 + 100  # the purchase and the goodwill adjustment


def test_the_balance_may_go_negative_and_later_earnings_repay_the_debt():
    target = book(body=SPEND)
    score(target, buy("t1", "m1", DAY, line(2900)),
          Transaction("s1", "m1", ms(DAY), "adjustment", amount_minor=-15, note="redeemed"),
          refund("r1", "m1", DAY, "t1", 2900))
    member = target.members["m1"]
    assert (member.points, member.debt, member.lots) == (-15, 15, [])
    score(target, buy("t2", "m1", DAY, line(2000)))
    assert (member.points, member.debt, sum(lot.amount for lot in member.lots)) == (5, 0, 5)


def test_with_negative_points_disallowed_the_unrecovered_part_is_recorded_in_the_ledger():
    target = book(top="allow_negative_points = false", body=SPEND)
    score(target, buy("t1", "m1", DAY, line(2900)),
          Transaction("s1", "m1", ms(DAY), "adjustment", amount_minor=-15, note="redeemed"))
    result = score(target, refund("r1", "m1", DAY, "t1", 2900))[0]
    assert (result.points, target.members["m1"].points) == (-5, 0)
    assert target.ledger[-1].unrecovered == 15


def test_a_refund_inside_the_pending_window_cancels_points_before_they_were_spendable():
    target = book(body="[points]\npending_days = 14\n" + SPEND)
    score(target, buy("t1", "m1", DAY, line(2900)))
    assert (target.members["m1"].points, target.members["m1"].pending) == (0, 20)
    score(target, refund("r1", "m1", DAY, "t1", 2900))
    member = target.members["m1"]
    assert (member.points, member.pending, member.debt) == (0, 0, 0)
    assert target.ledger[-1].pending == -20


def test_refunded_spend_leaves_the_spend_windows_of_the_original_day():
    tiers = """
[[tiers]]
name = "Basic"

[[tiers]]
name = "Gold"
metric = "spend"
window = "3 months"
threshold = 5000
validity = "12 months"
"""
    target = book(body=SPEND, tiers=tiers)
    score(target, buy("t1", "m1", "2026-03-01 10:00", line(4000)), refund("r1", "m1", DAY, "t1", 2000),
          buy("t2", "m1", DAY, line(2000)))
    member = target.members["m1"]
    day_of = target.programme.calendar.day_of
    assert member.windows["spend"] == {day_of(ms("2026-03-01 10:00")): 2000, day_of(ms(DAY)): 2000}
    assert member.tier == 0


LAPSING = """
[points]
pending_days = 3
[points.spend]
unit_minor = 100
per_unit = 1
[points.expiry]
policy = "annual_reset"
"""


def test_a_refund_inside_the_window_after_the_pending_points_lapsed_takes_nothing_spendable():
    # SPEC §3.8: cancelled before they were ever spendable; the 1 January reset had cleared them,
    # and the refund took 10 from the balance, a debt (two outside probes)
    target = book(body=LAPSING)
    score(target, buy("t0", "m1", "2026-12-20 10:00", line(500)), buy("t1", "m1", "2026-12-31 10:00", line(1000)))
    advance_to(target, parse_day("2027-01-01"))
    member = target.members["m1"]
    assert (member.points, member.pending) == (0, 0)
    [result] = score(target, refund("r1", "m1", "2027-01-01 10:00", "t1", 1000))
    assert (result.outcome, result.points) == ("accepted", 0)
    assert (member.points, member.debt, member.total_points) == (0, 0, 5)  # the lapsed 10 out of the sums only
    assert sum(e.points for e in target.ledger if e.member_id == "m1") == member.points


def test_a_late_purchase_whose_points_expiry_has_passed_gives_none_to_spend():
    # they were spendable until the next run, and a redeem spent them (an outside probe)
    target = book(body=LAPSING.replace("pending_days = 3", "pending_days = 0"))
    score(target, buy("t0", "m1", "2026-12-20 10:00", line(500)))
    advance_to(target, parse_day("2027-01-02"))
    [late] = score(target, buy("t1", "m1", "2026-12-31 10:00", line(1000)))
    member = target.members["m1"]
    assert (late.outcome, late.points, member.points, member.lots) == ("accepted", 10, 0, [])
    assert [(e.kind, e.points) for e in target.ledger if e.ref == "t1"] == [("earn", 10), ("expire", -10)]


def test_every_entry_a_refund_writes_names_what_it_refunds():
    """`ref` is the refund's own id; without `refund_of` the ledger could not tell which of a
    member's purchases (or redeems) a refund undid."""
    from tests.builders import adjust, redeem

    target = book(body=SPEND)
    score(target, buy("t1", "m1", DAY, line(2900)), buy("t2", "m1", DAY, line(5000)), adjust("a1", "m1", DAY, 500),
          redeem("d1", "m1", DAY, points=300), refund("r1", "m1", DAY, "t2", 5000), refund("r2", "m1", DAY, "d1"),
          refund("r3", "m1", DAY, "gone", 0, line(1000)))  # an original never seen: scored from its lines
    named = [(e.ref, e.kind, e.refund_of) for e in target.ledger]
    assert named == [("t1", "earn", ""), ("t2", "earn", ""), ("a1", "adjust", ""), ("d1", "redeem", ""),
                     ("r1", "reverse", "t2"), ("r2", "restore", "d1"), ("r3", "reverse", "gone")]


def test_a_refund_that_enrolls_its_member_leaves_the_enrollments_own_entries_unnamed():
    """The welcome coupon a refund's enrollment issues is the enrollment's, not the refund's."""
    welcome = '[[coupons]]\nid = "WELCOME"\nkind = "voucher"\nvalue_minor = 500\nvalid_days = 30\nissue_on = "enroll"\n'
    target = book(body=SPEND + welcome)
    score(target, refund("r1", "m9", DAY, "gone", 0, line(1000)))  # an unknown member, an original never seen
    assert [(e.kind, e.refund_of) for e in target.ledger] == [("coupon_issued", ""), ("reverse", "gone")]


def test_growth_a_refund_could_not_take_is_taken_by_the_purchases_later_refunds():
    """SPEC §5: a full refund reverses exactly what was earned, growth likewise. Growth never goes
    below 0, so a refund while the member had none took none of it; its share was still counted as
    reversed, and the purchase refunded in full left the member 1 growth (an outside probe)."""
    target = book(body="[points.spend]\nunit_minor = 100\nper_unit = 1\n")
    member = target.members
    score(target, buy("p", "m1", DAY, line(10000)), refund("u", "m1", DAY, "elsewhere", 10000))
    assert member["m1"].growth == 0
    first = score(target, refund("f1", "m1", DAY, "p", 100))[0]
    assert (first.points, first.growth) == (-1, 0)
    score(target, buy("q", "m1", DAY, line(10000)))
    later = score(target, refund("f2", "m1", DAY, "p", 100), refund("f3", "m1", DAY, "p", 9800))
    assert [(r.points, r.growth) for r in later] == [(-1, -2), (-98, -98)]
    assert (member["m1"].points, member["m1"].growth) == (0, 0)
    assert sum(e.growth for e in target.ledger) == member["m1"].growth


def test_growth_a_recharges_refund_could_not_take_is_taken_by_its_later_refunds():
    body = ("[points.spend]\nunit_minor = 100\nper_unit = 1\n[stored_value]\n[[recharge_bonuses]]\nname = \"b\"\n"
            "min_amount_minor = 100\npoints = 200\n")
    target = book(body=body)
    member = target.members
    score(target, recharge("c", "m1", DAY, 10000), refund("u", "m1", DAY, "elsewhere", 20000))
    assert member["m1"].growth == 0
    assert score(target, refund("f1", "m1", DAY, "c", 5000))[0].growth == 0
    score(target, buy("q", "m1", DAY, line(30000)))
    assert score(target, refund("f2", "m1", DAY, "c", 5000))[0].growth == -200
    assert member["m1"].growth == 100
    assert sum(e.growth for e in target.ledger) == member["m1"].growth
