"""Computed tags change at the midnight run (judged as of the day before), quiet
members are visited only when a tag could change, and operators' tags are kept apart."""


import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.calendar import iso, parse_day
from engine.errors import InvalidRequestError
from engine.midnight import visitors
from engine.replay import advance_to
from engine.summary import summarise
from engine.tagging import set_manual_tags
from engine.transactions import Transaction
from tests.builders import book, buy, event, line, ms, programme, refund, score

SPEND = "[points.spend]\nunit_minor = 100\nper_unit = 1\n"
TAGS = """
[[events]]
type = "sign_in"
points = 1

[[tags]]
name = "lapsed"
recency_days = 30

[[tags]]
name = "regular"
purchases = 3
window = "10 days"

[[tags]]
name = "big spender"
spend_minor = 50000
window = "1 months"
"""


def tagged() -> object:
    return book(body=SPEND + TAGS)


def until(target, text: str) -> None:
    advance_to(target, parse_day(text))


def tags_of(target, member: str) -> list[str]:
    return target.members[member].tags


def test_a_member_is_tagged_lapsed_by_the_run_after_n_days_without_a_purchase():
    target = tagged()
    score(target, buy("t1", "m", "2026-03-01 10:00", line(1000)))
    until(target, "2026-03-31")  # as of 30 Mar: bought within the last 30 days (1 - 30 Mar)
    assert tags_of(target, "m") == []
    until(target, "2026-04-01")  # as of 31 Mar: the last 30 days are 2 - 31 Mar
    assert tags_of(target, "m") == ["lapsed"]
    assert [(e.cause, e.ref, e.note) for e in target.ledger if e.kind == "tag"] == [
        ("midnight", "2026-04-01", "+lapsed")]


def test_a_purchase_clears_lapsed_only_at_the_next_midnight():
    target = tagged()
    score(target, buy("t1", "m", "2026-03-01 10:00", line(1000)))
    until(target, "2026-04-05")
    score(target, buy("t2", "m", "2026-04-05 10:00", line(1000)))
    assert tags_of(target, "m") == ["lapsed"]
    until(target, "2026-04-06")
    assert tags_of(target, "m") == []


def test_recency_counts_from_enrollment_for_a_member_who_never_bought():
    target = tagged()
    score(target, event("e1", "m", "2026-03-01 10:00", "sign_in"))
    until(target, "2026-03-31")
    assert tags_of(target, "m") == []
    until(target, "2026-04-01")
    assert tags_of(target, "m") == ["lapsed"]


def test_purchases_in_a_window_tag_a_member_until_the_oldest_leaves_the_window():
    target = tagged()
    score(target, *(buy(f"t{n}", "m", f"2026-03-0{n} 10:00", line(1000)) for n in (1, 2, 3)))
    until(target, "2026-03-04")
    assert tags_of(target, "m") == ["regular"]
    until(target, "2026-03-11")  # as of 10 Mar the 10 days are 1 - 10 Mar
    assert tags_of(target, "m") == ["regular"]
    until(target, "2026-03-12")  # as of 11 Mar they are 2 - 11 Mar: two purchases
    assert tags_of(target, "m") == []


def test_a_purchase_refunded_in_full_no_longer_counts_and_a_partial_refund_keeps_it():
    # SPEC §2: cancelling a paid order is a refund; it still counted (an outside probe)
    target = tagged()
    score(target, *(buy(f"t{n}", "m", f"2026-03-0{n} 10:00", line(1000)) for n in (1, 2, 3)),
          refund("r3", "m", "2026-03-03 12:00", "t3", 600), refund("r3b", "m", "2026-03-03 12:30", "t3", 400))
    until(target, "2026-03-04")
    assert (tags_of(target, "m"), target.members["m"].purchases) == ([], 2)
    score(target, buy("t4", "m", "2026-03-04 10:00", line(1000)), refund("r4", "m", "2026-03-04 11:00", "t4", 500))
    until(target, "2026-03-05")
    assert tags_of(target, "m") == ["regular"]  # t4 is still a purchase, of 5.00


def test_refunded_spend_leaves_the_spend_window():
    target = tagged()
    score(target, buy("t1", "m", "2026-03-01 10:00", line(60000)), refund("r1", "m", "2026-03-01 12:00", "t1", 20000))
    until(target, "2026-03-02")
    assert tags_of(target, "m") == []
    score(target, buy("t2", "m", "2026-03-02 10:00", line(10000)))
    until(target, "2026-03-03")
    assert tags_of(target, "m") == ["big spender"]


def test_a_quiet_night_visits_only_members_whose_tags_could_change():
    target = tagged()
    score(target, *(buy(f"t{n}", f"m{n}", f"2026-03-{n + 1:02d} 10:00", line(1000)) for n in range(20)))
    until(target, "2026-03-22")
    assert visitors(target, parse_day("2026-03-23")) == []  # nothing is due: nobody is visited
    assert visitors(target, parse_day("2026-04-01")) == ["m0"]  # m0 bought on 1 Mar: lapsed as of 31 Mar


def test_operators_tags_are_kept_apart_from_computed_ones_and_counted():
    target = tagged()
    score(target, buy("t1", "m", "2026-03-01 10:00", line(1000)), buy("t2", "n", "2026-03-01 10:00", line(1000)))
    until(target, "2026-04-01")
    set_manual_tags(target, "m", ["vip", "staff"], [], "store manager", target.today)
    set_manual_tags(target, "n", ["vip"], [], "store manager", target.today)
    set_manual_tags(target, "n", [], ["vip"], "left the club", target.today)
    assert target.members["m"].manual_tags == ["staff", "vip"]
    assert summarise(target.programme, target.members["m"]).tags == ["lapsed", "staff", "vip"]
    assert target.tag_counts == {"lapsed": 2, "staff": 1, "vip": 1}
    assert [(e.cause, e.note) for e in target.ledger if e.kind == "tag" and e.member_id == "n"][-2:] == [
        ("operator", "+vip: store manager"), ("operator", "-vip: left the club")]


@pytest.mark.parametrize(("tags", "reason", "problem"), [
    (["x" * 65], "why", "tag: expected 1 to 64 printable characters"),
    ([""], "why", "tag: expected 1 to 64 printable characters"),
    (["  "], "why", "tag: expected 1 to 64 printable characters, not only spaces, got '  '"),  # a probe's
    (["\U0001f642\n\x00"], "why", "tag: expected 1 to 64 printable characters"),  # was a raw NUL in a metric label
    (["vip"], "", "reason: an operator's change of tags needs a reason"),
    (["vip"], " \u200b", "reason: an operator's change of tags needs a reason one can read"),  # a probe's
])
def test_a_bad_manual_tag_is_refused_and_changes_nothing(tags, reason, problem):
    target = tagged()
    score(target, buy("t1", "m", "2026-03-01 10:00", line(1000)))
    with pytest.raises(InvalidRequestError, match=problem):
        set_manual_tags(target, "m", tags, [], reason, target.today)
    assert (target.members["m"].manual_tags, target.tag_counts) == ([], {})


@pytest.mark.parametrize(("add", "remove", "problem"), [
    (["regular"], [], "add: member 'm': 'regular' is a computed tag"),
    ([], ["lapsed"], "remove: member 'm': 'lapsed' is a computed tag"),
    (["vip"], ["big spender"], "remove: member 'm': 'big spender' is a computed tag"),
])
def test_an_operator_can_neither_give_nor_take_a_computed_tag(add, remove, problem):
    # an outside probe: `--remove lapsed` did nothing and said nothing; `--add regular` was counted
    # with the computed tag's members
    target = tagged()
    score(target, buy("t1", "m", "2026-03-01 10:00", line(1000)))
    until(target, "2026-04-01")
    assert tags_of(target, "m") == ["lapsed"]
    with pytest.raises(InvalidRequestError, match=problem):
        set_manual_tags(target, "m", add, remove, "why", target.today)
    assert (target.members["m"].manual_tags, tags_of(target, "m"), target.tag_counts) == ([], ["lapsed"], {"lapsed": 1})


def test_a_computed_tag_a_version_dropped_is_still_the_rules_until_the_midnight_run_takes_it():
    # a reviewer: removing it between the publish and the run changed nothing and said nothing
    target = tagged()
    score(target, buy("t1", "m", "2026-03-01 10:00", line(1000)))
    until(target, "2026-04-01")
    target.programme = programme(body=SPEND + TAGS.replace('name = "lapsed"', 'name = "dormant"'))
    assert tags_of(target, "m") == ["lapsed"]
    held = "is a computed tag the member still holds from an earlier rules version, until the next midnight run"
    with pytest.raises(InvalidRequestError, match=f"remove: member 'm': 'lapsed' {held}"):
        set_manual_tags(target, "m", [], ["lapsed"], "why", target.today)
    with pytest.raises(InvalidRequestError, match=f"add: member 'm': 'lapsed' {held}"):  # not "the rules' [[tags]]"
        set_manual_tags(target, "m", ["lapsed"], [], "why", target.today)


def test_a_manual_tag_a_later_version_made_a_computed_tags_name_can_still_be_removed():
    without = TAGS.replace('name = "regular"', 'name = "frequent"')
    target = book(body=SPEND + without)
    score(target, buy("t1", "m", "2026-03-01 10:00", line(1000)))
    set_manual_tags(target, "m", ["regular"], [], "store manager", target.today)
    target.programme = programme(body=SPEND + TAGS)
    set_manual_tags(target, "m", [], ["regular"], "clean up", target.today)
    assert (target.members["m"].manual_tags, target.tag_counts) == ([], {})


def test_a_call_adding_more_manual_tags_than_the_limit_is_refused_naming_the_member_and_changes_nothing():
    target = tagged()
    score(target, buy("t1", "m", "2026-03-01 10:00", line(1000)))
    many = [f"t{n}" for n in range(65)]
    with pytest.raises(InvalidRequestError, match="member 'm': at most 64 tags per call, got 65"):
        set_manual_tags(target, "m", many, [], "campaign", target.today)
    with pytest.raises(InvalidRequestError, match="remove: member 'm': at most 64 tags per call, got 65"):
        set_manual_tags(target, "m", [], many, "campaign", target.today)
    assert (target.members["m"].manual_tags, target.tag_counts, target.ledger[-1].kind) == ([], {}, "earn")
    set_manual_tags(target, "m", many[:64] * 2, [], "campaign", target.today)  # a tag named twice counts once
    assert len(target.members["m"].manual_tags) == 64


def test_a_member_holds_at_most_64_manual_tags_and_a_call_past_it_changes_nothing():
    target = tagged()
    score(target, buy("t1", "m", "2026-03-01 10:00", line(1000)))
    first = [f"a{n}" for n in range(60)]
    set_manual_tags(target, "m", first, [], "campaign", target.today)
    entries = len(target.ledger)
    with pytest.raises(InvalidRequestError, match="member 'm' would hold 70 manual tags, at most 64"):
        set_manual_tags(target, "m", [f"b{n}" for n in range(10)], [], "campaign", target.today)
    assert (target.members["m"].manual_tags, len(target.ledger)) == (sorted(first), entries)
    assert len(target.tag_counts) == 60
    # swapping ten for ten stays within it, and the whole set can be replaced in one call
    set_manual_tags(target, "m", [f"b{n}" for n in range(10)], first[:10], "campaign", target.today)
    set_manual_tags(target, "m", [f"c{n}" for n in range(64)], target.members["m"].manual_tags, "new", target.today)
    assert target.members["m"].manual_tags == sorted(f"c{n}" for n in range(64))


def test_a_member_tagged_past_the_limit_before_it_existed_loses_tags_fast_and_gains_none():
    # the note of a change compared lists: 40,000 tags took minutes and held the member's shard
    target = tagged()
    score(target, buy("t1", "m", "2026-03-01 10:00", line(1000)))
    member = target.members["m"]
    member.manual_tags = sorted(f"old-{n:05d}" for n in range(40_000))
    target.count_tags([], member.manual_tags)
    set_manual_tags(target, "m", [], member.manual_tags[:64], "clean-up", target.today)  # lists: about 15 s
    assert len(member.manual_tags) == len(target.tag_counts) == 40_000 - 64
    with pytest.raises(InvalidRequestError, match="would hold 39,937 manual tags, at most 64"):
        set_manual_tags(target, "m", ["vip"], [], "campaign", target.today)


purchases = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 59), st.integers(1, 40000)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(purchases)
def test_after_every_run_each_members_tags_are_what_its_purchases_say_and_the_counts_agree(stream):
    target = tagged()
    start = parse_day("2026-01-01")
    in_order = sorted(stream, key=lambda s: s[1])
    txns = [Transaction(f"t{i}", f"m{member}", ms(f"{iso(start + day)} 12:00"), "purchase", lines=[line(amount)])
            for i, (member, day, amount) in enumerate(in_order)]
    score(target, *txns)
    rules = target.programme.tags
    for _ in range(100):  # every member judged from scratch, as of the day before each run
        advance_to(target, target.today + 1)
        for member in target.members.values():
            assert member.tags == rules.computed(member, target.today - 1), (member.member_id, iso(target.today))
    counts: dict[str, int] = {}
    for member in target.members.values():
        for tag in member.tags + member.manual_tags:
            counts[tag] = counts.get(tag, 0) + 1
    assert target.tag_counts == counts
