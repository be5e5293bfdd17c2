"""The midnight run (docs/rules.md): validity, extension, re-evaluation, expiry, pending points,
recalculation and the anomaly report, run as a replay crosses local midnights."""

import json

import pytest

from engine.calendar import iso, parse_day
from engine.midnight import run_midnight
from engine.replay import advance_to
from engine.transactions import Transaction
from tests.builders import SHOPLINE_TIERS, adjust, book, buy, line, ms, recharge, refund, score

SPEND = "[points.spend]\nunit_minor = 100\nper_unit = 1\n"

SHOPLINE = SHOPLINE_TIERS


def shopline(on_expiry: str = "reevaluate", extra: str = ""):
    return book(body=SPEND + extra, tiers=SHOPLINE.format(on_expiry=on_expiry))


def until(target, text: str) -> None:
    advance_to(target, parse_day(text))


def tier_of(target, member: str) -> str:
    return target.programme.ladder.names[target.members[member].tier]


def test_shopline_anniversary_walks_members_down_the_tiers():
    target = shopline()
    score(target, buy("a1", "A", "2023-04-15 10:00", line(100000)), buy("b1", "B", "2023-04-15 11:00", line(100000)))
    assert (tier_of(target, "A"), iso(target.members["A"].tier_until)) == ("Silver", "2024-04-14")
    score(target, buy("a2", "A", "2024-03-01 10:00", line(90000)), buy("b2", "B", "2024-03-01 10:00", line(40000)))
    until(target, "2024-04-14")
    assert (tier_of(target, "A"), tier_of(target, "B")) == ("Silver", "Silver")
    until(target, "2024-04-15")
    assert (tier_of(target, "A"), tier_of(target, "B")) == ("Bronze", "Regular")
    assert iso(target.members["A"].tier_until) == "2025-04-14"
    assert [(e.cause, e.ref, e.note) for e in target.ledger if e.kind == "tier" and e.member_id == "A"][-1] == (
        "midnight", "2024-04-15", "validity ended")


def test_the_extension_condition_keeps_the_tier_and_starts_a_new_validity():
    target = shopline()
    score(target, buy("a1", "A", "2023-04-15 10:00", line(100000)), buy("a2", "A", "2023-09-01 10:00", line(100000)))
    until(target, "2024-04-15")
    member = target.members["A"]
    assert (tier_of(target, "A"), iso(member.tier_until)) == ("Silver", "2025-04-14")
    assert member.since_spend == 0  # what was earned for this extension cannot extend again


def test_the_upgrading_order_does_not_count_toward_the_extension():
    target = shopline()
    score(target, buy("a1", "A", "2023-04-15 10:00", line(150000)))  # upgrades; 50000 over the bar
    until(target, "2024-04-15")
    assert tier_of(target, "A") == "Regular"


@pytest.mark.parametrize(("before", "refunded"), [
    ([], "a1"),  # the upgrading order itself
    ([("a0", "2023-04-15 09:00", 40000)], "a0"),  # an order of the upgrade day, before the upgrade
])
def test_a_refund_of_what_the_extension_never_counted_does_not_lower_it(before, refunded):
    # an outside probe: dated on the upgrade day, these refunds were taken from the since-upgrade
    # sum they were never in, and a refund of one unit cost the member the tier at its anniversary
    target = shopline()
    score(target, *[buy(txn_id, "A", when, line(paid)) for txn_id, when, paid in before],
          buy("a1", "A", "2023-04-15 10:00", line(100000)))
    assert tier_of(target, "A") == "Silver"
    score(target, buy("a2", "A", "2023-09-01 10:00", line(100000)), refund("r1", "A", "2023-09-02 10:00", refunded, 1))
    until(target, "2024-04-15")
    assert (tier_of(target, "A"), iso(target.members["A"].tier_until)) == ("Silver", "2025-04-14")


def test_a_refund_of_an_order_after_the_upgrade_on_the_same_day_lowers_the_extension():
    target = shopline()
    score(target, buy("a1", "A", "2023-04-15 10:00", line(100000)), buy("a2", "A", "2023-04-15 11:00", line(100000)),
          refund("r2", "A", "2023-09-02 10:00", "a2", 1))
    until(target, "2024-04-15")
    assert tier_of(target, "A") == "Regular"  # 99,999 since the upgrade, under the extension's 100,000


def test_a_refund_of_the_upgrading_order_leaves_the_points_counted_since_the_upgrade():
    tiers = SHOPLINE.format(on_expiry="reevaluate").replace(
        'extension = {{ metric = "spend", threshold = 100000 }}'.replace("{{", "{").replace("}}", "}"),
        'extension = { metric = "points", threshold = 1000 }')
    target = book(body=SPEND, tiers=tiers)
    score(target, buy("a1", "A", "2023-04-15 10:00", line(100000)), buy("a2", "A", "2023-09-01 10:00", line(100000)),
          refund("r1", "A", "2023-09-02 10:00", "a1", 100))
    assert target.members["A"].since_points == 1000
    until(target, "2024-04-15")
    assert tier_of(target, "A") == "Silver"


def test_since_upgrade_re_evaluates_by_what_was_earned_since_the_upgrade_day():
    target = shopline("since_upgrade")
    score(target, buy("a1", "A", "2023-04-15 10:00", line(100000)), buy("a2", "A", "2023-06-01 10:00", line(60000)))
    until(target, "2024-04-15")
    assert tier_of(target, "A") == "Bronze"  # 600 since the upgrade; the 3-month window is empty


LATE_LADDER = """
[tier_policy]
on_change = "upgrade_only"
on_expiry = "since_upgrade"
[[tiers]]
name = "Basic"
[[tiers]]
name = "Silver"
metric = "points"
window = "30 days"
threshold = 1000
validity = "10 days"
extension = { metric = "points", threshold = 500 }
paid_upgrade_sku = "SILVER-CARD"
"""
BONUS_TO_SILVER = '[[recharge_bonuses]]\nname = "up"\nmin_amount_minor = 100\nupgrade_to = "Silver"\n'
UPGRADES = {"purchase": buy("up", "M", "2026-12-01 10:00", line(100000)),
            "recharge bonus": recharge("up", "M", "2026-12-01 10:00", 1000),
            "paid upgrade": buy("up", "M", "2026-12-01 10:00", line(100, sku="SILVER-CARD"))}


@pytest.mark.parametrize("how", UPGRADES)
def test_an_order_made_after_a_late_upgrade_counts_toward_the_extension(how):
    # an outside probe: the late upgrade started the since-upgrade sums on the day it was scored
    # (3 Dec), so the 2 Dec order made and sent after it was left out and the member was demoted
    target = book(body=SPEND + BONUS_TO_SILVER, tiers=LATE_LADDER)
    score(target, buy("z1", "Z", "2026-12-03 09:00", line(100)), UPGRADES[how],
          buy("after", "M", "2026-12-02 10:00", line(60000)))
    member = target.members["M"]
    assert (tier_of(target, "M"), iso(member.tier_until), member.since_points) == ("Silver", "2026-12-12", 600)
    until(target, "2026-12-14")
    assert (tier_of(target, "M"), iso(target.members["M"].tier_until)) == ("Silver", "2026-12-22")


def test_an_order_made_before_a_late_upgrade_still_does_not_count_toward_the_extension():
    target = book(body=SPEND, tiers=LATE_LADDER)
    score(target, buy("z1", "Z", "2026-12-03 09:00", line(100)), UPGRADES["purchase"],
          buy("before", "M", "2026-11-30 10:00", line(60000)))
    assert target.members["M"].since_points == 0
    until(target, "2026-12-14")
    assert tier_of(target, "M") == "Basic"


def test_downgrade_to_sends_the_member_straight_to_that_tier():
    tiers = SHOPLINE.format(on_expiry="reevaluate").replace(
        'extension = { metric = "spend", threshold = 100000 }', 'downgrade_to = "Bronze"')
    target = book(body=SPEND, tiers=tiers)
    score(target, buy("a1", "A", "2023-04-15 10:00", line(100000)))
    until(target, "2024-04-15")
    assert tier_of(target, "A") == "Bronze"


def test_validity_in_months_to_the_end_of_the_month():
    tiers = SHOPLINE.format(on_expiry="reevaluate")
    tiers = tiers.replace('validity = "12 months"\next', 'validity = "6 months end_of_month"\next')
    target = book(body=SPEND, tiers=tiers)
    score(target, buy("a1", "A", "2026-03-10 10:00", line(100000)))
    assert iso(target.members["A"].tier_until) == "2026-09-30"
    until(target, "2026-09-30")
    assert tier_of(target, "A") == "Silver"
    until(target, "2026-10-01")
    assert tier_of(target, "A") == "Regular"


def test_points_earned_5_mar_2026_with_one_year_expire_at_the_start_of_1_jan_2028():
    body = SPEND + '[points.expiry]\npolicy = "jan1_after_years"\nyears = 1\n'
    target = book(body=body)
    score(target, buy("t1", "m", "2026-03-05 10:00", line(2900)))
    until(target, "2027-12-31")
    assert target.members["m"].points == 29
    until(target, "2028-01-01")
    assert target.members["m"].points == 0
    assert [(e.kind, e.points, e.cause, e.ref) for e in target.ledger][-1] == ("expire", -29, "midnight", "2028-01-01")


def test_rolling_expiry_takes_the_oldest_lots_first():
    body = SPEND + '[points.expiry]\npolicy = "rolling_days"\ndays = 30\n'
    target = book(body=body)
    score(target, buy("t1", "m", "2026-03-01 10:00", line(1000)), buy("t2", "m", "2026-03-20 10:00", line(2000)))
    until(target, "2026-03-31")
    assert target.members["m"].points == 20


def test_annual_reset_clears_every_balance_on_1_january_debts_too():
    body = SPEND + '[points.expiry]\npolicy = "annual_reset"\n'
    target = book(body=body)
    score(target, buy("t1", "m", "2026-12-31 10:00", line(1000)),
          Transaction("a1", "d", ms("2026-12-31 10:00"), "adjustment", amount_minor=-30, note="redeemed on credit"))
    assert (target.members["m"].points, target.members["d"].points) == (10, -30)
    until(target, "2027-01-01")
    assert (target.members["m"].points, target.members["d"].points, target.members["d"].debt) == (0, 0, 0)


def test_pending_points_are_released_by_the_midnight_run_after_the_return_window():
    target = book(body="[points]\npending_days = 7\n" + SPEND)
    score(target, buy("t1", "m", "2026-03-01 10:00", line(1000)))
    until(target, "2026-03-07")
    assert (target.members["m"].points, target.members["m"].pending) == (0, 10)
    until(target, "2026-03-08")
    assert (target.members["m"].points, target.members["m"].pending) == (10, 0)
    assert target.ledger[-1].kind == "release"


def test_a_late_purchase_past_its_return_window_is_spendable_at_once():
    # kept pending, it waited a run more, which lapsed it unspent when that run was its expiry's
    # too (an outside probe); one still inside its window stays pending
    target = book(body='[points]\npending_days = 2\n' + SPEND + '[points.expiry]\npolicy = "rolling_days"\ndays = 3\n')
    score(target, buy("t0", "x", "2026-03-04 10:00", line(1000)))
    until(target, "2026-03-05")  # the run of the 5th has released purchases of the 3rd
    score(target, buy("late", "m", "2026-03-03 10:00", line(5000)), buy("inside", "n", "2026-03-04 10:00", line(5000)))
    assert [(target.members[m].points, target.members[m].pending) for m in "mn"] == [(50, 0), (0, 50)]
    [spent] = score(target, Transaction("r1", "m", ms("2026-03-05 11:00"), "redeem", points=50))
    assert (spent.outcome, spent.points) == ("accepted", -50)
    until(target, "2026-03-06")
    assert [(target.members[m].points, target.members[m].pending) for m in "mn"] == [(0, 0), (50, 0)]


def test_the_refund_of_a_late_purchase_whose_points_lapsed_at_once_takes_nothing_from_the_balance():
    """Earned and expired at once, they were never spendable: the refund took them again from the
    balance, another purchase's points, then a debt (an outside probe), where the refund of held or
    pending points that lapsed takes them only out of what was earned."""
    target = book(body=SPEND + '[points.expiry]\npolicy = "rolling_days"\ndays = 3\n')
    score(target, buy("t0", "m", "2026-03-09 10:00", line(500)))
    until(target, "2026-03-10")
    score(target, buy("late", "m", "2026-03-05 10:00", line(1000)))  # its lot's run, 8 March, has passed
    member = target.members["m"]
    assert (member.points, member.total_points) == (5, 15)
    [back] = score(target, refund("r1", "m", "2026-03-10 12:00", "late", 1000))
    assert (back.outcome, member.points, member.total_points) == ("accepted", 5, 5)
    assert [(e.kind, e.points) for e in target.ledger if e.member_id == "m"][-3:] == [
        ("earn", 10), ("expire", -10), ("reverse", 0)]


def test_pending_points_that_expire_before_their_release_expire_with_no_lot_to_tell():
    target = book(body='[points]\npending_days = 7\n' + SPEND + '[points.expiry]\npolicy = "rolling_days"\ndays = 5\n')
    score(target, buy("t1", "m", "2026-03-01 10:00", line(1000)))
    until(target, "2026-03-06")
    assert (target.members["m"].points, target.members["m"].pending, target.members["m"].lots) == (0, 0, [])
    assert [(e.kind, e.pending, e.ref) for e in target.ledger][-1] == ("expire", -10, "2026-03-06")


def test_pending_points_whose_release_is_their_expiry_lapse_unspendable_and_their_refund_takes_none():
    """Released and expired by one run, they were never spendable: released first, they expired as
    a lot does, so the purchase's refund took them from the balance again, a debt (a probe)."""
    target = book(body='[points]\npending_days = 2\n' + SPEND + '[points.expiry]\npolicy = "rolling_days"\ndays = 2\n')
    score(target, buy("t1", "m", "2026-03-02 10:00", line(1000)))
    until(target, "2026-03-05")
    member = target.members["m"]
    assert (member.points, member.pending, member.lots) == (0, 0, [])
    assert [(e.kind, e.points, e.pending) for e in target.ledger if e.member_id == "m"][-1] == ("expire", 0, -10)
    [back] = score(target, refund("r1", "m", "2026-03-05 10:00", "t1", 1000))
    assert (back.outcome, back.points, member.points, member.debt, member.total_points) == ("accepted", 0, 0, 0, 0)


def test_a_next_day_tier_is_entered_at_the_next_midnight_if_it_still_holds():
    bronze = 'threshold = 50000\nvalidity = "12 months"'
    tiers = SHOPLINE.format(on_expiry="reevaluate").replace(bronze, bronze + '\neffective = "next_day"')
    target = book(body=SPEND, tiers=tiers)
    score(target, buy("a1", "A", "2026-03-01 10:00", line(60000)), buy("b1", "B", "2026-03-01 10:00", line(60000)))
    score(target, refund("r1", "B", "2026-03-01 12:00", "b1", 60000))
    assert (tier_of(target, "A"), target.members["A"].next_tier) == ("Regular", 1)
    until(target, "2026-03-02")
    assert (tier_of(target, "A"), tier_of(target, "B")) == ("Bronze", "Regular")
    assert iso(target.members["A"].tier_until) == "2027-03-01"


def test_batch_moves_up_only_at_midnight():
    tiers = SHOPLINE.format(on_expiry="reevaluate").replace("[tier_policy]", '[tier_policy]\non_change = "batch"')
    target = book(body=SPEND, tiers=tiers)
    score(target, buy("a1", "A", "2026-03-01 10:00", line(120000)))
    assert tier_of(target, "A") == "Regular"
    until(target, "2026-03-02")
    assert (tier_of(target, "A"), iso(target.members["A"].tier_until)) == ("Silver", "2027-03-01")


def test_periodic_recalculation_re_evaluates_every_member_on_its_day():
    tiers = SHOPLINE.format(on_expiry="reevaluate").replace("[tier_policy]", '[tier_policy]\nperiodic = "monthly"')
    target = book(body=SPEND, tiers=tiers)
    score(target, buy("a1", "A", "2026-01-10 10:00", line(100000)))
    until(target, "2026-04-30")
    assert tier_of(target, "A") == "Silver"
    until(target, "2026-05-01")
    assert tier_of(target, "A") == "Regular"  # nothing in Feb-Apr, though valid until Jan 2027


def test_the_anomaly_report_lists_the_days_transactions_at_the_next_midnight():
    body = SPEND + "[anomaly]\ndaily_points_threshold = 100\n"
    target = book(body=body)
    score(target, buy("t1", "m", "2026-03-01 09:00", line(6000)), buy("t2", "m", "2026-03-01 10:00", line(6000)),
          buy("t3", "x", "2026-03-01 10:00", line(100)))
    rows = advance_to(target, parse_day("2026-03-02"))
    assert [(r.member_id, r.day, r.points, r.transactions) for r in rows] == [("m", "2026-03-01", 120, ["t1", "t2"])]
    assert advance_to(target, parse_day("2026-03-03")) == []


def test_a_member_still_flagged_from_an_earlier_day_is_reported_on_each_day_it_crosses_once():
    """Flagged on 1 March and not cleared, it earns 200 over 100 on 2 March: that day's report left it
    out (an outside probe). A later purchase the same day, or one of 1 March arriving late after
    that day's report, reports no day twice; each crossing is one `anomaly_flagged` event."""
    body = SPEND + "[anomaly]\ndaily_points_threshold = 100\n"
    target = book(body=body)
    score(target, buy("t1", "m", "2026-03-01 09:00", line(12000)))
    assert [(r.member_id, r.day) for r in advance_to(target, parse_day("2026-03-02"))] == [("m", "2026-03-01")]
    score(target, buy("t2", "m", "2026-03-02 09:00", line(8000)), buy("t3", "m", "2026-03-02 10:00", line(12000)),
          buy("t4", "m", "2026-03-02 11:00", line(5000)), buy("t5", "m", "2026-03-01 20:00", line(5000)))
    rows = advance_to(target, parse_day("2026-03-03"))
    assert [(r.member_id, r.day, r.points, r.transactions) for r in rows] == [
        ("m", "2026-03-02", 250, ["t2", "t3", "t4"])]
    assert [json.loads(n.detail)["txn_id"] for n in target.notices if n.kind == "anomaly_flagged"] == ["t1", "t3"]


def test_the_anomaly_report_lists_only_the_transactions_counted_in_the_days_sum():
    """Points blocked count, a frozen card's purchase earned and counted nothing (an outside probe listed it)."""
    from engine.operators import set_status

    body = SPEND + '[anomaly]\ndaily_points_threshold = 100\naction = "block_earn"\n'
    target = book(body=body)
    score(target, buy("t1", "m", "2026-03-01 09:00", line(6000)), buy("t2", "m", "2026-03-01 10:00", line(6000)))
    set_status(target, "m", "freeze", "card stolen", target.today)
    assert score(target, buy("t3", "m", "2026-03-01 11:00", line(6000)))[0].reason == "frozen"
    set_status(target, "m", "unfreeze", "found", target.today)
    assert score(target, buy("t4", "m", "2026-03-01 12:00", line(6000)))[0].reason == "blocked"
    rows = advance_to(target, parse_day("2026-03-02"))
    assert [(r.member_id, r.points, r.transactions) for r in rows] == [("m", 180, ["t1", "t2", "t4"])]


def test_a_second_run_for_the_same_date_changes_nothing():
    body = SPEND + '[points.expiry]\npolicy = "rolling_days"\ndays = 1\n'
    target = book(body=body)
    score(target, buy("t1", "m", "2026-03-01 10:00", line(1000)))
    until(target, "2026-03-02")
    before = (target.members["m"].points, len(target.ledger))
    for member in target.members.values():
        member.touched = True
    run_midnight(target, parse_day("2026-03-02"))
    assert (target.members["m"].points, len(target.ledger)) == before


KEPT_TIERS = """
[tier_policy]
on_change = "{on_change}"
periodic = "monthly"
reset_growth_on_upgrade = true

[[tiers]]
name = "Regular"

[[tiers]]
name = "Silver"
metric = "spend"
window = "lifetime"
threshold = 50000

[[tiers]]
name = "Gold"
metric = "{metric}"
window = "{window}"
threshold = {threshold}
validity = "{validity}"
"""


@pytest.mark.parametrize(("on_change", "metric", "window", "threshold", "validity"), [
    ("upgrade_only", "growth", "lifetime", 1000, "permanent"),  # growth reset at the upgrade
    ("batch", "growth", "lifetime", 1000, "permanent"),  # up at the run, the same run as the recalculation
    ("realtime", "single_purchase", "12 months", 100000, "12 months"),  # the purchase counts for one upgrade
])
def test_a_periodic_recalculation_keeps_a_tier_whose_condition_cannot_be_judged_again(
        on_change, metric, window, threshold, validity):
    """Reached by growth that was then reset, or by a single purchase used once, the tier is kept
    until its validity ends (docs/decisions.md, "Tiers"), as a refund under `realtime` keeps it:
    the 1st of the next month took it from every such member, and under `batch` the run that made
    a member Gold took it back at once, two tier changes (an outside probe)."""
    tiers = KEPT_TIERS.format(on_change=on_change, metric=metric, window=window, threshold=threshold,
                              validity=validity)
    target = book(body=SPEND, tiers=tiers)
    score(target, buy("a1", "A", "2026-03-31 10:00", line(150000)))  # under batch, Gold at the 1 April run
    until(target, "2026-04-02")
    member = target.members["A"]
    assert tier_of(target, "A") == "Gold"
    assert [(e.tier_from, e.tier_to) for e in target.ledger if e.kind == "tier"] == [(0, 2)]
    if validity != "permanent":  # kept until its validity ends, then judged again
        until(target, iso(member.tier_until + 1))
        assert tier_of(target, "A") == "Silver"


SINGLE_ORDER_SILVER = """
[tier_policy]
on_change = "{on_change}"

[[tiers]]
name = "Regular"

[[tiers]]
name = "Silver"
metric = "single_purchase"
window = "12 months"
threshold = 10000
validity = "1 months"
"""


@pytest.mark.parametrize("on_change", ["realtime", "upgrade_only", "batch"])
def test_an_order_that_renews_a_single_purchase_tier_at_its_validity_end_is_used_up(on_change):
    """SPEC §6: an order used for an upgrade is not used again. Re-entering the tier at its validity's
    end did not use the order that kept it: one order renewed a month's Silver every month of its
    window's year (an outside probe)."""
    target = book(body=SPEND, tiers=SINGLE_ORDER_SILVER.format(on_change=on_change))
    score(target, buy("b1", "A", "2026-03-01 10:00", line(10000)), buy("b2", "A", "2026-03-20 10:00", line(10000)))
    late = on_change == "batch"  # Silver from the run of 2 March, a day later
    until(target, "2026-04-30")
    renewed_until = "2026-05-01" if late else "2026-04-30"  # by b2
    assert (tier_of(target, "A"), iso(target.members["A"].tier_until)) == ("Silver", renewed_until)
    until(target, "2026-05-02")
    assert tier_of(target, "A") == "Regular"  # b1 and b2 both used
    changes = [(e.tier_from, e.tier_to, e.day) for e in target.ledger if e.kind == "tier"]
    assert changes == [(0, 1, parse_day("2026-03-01") + late), (1, 1, parse_day("2026-04-01") + late),
                       (1, 0, parse_day("2026-05-01") + late)]


def test_a_renewal_uses_up_the_order_it_was_judged_on_not_one_of_the_run_day():
    """The run of 2 March judges Silver as of 1 March, when the window of 10 days still holds b2
    (20 February); it used up the best order as of 2 March instead, b3, which then could not renew
    Silver at the next validity end, although b2 was the order that met the condition."""
    tiers = SINGLE_ORDER_SILVER.format(on_change="realtime").replace("12 months", "10 days").replace(
        '"1 months"', '"5 days"')
    target = book(body=SPEND, tiers=tiers)
    score(target, buy("b0", "A", "2026-02-20 10:00", line(10000)),  # Silver, valid until 24 February
          buy("b2", "A", "2026-02-20 11:00", line(30000)), buy("b1", "A", "2026-02-21 10:00", line(40000)),
          buy("b3", "A", "2026-02-26 10:00", line(10000)))
    until(target, "2026-03-02")  # renewed on 25 February by b1, on 2 March by b2
    assert (tier_of(target, "A"), iso(target.members["A"].tier_until)) == ("Silver", "2026-03-06")
    until(target, "2026-03-07")  # by b3, in the window as of 6 March
    assert (tier_of(target, "A"), iso(target.members["A"].tier_until)) == ("Silver", "2026-03-11")
    until(target, "2026-03-12")
    assert tier_of(target, "A") == "Regular"


def test_an_order_that_extends_a_single_purchase_tier_is_used_up():
    """b2 extended Silver at the end of b1's month and stayed among the single purchases, so at the
    end of the extension the re-evaluation put the member back in Silver on it (a review)."""
    tiers = SINGLE_ORDER_SILVER.format(on_change="upgrade_only") + \
        'extension = { metric = "single_purchase", threshold = 10000 }\n'
    target = book(body=SPEND, tiers=tiers)
    score(target, buy("b1", "A", "2026-03-01 10:00", line(10000)), buy("b2", "A", "2026-03-20 10:00", line(10000)))
    until(target, "2026-04-01")
    assert [(e.tier_to, e.note) for e in target.ledger if e.kind == "tier"][-1] == (1, "extended")
    until(target, "2026-05-01")
    assert tier_of(target, "A") == "Regular"


@pytest.mark.parametrize(("refunded", "kept"), [(10000, "Regular"), (5000, "Regular"), (0, "Silver")])
def test_an_order_refunded_since_the_upgrade_no_longer_extends_a_single_purchase_tier(refunded, kept):
    """The largest order since the upgrade was kept when it was refunded: refunded in full, it still
    extended Silver (a review). b3, below every threshold, is not among the orders kept."""
    tiers = SINGLE_ORDER_SILVER.format(on_change="upgrade_only") + \
        'extension = { metric = "single_purchase", threshold = 10000 }\n'
    target = book(body=SPEND, tiers=tiers)
    score(target, buy("b1", "A", "2026-03-01 10:00", line(10000)), buy("b2", "A", "2026-03-20 10:00", line(10000)),
          buy("b3", "A", "2026-03-21 10:00", line(6000)))
    if refunded:
        score(target, refund("r2", "A", "2026-03-22 10:00", "b2", refunded))
    assert target.members["A"].since_single == 10000 - refunded
    until(target, "2026-04-01")
    assert tier_of(target, "A") == kept


def test_a_since_upgrade_re_evaluation_uses_up_the_order_made_since_the_upgrade():
    """It used up the window's best order (b2, from before the renewal) and left b3, the order the
    re-evaluation was judged on, which then put the member back in Silver a year on (a review)."""
    tiers = SINGLE_ORDER_SILVER.format(on_change="realtime").replace(
        "[tier_policy]\n", '[tier_policy]\non_expiry = "since_upgrade"\n')
    target = book(body=SPEND, tiers=tiers)
    score(target, buy("b0", "A", "2026-03-01 10:00", line(20000)), buy("b1", "A", "2026-03-10 10:00", line(15000)),
          buy("b2", "A", "2026-03-20 10:00", line(12000)))
    until(target, "2026-04-01")  # judged on b1, the largest since the upgrade
    score(target, buy("b3", "A", "2026-04-10 10:00", line(11000)))
    until(target, "2026-05-01")  # judged on b3, the only one since the renewal
    assert (tier_of(target, "A"), [s[2] for s in target.members["A"].singles if s[1]]) == ("Silver", ["b2"])
    until(target, "2026-06-01")
    score(target, buy("s1", "A", "2027-03-25 10:00", line(100)))  # b2 out of the window, b3 would not be
    assert tier_of(target, "A") == "Regular"


def test_a_late_adjustment_past_its_expiry_is_expired_at_once():
    """Its points were spendable until the next run, as a late purchase's were (a review)."""
    target = book(body=SPEND + '[points.expiry]\npolicy = "rolling_days"\ndays = 3\n')
    score(target, buy("t0", "m", "2026-03-10 10:00", line(500)))
    [given] = score(target, adjust("a1", "m", "2026-03-05 10:00", 100))
    member = target.members["m"]
    assert (given.outcome, member.points, member.total_points) == ("accepted", 5, 105)
    assert [(e.kind, e.points) for e in target.ledger if e.member_id == "m"][-2:] == [("adjust", 100), ("expire", -100)]
    [spent] = score(target, Transaction("r1", "m", ms("2026-03-10 11:00"), "redeem", points=100))
    assert (spent.outcome, spent.reason) == ("rejected", "insufficient_points")
