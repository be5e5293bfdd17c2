"""SPEC §11.9 events out, in the engine: notices are emitted as plain data beside the change
that caused them; reminders come once, from the midnight run of the right date."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.calendar import iso, parse_day
from engine.midnight import run_midnight, visitors
from engine.operators import Enrollment, enroll, set_tier
from engine.reminders import birthday_reminder_day
from engine.replay import advance_to
from engine.transactions import Transaction
from tests.builders import SHOPLINE_TIERS, book, buy, line, ms, redeem, refund, score

SPEND = "[points.spend]\nunit_minor = 100\nper_unit = 1\n"
ROLLING = SPEND + '[points.expiry]\npolicy = "rolling_days"\ndays = {days}\n'
NOTIFY = "[notify]\nexpiring_days = {expiring}\nbirthday_days_before = {birthday}\n"
ANOMALY = '[anomaly]\ndaily_points_threshold = 500\naction = "{action}"\n'


def notices(target, kind: str | None = None) -> list[tuple[str, str, str, dict]]:
    """(kind, member, day, detail) of the notices emitted so far, and forget them."""
    return [(n.kind, n.member_id, iso(n.day), json.loads(n.detail)) for n in target.take_notices()
            if kind is None or n.kind == kind]


def shopline(extra: str = ""):
    return book(body=SPEND + extra, tiers=SHOPLINE_TIERS.format(on_expiry="reevaluate"))


def test_an_upgrade_emits_tier_changed_with_the_tiers_and_the_validity():
    target = shopline()
    score(target, buy("a1", "A", "2023-04-15 10:00", line(60000)))
    assert notices(target) == [("tier_changed", "A", "2023-04-15", {
        "from_tier": "Regular", "to_tier": "Bronze", "direction": "up", "valid_until": "2024-04-14",
        "cause": "txn", "ref": "a1", "note": ""})]
    score(target, buy("a2", "A", "2023-04-16 10:00", line(100)))
    assert notices(target) == []  # no change, no notice


def test_the_end_of_validity_emits_a_downgrade_from_the_midnight_run():
    target = shopline()
    score(target, buy("a1", "A", "2023-04-15 10:00", line(60000)))
    target.take_notices()
    advance_to(target, parse_day("2024-04-15"))
    [(kind, member, day, detail)] = notices(target, "tier_changed")
    assert (kind, member, day, detail["from_tier"], detail["to_tier"], detail["direction"], detail["cause"]) == (
        "tier_changed", "A", "2024-04-15", "Bronze", "Regular", "down", "midnight")


def test_an_operator_setting_a_tier_emits_its_reason():
    target = shopline()
    score(target, buy("a1", "A", "2023-04-15 10:00", line(100)))
    set_tier(target, "A", "Silver", "complaint goodwill", target.today)
    [(_, _, _, detail)] = notices(target)
    assert (detail["to_tier"], detail["cause"], detail["note"]) == ("Silver", "operator", "complaint goodwill")


def test_crossing_the_anomaly_threshold_emits_one_notice_whatever_follows():
    target = book(body=SPEND + ANOMALY.format(action="hold"))
    score(target, buy("t1", "m", "2026-03-05 10:00", line(40000)), buy("t2", "m", "2026-03-05 11:00", line(20000)),
          buy("t3", "m", "2026-03-05 12:00", line(20000)))
    assert notices(target) == [("anomaly_flagged", "m", "2026-03-05", {
        "date": "2026-03-05", "points": 600, "threshold": 500, "action": "hold", "txn_id": "t2"})]


def test_points_expiring_are_announced_once_by_the_run_that_many_days_ahead():
    target = book(body=ROLLING.format(days=30) + NOTIFY.format(expiring=7, birthday=0))
    score(target, buy("t1", "m", "2026-03-01 10:00", line(2900)), buy("t2", "m", "2026-03-02 10:00", line(1000)))
    advance_to(target, parse_day("2026-03-23"))  # points of 1 March lapse at 00:00 of 31 March
    assert notices(target) == []
    advance_to(target, parse_day("2026-03-24"))
    assert notices(target) == [("points_expiring", "m", "2026-03-24",
                                {"points": 29, "expires": "2026-03-31", "last_day": "2026-03-30"})]
    advance_to(target, parse_day("2026-03-25"))
    assert notices(target) == [("points_expiring", "m", "2026-03-25",
                                {"points": 10, "expires": "2026-04-01", "last_day": "2026-03-31"})]
    advance_to(target, parse_day("2026-05-01"))
    assert notices(target) == []
    assert target.members["m"].reminded == ()  # forgotten once the points lapsed


def test_a_quiet_night_visits_only_the_members_with_a_reminder_due():
    target = book(body=ROLLING.format(days=30) + NOTIFY.format(expiring=7, birthday=0))
    score(target, buy("t1", "m", "2026-03-01 10:00", line(2900)), buy("t2", "n", "2026-03-10 10:00", line(2900)))
    advance_to(target, parse_day("2026-03-23"))
    assert visitors(target, parse_day("2026-03-24")) == ["m"]


def test_points_earned_closer_to_expiry_than_the_notice_are_announced_at_the_next_run():
    target = book(body=ROLLING.format(days=5) + NOTIFY.format(expiring=7, birthday=0))
    score(target, buy("t1", "m", "2026-03-01 10:00", line(2900)))
    advance_to(target, parse_day("2026-03-02"))
    assert notices(target) == [("points_expiring", "m", "2026-03-02",
                                {"points": 29, "expires": "2026-03-06", "last_day": "2026-03-05"})]
    advance_to(target, parse_day("2026-03-10"))
    assert notices(target) == []


def test_no_expiry_reminders_when_expiring_days_is_zero():
    target = book(body=ROLLING.format(days=30) + NOTIFY.format(expiring=0, birthday=0))
    score(target, buy("t1", "m", "2026-03-01 10:00", line(2900)))
    advance_to(target, parse_day("2026-04-05"))
    assert notices(target) == []


def test_a_birthday_is_announced_that_many_days_ahead_every_year_and_only_then():
    target = book(body=NOTIFY.format(expiring=0, birthday=3))
    target.today = parse_day("2026-03-01")
    enroll(target, Enrollment(member_id="m", birthday="03-20"), target.today)
    enroll(target, Enrollment(member_id="n", birthday="09-01"), target.today)
    run_midnight(target, parse_day("2026-03-02"))  # the enrolled are visited once, and woken when due
    assert {iso(day): ids for day, ids in target.wakeups.items()} == {"2026-03-17": {"m"}, "2026-08-29": {"n"}}
    advance_to(target, parse_day("2026-03-16"))
    assert notices(target) == []
    run_midnight(target, parse_day("2026-03-17"))
    assert notices(target) == [("birthday", "m", "2026-03-17", {"birthday": "2026-03-20", "days_before": 3})]
    advance_to(target, parse_day("2027-03-17"))
    assert [(n[1], n[2]) for n in notices(target)] == [("n", "2026-08-29"), ("m", "2027-03-17")]


def test_29_february_is_announced_before_28_february_in_other_years():
    assert iso(birthday_reminder_day("02-29", parse_day("2027-01-01"), 7)) == "2027-02-21"
    assert iso(birthday_reminder_day("02-29", parse_day("2028-01-01"), 7)) == "2028-02-22"
    assert iso(birthday_reminder_day("01-03", parse_day("2026-12-26"), 7)) == "2026-12-27"
    assert iso(birthday_reminder_day("01-03", parse_day("2026-12-27"), 7)) == "2027-12-27"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 5000)), min_size=1, max_size=12),
       st.integers(1, 20), st.integers(1, 15))
def test_every_lot_that_lives_past_a_run_is_announced_exactly_once(purchases, life, ahead):
    """Whatever the days points are earned on, each expiry date gets one reminder, on the run
    `ahead` days before it, or the first run after the points were earned when that is later."""
    target = book(body=ROLLING.format(days=life) + NOTIFY.format(expiring=ahead, birthday=0))
    start = parse_day("2026-03-01")
    earned: dict[int, int] = {}  # expiry day -> the first day points for it were earned
    for n, (offset, paid) in enumerate(sorted(purchases)):
        score(target, buy(f"t{n}", "m", f"{iso(start + offset)} 10:00", line(paid * 100)))
        earned.setdefault(start + offset + life, start + offset)
    advance_to(target, start + 40 + life + 1)
    sent = [(parse_day(detail["expires"]), parse_day(day)) for _, _, day, detail in notices(target)]
    assert sorted(sent) == sorted((expires, max(expires - ahead, first + 1)) for expires, first in earned.items()
                                  if expires > first + 1)


COUPON = """
[[coupons]]
id = "TEN"
kind = "voucher"
value_minor = 1000
valid_after_days = 0
valid_days = 10
"""


def test_a_coupon_issued_is_announced_and_its_expiry_announced_once_that_many_days_ahead():
    from engine.transactions import Transaction
    from tests.builders import ms

    target = book(body=SPEND + COUPON + NOTIFY.format(expiring=3, birthday=0))
    score(target, buy("t1", "m", "2026-03-01 10:00", line(2900)), buy("t2", "n", "2026-03-01 10:00", line(2900)))
    notices(target)
    score(target, *(Transaction(f"c-{who}", who, ms("2026-03-01 11:00"), "coupon_issue", coupon_id="TEN")
                    for who in ("m", "n")))
    assert notices(target, "coupon_issued") == [
        ("coupon_issued", who, "2026-03-01", {"code": f"TEN-{who}-1", "coupon_id": "TEN", "valid_from": "2026-03-01",
                                              "valid_to": "2026-03-10"}) for who in ("m", "n")]
    score(target, Transaction("u1", "n", ms("2026-03-02 10:00"), "coupon_use", coupon_code="TEN-n-1",
                              amount_minor=5000))
    advance_to(target, parse_day("2026-03-07"))  # last valid day 10 March: it lapses at 00:00 of 11 March
    assert notices(target, "coupon_expiring") == []
    advance_to(target, parse_day("2026-03-08"))
    assert notices(target, "coupon_expiring") == [  # the used one is not announced
        ("coupon_expiring", "m", "2026-03-08", {"code": "TEN-m-1", "coupon_id": "TEN", "expires": "2026-03-11",
                                                "last_day": "2026-03-10"})]
    advance_to(target, parse_day("2026-03-20"))
    assert notices(target, "coupon_expiring") == []


def test_held_points_released_after_their_reminder_run_are_announced_by_the_next_run():
    # an outside probe: released on the day their reminder was due, they lapsed five days later
    # without a word (nothing woke the member for the next run)
    from engine.operators import set_status

    target = book(body=ROLLING.format(days=20) + NOTIFY.format(expiring=5, birthday=0) + ANOMALY.format(action="hold"))
    score(target, buy("t1", "m", "2026-04-01 10:00", line(60000)))
    advance_to(target, parse_day("2026-04-16"))  # the run 5 days before 04-21, when they lapse: still held
    assert notices(target, "points_expiring") == []
    set_status(target, "m", "release_held", "checked", target.today)
    advance_to(target, parse_day("2026-04-17"))
    assert notices(target, "points_expiring") == [("points_expiring", "m", "2026-04-17",
                                                   {"points": 600, "expires": "2026-04-21", "last_day": "2026-04-20"})]


def test_points_given_back_after_their_reminder_are_not_announced_again():
    # redeemed after their reminder and given back by the redeem's refund, with the same expiry: the
    # reminder was forgotten with the lot and sent a second time (an outside probe); a coupon used
    # and given back by its use's refund alike
    target = book(body=ROLLING.format(days=20) + NOTIFY.format(expiring=5, birthday=0) + COUPON)
    score(target, buy("t1", "m", "2026-04-01 10:00", line(60000)), buy("t2", "n", "2026-04-01 10:00", line(50)),
          Transaction("c1", "n", ms("2026-04-01 10:00"), "coupon_issue", coupon_id="TEN"))
    advance_to(target, parse_day("2026-04-06"))  # TEN-n-1's last valid day is 04-10
    assert [n[3]["code"] for n in notices(target, "coupon_expiring")] == ["TEN-n-1"]
    score(target, Transaction("u1", "n", ms("2026-04-06 10:00"), "coupon_use", coupon_code="TEN-n-1",
                              amount_minor=5000))
    advance_to(target, parse_day("2026-04-07"))
    score(target, refund("x0", "n", "2026-04-07 10:00", "u1"))
    assert target.members["n"].coupons[0].status == "unused"
    advance_to(target, parse_day("2026-04-10"))
    assert notices(target, "coupon_expiring") == []
    advance_to(target, parse_day("2026-04-16"))  # the run 5 days before 04-21, when they lapse
    assert [n[3]["expires"] for n in notices(target, "points_expiring")] == ["2026-04-21"]
    score(target, redeem("r1", "m", "2026-04-16 10:00", 600))
    advance_to(target, parse_day("2026-04-17"))
    score(target, refund("x1", "m", "2026-04-17 10:00", "r1"))
    assert target.members["m"].points == 600
    advance_to(target, parse_day("2026-04-20"))
    assert notices(target, "points_expiring") == []


def test_points_earned_into_an_announced_date_after_it_was_spent_are_announced():
    # a reviewer: kept until the date lapsed, the key of a year's date (annual_reset) silenced the
    # reminder of points earned after the announced ones were all redeemed
    annual = SPEND + '[points.expiry]\npolicy = "annual_reset"\n' + NOTIFY.format(expiring=30, birthday=0)
    target = book(body=annual)
    score(target, buy("t1", "m", "2026-11-20 10:00", line(60000)))
    advance_to(target, parse_day("2026-12-02"))  # 30 days before 1 January
    assert [n[3]["points"] for n in notices(target, "points_expiring")] == [600]
    score(target, redeem("r1", "m", "2026-12-05 10:00", 600), buy("t2", "m", "2026-12-20 10:00", line(30000)))
    advance_to(target, parse_day("2026-12-21"))
    assert [(n[2], n[3]["points"], n[3]["expires"]) for n in notices(target, "points_expiring")] == [
        ("2026-12-21", 300, "2027-01-01")]


def test_the_reminder_key_scoring_forgets_is_the_one_the_midnight_run_keeps():
    from engine import reminders
    from engine.members import points_reminder_key

    assert reminders._points_key(740049) == points_reminder_key(740049)
