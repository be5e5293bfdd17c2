"""Tier moves as transactions arrive (docs/rules.md: tiers and tier policy)."""

import pytest

from engine.calendar import iso, parse_day
from engine.members import Member
from engine.operators import set_tier
from engine.replay import advance_to
from engine.transactions import Transaction
from tests.builders import book, buy, line, ms, recharge, refund, score, three_tiers

SPEND = "[points.spend]\nunit_minor = 100\nper_unit = 1\n"
DAY = "2026-03-04 10:00"


def ladder(policy: str = "upgrade_only", extra: str = "") -> str:
    return f"""
[tier_policy]
on_change = "{policy}"
{extra}
{three_tiers()}"""


def test_upgrade_only_moves_up_as_soon_as_the_condition_holds():
    target = book(body=SPEND, tiers=ladder())
    score(target, buy("t1", "m1", DAY, line(9000)))
    assert target.members["m1"].tier == 0
    score(target, buy("t2", "m1", DAY, line(1000)))
    member = target.members["m1"]
    assert member.tier == 1
    assert [(e.kind, e.tier_from, e.tier_to, e.ref) for e in target.ledger if e.kind == "tier"] == [
        ("tier", 0, 1, "t2")]


def test_members_are_matched_from_the_highest_tier_down():
    target = book(body=SPEND, tiers=ladder())
    score(target, buy("t1", "m1", DAY, line(60000)))
    member = target.members["m1"]
    assert member.tier == 2
    assert iso(member.tier_until) == "2027-03-03"


def test_a_tier_reached_on_a_lifetime_metric_is_permanent():
    target = book(body=SPEND, tiers=ladder())
    score(target, buy("t1", "m1", DAY, line(10000)))
    assert (target.members["m1"].tier, target.members["m1"].tier_until) == (1, 0)


def test_upgrade_only_does_not_move_down_when_a_refund_lowers_the_metric():
    target = book(body=SPEND, tiers=ladder())
    score(target, buy("t1", "m1", DAY, line(10000)), refund("r1", "m1", DAY, "t1", 10000))
    assert target.members["m1"].tier == 1


def test_realtime_moves_down_at_once_when_a_refund_lowers_the_metric():
    target = book(body=SPEND, tiers=ladder("realtime"))
    score(target, buy("t1", "m1", DAY, line(10000)), refund("r1", "m1", DAY, "t1", 5000))
    assert target.members["m1"].tier == 0
    assert [(e.tier_from, e.tier_to) for e in target.ledger if e.kind == "tier"] == [(0, 1), (1, 0)]


def test_batch_waits_for_midnight():
    target = book(body=SPEND, tiers=ladder("batch"))
    score(target, buy("t1", "m1", DAY, line(60000)))
    assert target.members["m1"].tier == 0


def test_a_next_day_tier_is_scheduled_for_the_next_midnight():
    tiers = ladder().replace('validity = "12 months"', 'validity = "12 months"\neffective = "next_day"')
    target = book(body=SPEND, tiers=tiers)
    score(target, buy("t1", "m1", DAY, line(60000)))
    member = target.members["m1"]
    assert (member.tier, member.next_tier) == (1, 2)  # Silver now, Gold from tomorrow


def test_reaching_a_tier_by_growth_resets_growth_when_the_programme_says_so():
    target = book(body=SPEND, tiers=ladder(extra="reset_growth_on_upgrade = true"))
    score(target, buy("t1", "m1", DAY, line(15000)))
    member = target.members["m1"]
    assert (member.tier, member.growth) == (1, 0)
    assert sum(e.growth for e in target.ledger) == 0


def test_a_reset_growth_tier_is_kept_by_realtime_until_its_validity_ends():
    tiers = ladder("realtime", "reset_growth_on_upgrade = true")
    target = book(body=SPEND, tiers=tiers)
    score(target, buy("t1", "m1", DAY, line(15000)), refund("r1", "m1", DAY, "t1", 1000))
    assert target.members["m1"].tier == 1


def test_the_tier_multiplier_uses_the_tier_before_the_purchase():
    body = SPEND + '[[multipliers]]\nname = "silver"\nfactor = 2\nwhen = { tiers = ["Silver"] }\n'
    target = book(body=body, tiers=ladder())
    results = score(target, buy("t1", "m1", DAY, line(10000)), buy("t2", "m1", DAY, line(100)))
    assert [r.points for r in results] == [100, 2]


SINGLE = """
[[tiers]]
name = "Basic"

[[tiers]]
name = "VIP"
metric = "single_purchase"
threshold = 100000
validity = "12 months"
"""


def test_a_single_purchase_upgrades_and_is_used_up():
    target = book(body=SPEND, tiers=SINGLE)
    score(target, buy("t1", "m1", DAY, line(99999)))
    assert target.members["m1"].tier == 0
    score(target, buy("t2", "m1", DAY, line(100000)))
    member = target.members["m1"]
    assert member.tier == 1
    assert [(s[2], s[1]) for s in member.singles] == [("t2", 0)]  # used up: nothing left to count


def test_a_paid_upgrade_buys_the_tier():
    tiers = SINGLE.replace('validity = "12 months"', 'validity = "12 months"\npaid_upgrade_sku = "VIP-CARD"')
    target = book(body=SPEND, tiers=tiers)
    score(target, buy("t1", "m1", DAY, line(9900, sku="VIP-CARD")))
    member = target.members["m1"]
    assert member.tier == 1
    assert [e.note for e in target.ledger if e.kind == "tier"] == ["paid upgrade"]


def test_recharges_count_toward_a_recharge_tier():
    tiers = '[[tiers]]\nname = "Basic"\n[[tiers]]\nname = "Card"\nmetric = "recharge"\nthreshold = 100000\n'
    target = book(body=SPEND, tiers=tiers)
    score(target, Transaction("c1", "m1", ms(DAY), "recharge", amount_minor=100000))
    assert target.members["m1"].tier == 1


def test_a_lifetime_condition_reads_its_own_metric():
    # each lifetime sum distinct: a compiled engine reading another metric's field passed the replays
    member = Member("m1", enrolled=0, growth=1, total_points=2, total_spend=3, total_recharge=4)
    for metric, figure in [("growth", 1), ("points", 2), ("spend", 3), ("recharge", 4)]:
        ladder = book(body=SPEND, tiers=ladder_on(metric)).programme.ladder
        assert ladder.value(member, ladder.tiers[1], 0) == figure, metric


def ladder_on(metric: str) -> str:
    return f'[[tiers]]\nname = "Basic"\n[[tiers]]\nname = "Top"\nmetric = "{metric}"\nthreshold = 5\n'


GIVEN = {
    "paid upgrade": ("", "", [buy("g1", "m1", DAY, line(9900, sku="GOLD-CARD"))]),
    "recharge bonus": ("", '[[recharge_bonuses]]\nname = "gold"\nmin_amount_minor = 100\nupgrade_to = "Gold"\n',
                       [recharge("g1", "m1", DAY, 100)]),
    "enrollment channel": ('default_tier_by_channel = { vip = "Gold" }', "",
                           [buy("g1", "m1", DAY, line(100), channel="vip")]),
}


@pytest.mark.parametrize("how", [*GIVEN, "operator"])
def test_realtime_keeps_a_given_tier_after_a_refund_until_its_validity_ends(how):
    # rules.md: a refunded paid upgrade or recharge does not take the tier back; realtime re-matched
    # the ladder at the first refund of anything and dropped them (an outside probe)
    top, body, given = GIVEN.get(how, ("", "", []))
    gold_card = 'validity = "12 months"\npaid_upgrade_sku = "GOLD-CARD"'
    tiers = ladder("realtime").replace('validity = "12 months"', gold_card)
    target = book(top=top, body=SPEND + body, tiers=tiers)
    score(target, *given, buy("t1", "m1", DAY, line(10000)))
    if how == "operator":
        set_tier(target, "m1", "Gold", "complaint", parse_day("2026-03-04"))
    assert target.members["m1"].tier == 2
    score(target, refund("r1", "m1", DAY, "t1", 5000))
    member = target.members["m1"]
    assert (member.tier, iso(member.tier_until)) == (2, "2027-03-03")


@pytest.mark.parametrize("reason", ["", "  ", "\u200b", "\x00", "\ufeff\n", "\u3164", "\u115f\u034f", "\ufe0f "])
def test_an_operators_tier_change_needs_a_reason_one_can_read(reason):
    """The reason is kept in the ledger entry that explains the change (an outside probe's was a
    zero-width space)."""
    from engine.errors import InvalidRequestError

    target = book(body=SPEND, tiers=ladder("realtime"))
    score(target, buy("t1", "m1", DAY, line(100)))
    with pytest.raises(InvalidRequestError, match="needs a reason one can read"):
        set_tier(target, "m1", "Gold", reason, parse_day("2026-03-04"))
    assert target.members["m1"].tier == 0
    assert set_tier(target, "m1", "Gold", "\u200bcomplaint", parse_day("2026-03-04")).tier == 2


def test_realtime_moves_down_no_lower_than_a_given_tier_after_a_higher_one_is_reached_and_refunded():
    # a reviewer: the gift was forgotten once a higher tier was reached on its condition
    target = book(body=SPEND, tiers=ladder("realtime"))
    score(target, buy("t0", "m1", DAY, line(100)))
    set_tier(target, "m1", "Silver", "complaint", parse_day("2026-03-04"))
    score(target, buy("t1", "m1", DAY, line(60000)))
    assert target.members["m1"].tier == 2  # Gold, on its condition
    score(target, refund("r1", "m1", DAY, "t1", 60000))
    member = target.members["m1"]
    assert (member.tier, member.tier_until) == (1, 0)  # Silver as given: permanent


SILVER_FOR_SIX_MONTHS = ('name = "Silver"\nmetric = "spend"\nwindow = "3 months"\nthreshold = 20000\n'
                         'validity = "6 months"\n')


def test_back_in_a_given_tier_the_member_keeps_the_validity_it_was_given_with():
    tiers = ladder("realtime").replace('name = "Silver"\nmetric = "growth"\nthreshold = 100\n', SILVER_FOR_SIX_MONTHS)
    target = book(body=SPEND, tiers=tiers)
    score(target, buy("t0", "m1", DAY, line(100)))
    set_tier(target, "m1", "Silver", "complaint", parse_day("2026-03-04"))
    score(target, buy("t1", "m1", "2026-05-01 10:00", line(60000)), refund("r1", "m1", "2026-05-02 10:00", "t1", 60000))
    member = target.members["m1"]
    assert (member.tier, iso(member.tier_until)) == (1, "2026-09-03")  # not six months from the refund


def test_a_card_for_a_lower_tier_bought_in_a_higher_one_is_the_floor_it_falls_back_to():
    """Bought while in Gold, a Silver card changed nothing and was lost (an outside probe): the member
    stays in Gold, and falls back to the Silver it paid for, for that Silver's validity."""
    silver_card = SILVER_FOR_SIX_MONTHS + 'paid_upgrade_sku = "SILVER-CARD"\n'
    tiers = ladder("realtime").replace('name = "Silver"\nmetric = "growth"\nthreshold = 100\n', silver_card)
    target = book(body=SPEND, tiers=tiers)
    score(target, buy("t1", "m1", DAY, line(60000)), buy("c1", "m1", "2026-03-10 10:00", line(100, sku="SILVER-CARD")))
    member = target.members["m1"]
    assert member.tier == 2
    assert [e.note for e in target.ledger if e.kind == "tier"][-1] == "paid upgrade: Silver given until 2026-09-09"
    score(target, refund("r1", "m1", "2026-03-11 10:00", "t1", 60000))
    assert (member.tier, iso(member.tier_until)) == (1, "2026-09-09")


def test_a_downgrade_to_tier_is_given_and_runs_its_validity_under_realtime():
    tiers = ladder("realtime").replace('validity = "12 months"', 'validity = "12 months"\ndowngrade_to = "Silver"')
    tiers = tiers.replace('name = "Silver"\nmetric = "growth"\nthreshold = 100\n', SILVER_FOR_SIX_MONTHS)
    target = book(body=SPEND, tiers=tiers)
    score(target, buy("t1", "m1", DAY, line(60000)))
    advance_to(target, parse_day("2027-03-05"))  # Gold's validity ended: down to Silver, not re-matched
    member = target.members["m1"]
    assert (member.tier, iso(member.tier_until)) == (1, "2027-09-03")
    score(target, buy("t2", "m1", "2027-03-05 10:00", line(1000)), refund("r2", "m1", "2027-03-05 11:00", "t2", 1000))
    assert target.members["m1"].tier == 1  # the refund re-matched the ladder (Basic) and took it before


def test_a_new_member_in_its_channels_default_tier_has_its_ledger_entry_and_event():
    """SPEC §2, every change of tier one ledger entry: nothing said how it came to be in Gold (a probe)."""
    from engine.operators import Enrollment, enroll

    target = book(top='default_tier_by_channel = { vip = "Gold" }', body=SPEND, tiers=ladder())
    score(target, buy("g1", "m1", DAY, line(100), channel="vip"), buy("p1", "m3", DAY, line(100), channel="pos"))
    enroll(target, Enrollment(member_id="m2", channel="vip"), target.today)
    entries = [(e.member_id, e.tier_from, e.tier_to, e.note) for e in target.ledger if e.kind == "tier"]
    assert entries == [("m1", 0, 2, "channel vip"), ("m2", 0, 2, "channel vip")]
    assert [n.member_id for n in target.notices if n.kind == "tier_changed"] == ["m1", "m2"]


def test_a_tier_an_operator_set_ends_with_its_validity_for_a_member_with_nothing_else_due():
    # no midnight run visited the member again: Gold for good with every member in memory (an outside probe)
    target = book(body=SPEND, tiers=ladder())
    score(target, buy("t0", "m1", DAY, line(50)))  # no points: nothing of its own is due at a midnight
    advance_to(target, parse_day("2026-03-10"))
    set_tier(target, "m1", "Gold", "complaint", parse_day("2026-03-10"))
    until = target.members["m1"].tier_until
    advance_to(target, until + 1)
    assert (target.members["m1"].tier, target.members["m1"].tier_until) == (0, 0)


def test_an_operators_tier_set_again_the_same_day_changes_nothing_and_a_later_day_renews_it():
    # an outside probe: a retried SetTier zeroed what the member had earned toward its extension
    target = book(body=SPEND, tiers=ladder())
    day = parse_day("2026-03-04")
    score(target, buy("t0", "m1", DAY, line(50)))
    set_tier(target, "m1", "Gold", "complaint", day)
    score(target, buy("t1", "m1", DAY, line(150000)))
    member = target.members["m1"]
    earned, until = member.since_spend, member.tier_until
    assert earned == 150000
    set_tier(target, "m1", "Gold", "complaint (retried)", day)
    assert (member.since_spend, member.tier_until) == (earned, until)
    assert [e.note for e in target.ledger if e.kind == "tier" and e.cause == "operator"] == ["complaint"]
    score(target, buy("t2", "m1", "2026-03-05 10:00", line(100)))
    set_tier(target, "m1", "Gold", "renewed", parse_day("2026-03-05"))
    assert (member.since_spend, member.tier_until) == (0, until + 1)
