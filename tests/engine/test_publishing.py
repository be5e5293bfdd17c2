"""What a publish does to members' tiers (docs/rules.md, "Publishing a new version"): members keep
the tier of the same name; one whose tier the new version no longer has goes to the lowest, and
that move is one ledger entry like every change of tier (SPEC §2), named in both versions' words."""

import json

from engine.notices import TIER_CHANGED
from engine.operators import set_tier
from engine.programme import Programme
from engine.publishing import reevaluate, remap_tiers
from engine.summary import summarise_entry
from engine.validation import load_rules
from tests.builders import SILVER_BY_GROWTH as SILVER
from tests.builders import book, buy, line, rules_text, score, three_tiers

SPEND = "[points.spend]\nunit_minor = 100\nper_unit = 1\n"
DAY = "2026-03-04 10:00"
V2_WITHOUT_SILVER = rules_text(body=SPEND, tiers=three_tiers(silver="")).replace("version = 1", "version = 2")


def silver_member():
    """A book under version 1 with m1 in Silver (100 growth), its ledger and events taken."""
    target = book(body=SPEND, tiers=three_tiers())
    score(target, buy("t1", "m1", DAY, line(10000)))
    assert target.members["m1"].tier == 1
    target.take_changes()
    target.take_notices()
    return target


def publish(target, text: str) -> bool:
    """As a shard's publish does it for each member: the new rules in force, then tiers kept by name."""
    old = target.programme
    target.programme = Programme(load_rules(text))
    return remap_tiers(target, target.members["m1"], old.ladder.names)


def test_a_member_whose_tier_a_publish_removes_goes_to_the_lowest_with_one_entry_naming_both_tiers():
    target = silver_member()
    assert publish(target, V2_WITHOUT_SILVER)
    member = target.members["m1"]
    assert (member.tier, member.tier_until) == (0, 0)
    entries, _ = target.take_changes()
    assert [(e.kind, e.cause, e.ref, e.rule_version) for e in entries] == [("tier", "rules", "v2", 2)]
    shown = summarise_entry(entries[0], target.programme.ladder.names, target.programme.why)
    assert (shown.tier_from, shown.tier_to) == ("Silver", "Basic")
    notices = target.take_notices()
    assert [n.kind for n in notices] == [TIER_CHANGED]
    detail = json.loads(notices[0].detail)
    assert (detail["from_tier"], detail["to_tier"], detail["direction"], detail["cause"]) == (
        "Silver", "Basic", "down", "rules")


def test_a_member_moved_by_a_publish_and_then_reevaluated_has_an_entry_for_each_move():
    target = silver_member()
    publish(target, V2_WITHOUT_SILVER.replace("threshold = 50000", "threshold = 10000"))  # 10,000 spent: Gold
    reevaluate(target, target.members["m1"], 2)
    names = target.programme.ladder.names
    shown = [summarise_entry(e, names, None) for e in target.take_changes()[0]]
    moves = [(s.tier_from, s.tier_to, s.ref) for s in shown if s.kind == "tier"]
    assert moves == [("Silver", "Basic", "v2"), ("Basic", "Gold", "v2")]


def test_re_evaluation_moves_members_up_only():
    # a tier given by hand (or by a recharge bonus, a paid upgrade) does not meet its condition:
    # judged again at a publish that changed anything in the ladder, its members were demoted
    target = book(body=SPEND, tiers=three_tiers())
    score(target, buy("t1", "m1", DAY, line(100)), buy("t2", "m2", DAY, line(100)))
    set_tier(target, "m1", "Silver", "store manager", target.today)
    target.take_changes()
    easier_gold = three_tiers().replace("threshold = 50000", "threshold = 100")
    target.programme = Programme(load_rules(rules_text(body=SPEND, tiers=easier_gold).replace(
        "version = 1", "version = 2")))
    for member in ("m1", "m2"):
        reevaluate(target, target.members[member], 2)
    assert target.members["m1"].tier == 2  # up to Gold: 100 spent in 3 months now suffices
    harder_silver = three_tiers(SILVER.replace("threshold = 100", "threshold = 900"))
    target.programme = Programme(load_rules(rules_text(body=SPEND, tiers=harder_silver).replace(
        "version = 1", "version = 3")))
    set_tier(target, "m2", "Silver", "store manager", target.today)
    reevaluate(target, target.members["m2"], 3)
    assert target.members["m2"].tier == 1  # kept: no condition of Silver's or Gold's holds
    moves = [(e.member_id, e.tier_from, e.tier_to, e.cause) for e in target.take_changes()[0] if e.kind == "tier"]
    assert moves == [("m1", 1, 2, "rules"), ("m2", 0, 2, "rules"), ("m2", 2, 1, "operator")]


def test_a_publish_that_keeps_the_members_tier_by_name_writes_nothing():
    target = silver_member()
    moved = rules_text(body=SPEND, tiers=three_tiers(silver="") + SILVER).replace("version = 1", "version = 2")
    assert publish(target, moved)  # Silver is now third: the same tier, at another position
    assert target.members["m1"].tier == 2
    assert target.take_changes()[0] == []
    assert target.take_notices() == []


def test_a_renamed_lowest_tier_is_the_same_tier_for_its_members():
    target = book(body=SPEND, tiers=three_tiers())
    score(target, buy("t1", "m1", DAY, line(100)))
    target.take_changes()
    renamed = rules_text(body=SPEND, tiers=three_tiers().replace('"Basic"', '"Member"'))
    assert not publish(target, renamed.replace("version = 1", "version = 2"))
    assert target.take_changes()[0] == []


def _published_with_easier_gold(policy: str = "", effective: str = ""):
    """m1 in Silver (10,000 spent the day before, quiet since: a reviewer); then version 2, Gold at
    100 spent, with `effective` and `policy`."""
    from engine.calendar import parse_day
    from engine.replay import advance_to

    target = book(body=SPEND + policy, tiers=three_tiers())
    score(target, buy("t1", "m1", "2026-03-03 10:00", line(10000)))
    advance_to(target, parse_day("2026-03-04"))
    gold = three_tiers().replace("threshold = 50000", "threshold = 100" + effective)
    target.programme = Programme(load_rules(rules_text(body=SPEND + policy, tiers=gold).replace("version = 1",
                                                                                                "version = 2")))
    before = target.members["m1"].tier  # Silver; under `batch` still Basic until midnight
    reevaluate(target, target.members["m1"], 2)
    return target, before


def test_a_publish_enters_a_next_day_tier_at_the_next_midnight_and_a_batch_policy_moves_up_only_then():
    """SPEC §6: a `next_day` tier is entered at the next midnight even when its condition holds now,
    and `batch` moves members only at midnight; a publish put them in at once (an outside probe)."""
    from engine.calendar import parse_day
    from engine.replay import advance_to

    for target, before in (_published_with_easier_gold(effective='\neffective = "next_day"'),
                           _published_with_easier_gold(policy='[tier_policy]\non_change = "batch"\n')):
        member = target.members["m1"]
        assert member.tier == before < 2  # as it was on the day of the publish
        advance_to(target, parse_day("2026-03-05"))
        assert member.tier == 2
    immediate, _ = _published_with_easier_gold()
    assert immediate.members["m1"].tier == 2  # an immediate tier: at once, as before
