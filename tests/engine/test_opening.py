"""Opening balances as pure functions: what an imported member holds, that its ledger explains
it, and that imported points and tiers then behave exactly like earned ones."""

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.book import Book
from engine.calendar import iso, parse_day
from engine.errors import RowRejectedError
from engine.midnight import run_midnight
from engine.opening import Opening, OpeningLot, open_member, opening_problem
from engine.programme import Programme
from engine.scoring import score_transaction
from engine.transactions import Transaction
from engine.types import NEVER
from engine.validation import load_rules
from tests.builders import ms
from tests.engine.test_invariants import EXAMPLE, VARIANTS, streams

DAY = parse_day("2026-11-09")
"""The business day of the imports: the day before the invariant streams start."""
FIELDS = ("points", "pending", "growth", "stored_value", "bonus_value")


def book(rules: str = EXAMPLE, day: int = DAY) -> Book:
    return Book(Programme(load_rules(rules)), today=day)


def test_an_imported_member_holds_its_opening_balances_and_one_ledger_entry_says_so():
    target = book()
    row = Opening(member_id="m1", tier="Gold", tier_valid_until="2027-05-14", stored_value=5_000, bonus_value=200,
                  growth=340, channel="pos", birthday="1980-03-05",
                  points=[OpeningLot(300, "never"), OpeningLot(1_200, "2027-01-01"), OpeningLot(50, "2027-01-01")])
    member = open_member(target, row, "shop.csv:1", DAY)
    assert (member.tier, iso(member.tier_until), member.tier_since) == (2, "2027-05-14", DAY)
    assert [(iso(lot.expires) if lot.expires < NEVER else "never", lot.amount) for lot in member.lots] == [
        ("2027-01-01", 1_250), ("never", 300)]
    assert (member.points, member.growth, member.stored_value, member.bonus_value) == (1_550, 340, 5_000, 200)
    assert (member.profile.birthday, member.profile.channel, member.enrolled) == ("03-05", "pos", DAY)
    [entry] = target.ledger
    assert (entry.cause, entry.ref, entry.kind, entry.day) == ("import", "shop.csv:1", "opening", DAY)
    assert (entry.points, entry.growth, entry.stored_value, entry.bonus_value) == (1_550, 340, 5_000, 200)
    assert (entry.tier_from, entry.tier_to, entry.lots) == (-1, 2, ((parse_day("2027-01-01"), 1_250), (NEVER, 300)))


def test_empty_fields_take_the_programmes_defaults_as_if_earned_on_the_import_day():
    target = book()
    member = open_member(target, Opening(member_id="m2", tier="Gold", points=[OpeningLot(500)]), "i", DAY)
    # jan1_after_years = 1: earned in 2026 expire on 1 Jan 2028; Gold is valid 12 months
    assert [(iso(lot.expires), lot.amount) for lot in member.lots] == [("2028-01-01", 500)]
    assert iso(member.tier_until) == "2027-11-08"
    assert open_member(target, Opening(member_id="m3"), "i", DAY).tier == 0


@pytest.mark.parametrize(("fields", "reason"), [
    ({"member_id": ""}, "bad_member_id"),
    ({"member_id": "x" * 101}, "bad_member_id"),
    ({"member_id": " "}, "bad_member_id"),  # as a transaction's and Enroll's (engine/ids.py)
    ({"member_id": "M\x00"}, "bad_member_id"),
    ({"tier": "Platinum"}, "unknown_tier"),
    ({"stored_value": -1}, "negative_amount"),
    ({"growth": 10**15 + 1}, "amount_too_large"),
    ({"stored_value": 10**15, "bonus_value": 10**15}, "amount_too_large"),  # one balance, in two parts
    ({"stored_value": 10**15, "bonus_value": 1}, "amount_too_large"),
    ({"points": [OpeningLot(-5)]}, "negative_amount"),
    ({"points": [OpeningLot(10**15), OpeningLot(1, "never")]}, "amount_too_large"),
    ({"points": [OpeningLot(10**15, "2027-01-01"), OpeningLot(1, "2027-01-01")]}, "amount_too_large"),
    ({"points": [OpeningLot(10**15 + 1, "never")]}, "amount_too_large"),
    ({"points": [OpeningLot(5, "2026-11-09")]}, "points_expired"),
    ({"points": [OpeningLot(5, "2026-02-30")]}, "bad_expiry"),
    ({"points": [OpeningLot(5, "20270101")]}, "bad_expiry"),
    ({"points": [OpeningLot(5, "2999-01-01")]}, "bad_expiry"),
    ({"tier": "Gold", "tier_valid_until": "2026-11-08"}, "bad_tier_valid_until"),
    ({"tier": "Basic", "tier_valid_until": "2027-01-01"}, "bad_tier_valid_until"),
    ({"status": "closed"}, "bad_status"),
    ({"channel": "c" * 1001}, "text_too_long"),  # Enroll refused it; an import kept 5,000 (an outside probe)
    ({"campaign": "c" * 1001}, "text_too_long"),
    ({"birthday": "13-01"}, "bad_birthday"),
])
def test_a_row_that_cannot_be_imported_is_refused_with_its_reason_and_changes_nothing(fields, reason):
    target = book()
    row = Opening(**{"member_id": "m1", **fields})
    assert opening_problem(target, row).reason == reason
    with pytest.raises(RowRejectedError) as refused:
        open_member(target, row, "i", DAY)
    assert refused.value.reason == reason
    assert (dict(target.members), target.ledger, target.dirty) == ({}, [], {})


def test_stored_value_and_bonus_may_fill_the_bound_together():
    member = open_member(book(), Opening(member_id="m1", stored_value=10**15 - 200, bonus_value=200), "i", DAY)
    assert member.stored_value + member.bonus_value == 10**15


def test_a_member_that_exists_is_refused_and_keeps_what_it_had():
    target = book()
    open_member(target, Opening(member_id="m1", points=[OpeningLot(10)]), "i", DAY)
    with pytest.raises(RowRejectedError) as refused:
        open_member(target, Opening(member_id="m1", points=[OpeningLot(99)]), "i", DAY)
    assert refused.value.reason == "member_exists"
    assert target.members["m1"].points == 10
    assert len(target.ledger) == 1


lots = st.lists(st.builds(OpeningLot, st.integers(0, 20_000),
                          st.sampled_from(["", "never", "2026-11-10", "2026-12-01", "2027-01-01", "2028-01-01"])),
                max_size=4)
openings = st.builds(Opening, member_id=st.sampled_from(["a", "b", "c"]), points=lots,
                     tier=st.sampled_from(["", "Basic", "Silver", "Gold"]), stored_value=st.integers(0, 50_000),
                     bonus_value=st.integers(0, 5_000), growth=st.integers(0, 20_000),
                     status=st.sampled_from(["", "active", "frozen"]))


@pytest.mark.parametrize("variant", VARIANTS)
@settings(max_examples=60, deadline=None)
@given(rows=st.lists(openings, max_size=3), txns=streams())
def test_every_balance_equals_the_sum_of_the_ledger_after_an_import(variant, rows, txns):
    """Imported members then earn, redeem, pay, refund and go through a year of midnights."""
    target = book(VARIANTS[variant])
    for row in rows:
        if opening_problem(target, row) is None and row.member_id not in target.members:
            open_member(target, row, "i", DAY)
    for txn in txns:
        score_transaction(target, txn)
    for day in range(DAY + 1, parse_day("2028-01-03"), 7):
        run_midnight(target, day)
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for entry in target.ledger:
        for field in FIELDS:
            sums[entry.member_id][field] += getattr(entry, field)
    for member in target.members.values():
        assert {f: getattr(member, f) for f in FIELDS} == {f: sums[member.member_id][f] for f in FIELDS}
        assert member.points == sum(lot.amount for lot in member.lots) - member.debt
        assert member.stored_value >= 0
        assert member.bonus_value >= 0


@settings(max_examples=40, deadline=None)
@given(points=st.integers(1, 100_000), earned=st.integers(0, 400),
       policy=st.sampled_from(["jan1_after_years", "rolling_days", "annual_reset"]))
def test_imported_points_expire_like_earned_ones(points, earned, policy):
    """Member `i` is imported with a lot expiring when points earned on day `earned` do;
    member `e` is credited the same points that day: the same midnight takes both, whole."""
    days = "days = 90" if policy == "rolling_days" else "# days"
    years = "years = 1" if policy == "jan1_after_years" else "# years"
    rules = EXAMPLE.replace('policy = "jan1_after_years"', f'policy = "{policy}"').replace(
        "# days = 365", days).replace("years = 1 ", years + " ")
    target = book(rules, DAY)
    if policy == "annual_reset":  # earned after 1 January, an import of 9 Nov would not outlive the reset
        earned %= 52
    day = DAY + 1 + earned
    expires = target.programme.expiry.expires(day)
    open_member(target, Opening(member_id="i", points=[OpeningLot(points, iso(expires))]), "i", DAY)
    for run in range(DAY + 1, day + 1):
        run_midnight(target, run)
    at = target.programme.calendar.midnight_ms(day) + 3_600_000
    score_transaction(target, Transaction("p", "e", at, "adjustment", amount_minor=points, note="earned"))
    assert target.members["e"].points == target.members["i"].points == points
    for run in range(day + 1, expires + 1):
        assert target.members["e"].points == target.members["i"].points
        run_midnight(target, run)
    assert target.members["e"].points == target.members["i"].points == 0
    expired = {e.member_id: (e.day, e.points) for e in target.ledger if e.kind == "expire"}
    assert expired == {"i": (expires, -points), "e": (expires, -points)}


def test_under_annual_reset_imported_points_lapse_at_the_next_1_january_whatever_their_expiry():
    # SPEC §8: every balance is cleared on 1 January; lots of later dates, or "never", outlived it
    # (an outside probe)
    rules = EXAMPLE.replace('policy = "jan1_after_years"', 'policy = "annual_reset"').replace("years = 1 ", "# ")
    target = book(rules, DAY)
    row = Opening(member_id="m1", points=[OpeningLot(100, "2027-06-01"), OpeningLot(50, "never"), OpeningLot(30)])
    member = open_member(target, row, "i", DAY)
    assert [(iso(lot.expires), lot.amount) for lot in member.lots] == [("2027-01-01", 180)]
    for run in range(DAY + 1, parse_day("2027-01-01") + 1):
        run_midnight(target, run)
    assert member.points == 0


def test_an_imported_tier_ends_like_an_earned_one_the_midnight_after_its_last_valid_day():
    target = book()
    open_member(target, Opening(member_id="g", tier="Gold", tier_valid_until="2026-11-20"), "i", DAY)
    for run in range(DAY + 1, parse_day("2026-11-21")):
        run_midnight(target, run)
    assert target.members["g"].tier == 2
    run_midnight(target, parse_day("2026-11-21"))
    member = target.members["g"]
    assert (member.tier, member.tier_until) == (0, 0)
    assert [(e.kind, e.tier_from, e.tier_to, e.note) for e in target.ledger if e.kind == "tier"] == [
        ("tier", 2, 0, "validity ended")]


def test_an_import_is_not_a_transaction_so_no_refund_can_name_it():
    target = book()
    open_member(target, Opening(member_id="m", stored_value=1_000, points=[OpeningLot(100)]), "shop.csv:1", DAY)
    result = score_transaction(target, Transaction("r", "m", ms("2026-11-10 10:00"), "refund",
                                                   refund_of="shop.csv:1", amount_minor=1_000))
    assert result.reason == "unknown_original"
    assert target.members["m"].stored_value == 1_000


@settings(max_examples=150, deadline=None)
@given(lots=st.lists(st.tuples(st.integers(1, 900), st.integers(1, 400)), max_size=3),
       tier_until=st.sampled_from([0, DAY + 1, DAY + 30]), tag_check=st.sampled_from([0, DAY + 1, DAY + 5]),
       birthday=st.sampled_from(["", "11-10", "11-12", "02-29", "07-01"]), reminded=st.booleans(),
       midnight_done=st.sampled_from([0, DAY - 1, DAY]))
def test_a_members_wake_up_day_is_the_first_run_with_work_or_a_reminder(lots, tier_until, tag_check, birthday,
                                                                         reminded, midnight_done):
    """wake_day's shortcut (a due run tomorrow needs no reminders worked out) gives what the
    whole reckoning gives."""
    from engine.members import Lot, Member, Profile
    from engine.midnight import next_due, wake_day
    from engine.reminders import next_reminder

    target = book()
    member = Member("w", DAY, lots=[Lot(DAY + after, points) for after, points in sorted(lots)],
                    tier_until=tier_until, tag_check=tag_check, profile=Profile(birthday=birthday),
                    midnight_done=midnight_done)
    if reminded and member.lots:
        member.reminded = (f"points {member.lots[0].expires}",)
    due = next_due(member)
    reminder = next_reminder(target, member, max(target.today, midnight_done))
    whole = min(day for day in (due, reminder) if day) if due or reminder else 0
    assert wake_day(target, member) == (max(whole, target.today + 1) if whole else 0)
