"""Events and their caps; the daily anomaly threshold (docs/rules.md: events, anomaly)."""

import pytest

from tests.builders import book, buy, event, line, programme, score

EVENTS = """
[[events]]
type = "sign_in"
points = 5
growth = 1
per_day = 1
per_month = 3

[[events]]
type = "review"
points = 20
growth = 5
lifetime = 2
"""


def test_an_event_gives_its_fixed_points_and_growth_not_multiplied():
    body = EVENTS + '[[multipliers]]\nname = "all"\nfactor = 3\nwhen = { weekdays = ["wed"] }\n'
    result = score(book(body=body), event("e1", "m1", "2026-03-04 09:00", "sign_in"))[0]
    assert (result.points, result.growth, result.reason) == (5, 1, "")


def test_events_are_capped_per_local_day():
    results = score(book(body=EVENTS), event("e1", "m1", "2026-03-04 09:00", "sign_in"),
                    event("e2", "m1", "2026-03-04 23:00", "sign_in"),
                    event("e3", "m1", "2026-03-05 00:30", "sign_in"))
    assert [(r.points, r.reason) for r in results] == [(5, ""), (0, "capped"), (5, "")]


def test_events_are_capped_per_local_month():
    days = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04", "2026-04-01"]
    results = score(book(body=EVENTS), *[event(f"e{n}", "m1", f"{d} 09:00", "sign_in") for n, d in enumerate(days)])
    assert [r.reason for r in results] == ["", "", "", "capped", ""]


def test_events_are_capped_per_lifetime():
    results = score(book(body=EVENTS), *[event(f"e{n}", "m1", f"2026-0{n + 1}-04 09:00", "review") for n in range(3)])
    assert [(r.outcome, r.points, r.reason) for r in results] == [
        ("accepted", 20, ""), ("accepted", 20, ""), ("accepted", 0, "capped")]


def test_a_late_event_is_judged_against_the_day_it_occurred():
    results = score(book(body=EVENTS), event("e1", "m1", "2026-03-05 09:00", "sign_in"),
                    event("e2", "m1", "2026-03-04 09:00", "sign_in"),
                    event("e3", "m1", "2026-03-04 10:00", "sign_in"))
    assert [r.reason for r in results] == ["", "", "capped"]


def test_a_late_event_months_back_still_counts_against_its_month():
    """With a lateness of two months, a January event sent after one of March meets January's
    cap (an outside probe: the count of January was forgotten at March's, and a fourth earned)."""
    days = ["2026-01-10", "2026-01-11", "2026-01-12", "2026-03-05", "2026-01-20"]
    results = score(book(top="max_lateness_days = 60", body=EVENTS),
                    *[event(f"e{n}", "m1", f"{d} 09:00", "sign_in") for n, d in enumerate(days)])
    assert [(r.outcome, r.points, r.reason) for r in results] == [("accepted", 5, "")] * 4 + [
        ("accepted", 0, "capped")]


SPEND = "[points.spend]\nunit_minor = 100\nper_unit = 1\n"


def anomaly(action: str) -> str:
    return SPEND + EVENTS + f'[anomaly]\ndaily_points_threshold = 100\naction = "{action}"\n'


def test_flag_marks_the_member_abnormal_and_keeps_earning():
    target = book(body=anomaly("flag"))
    results = score(target, buy("t1", "m1", "2026-03-04 09:00", line(6000)),
                    buy("t2", "m1", "2026-03-04 10:00", line(6000)),
                    buy("t3", "m1", "2026-03-04 11:00", line(6000)))
    assert [(r.points, r.reason) for r in results] == [(60, ""), (60, "flagged"), (60, "")]
    assert target.members["m1"].abnormal
    assert [e.status for e in target.ledger if e.kind == "status"] == ["abnormal"]


@pytest.mark.parametrize("action", ["block_earn", "block_earn_and_redeem"])
def test_block_earn_stops_the_crossing_transaction_and_all_later_ones(action):
    target = book(body=anomaly(action))
    results = score(target, buy("t1", "m1", "2026-03-04 09:00", line(6000)),
                    buy("t2", "m1", "2026-03-04 10:00", line(6000)),
                    buy("t3", "m1", "2026-03-05 10:00", line(100)))
    assert [(r.points, r.reason) for r in results] == [(60, ""), (0, "blocked"), (0, "blocked")]
    assert target.members["m1"].points == 60


def test_block_earn_does_not_block_spend_based_growth():
    body = anomaly("block_earn") + '[growth]\nsource = "spend"\nunit_minor = 100\nper_unit = 2\n'
    results = score(book(body=body), buy("t1", "m1", "2026-03-04 09:00", line(20000)))
    assert [(r.points, r.growth, r.reason) for r in results] == [(0, 400, "blocked")]


def test_a_blocked_event_gives_nothing_and_does_not_count_toward_its_caps():
    target = book(body=anomaly("block_earn"))
    score(target, buy("t1", "m1", "2026-03-04 09:00", line(20000)))
    assert score(target, event("e1", "m1", "2026-03-04 10:00", "sign_in"))[0].reason == "blocked"
    assert "sign_in" not in target.members["m1"].events


def test_hold_keeps_earning_but_the_points_stay_pending():
    target = book(body=anomaly("hold"))
    results = score(target, buy("t1", "m1", "2026-03-04 09:00", line(6000)),
                    buy("t2", "m1", "2026-03-04 10:00", line(6000)),
                    buy("t3", "m1", "2026-03-06 10:00", line(1000)))
    assert [(r.points, r.reason) for r in results] == [(60, ""), (60, "held"), (10, "held")]
    member = target.members["m1"]
    assert (member.points, member.pending, member.abnormal) == (60, 70, True)


def test_refunds_do_not_lower_the_days_counter():
    from tests.builders import refund

    target = book(body=anomaly("flag"))
    results = score(target, buy("t1", "m1", "2026-03-04 09:00", line(9000)),
                    refund("r1", "m1", "2026-03-04 10:00", "t1", 9000),
                    buy("t2", "m1", "2026-03-04 11:00", line(2000)))
    assert results[2].reason == "flagged"


@pytest.mark.parametrize(("released_on", "before", "after"), [("2026-03-05", (0, 120), (0, 120)),
                                                              ("2026-03-06", (60, 60), (120, 0))])
def test_held_points_an_operator_releases_inside_the_return_window_stay_pending_until_it_ends(released_on, before,
                                                                                              after):
    """Releasing ends the hold, not the return window (SPEC §3.8: a refund inside it cancels the
    points before they were ever spendable). A probe redeemed released points the day they were
    earned, then refunded the purchase, and was left 600 points in debt."""
    from engine.calendar import parse_day
    from engine.operators import set_status
    from engine.replay import advance_to
    from engine.summary import summarise
    from tests.builders import refund

    target = book(body="[points]\npending_days = 2\n" + anomaly("hold"))
    score(target, buy("t1", "m1", "2026-03-04 09:00", line(6000)), buy("t2", "m1", "2026-03-04 10:00", line(6000)))
    advance_to(target, parse_day(released_on))
    member = target.members["m1"]
    assert (member.points, member.pending) == before  # t1 pending until its window ends, t2 held
    assert summarise(target.programme, member).held_points == 60  # the card tells t2's from t1's (a probe)
    set_status(target, "m1", "release_held", "checked", target.today)
    assert (member.points, member.pending, member.abnormal) == (*after, False)
    assert summarise(target.programme, member).held_points == 0
    assert score(target, refund("r2", "m1", "2026-03-05 10:00", "t2", 6000))[0].points == -60
    advance_to(target, parse_day("2026-03-07"))
    assert (member.points, member.pending, member.debt) == (60, 0, 0)
    assert sum(e.points for e in target.ledger) == member.points
    assert sum(e.pending for e in target.ledger) == member.pending


def test_held_points_whose_expiry_has_passed_lapse_when_released_never_spendable():
    """A late purchase held past its lots' expiry: released, its 200 points were spent from a lot
    that had expired (an outside probe). They lapse at the release, as the run of their expiry
    would have lapsed them, and the release writes no empty entry."""
    from engine.calendar import parse_day
    from engine.operators import set_status
    from engine.replay import advance_to
    from tests.builders import redeem, refund

    target = book(top="max_lateness_days = 10",
                  body='[points.expiry]\npolicy = "rolling_days"\ndays = 5\n' + anomaly("hold"))
    score(target, buy("t0", "m1", "2026-03-02 08:00", line(1000)))
    advance_to(target, parse_day("2026-03-08"))
    late = score(target, buy("t1", "m1", "2026-03-02 09:00", line(20000)))[0]  # its points expire at 03-07's run
    assert (late.points, late.reason) == (200, "held")
    set_status(target, "m1", "release_held", "checked", target.today)
    member = target.members["m1"]
    assert (member.points, member.pending, member.abnormal) == (0, 0, False)
    assert score(target, redeem("r1", "m1", "2026-03-08 10:00", points=1))[0].reason == "insufficient_points"
    assert [e.kind for e in target.ledger if e.cause == "operator"] == ["status", "expire"]
    back = score(target, refund("x1", "m1", "2026-03-08 11:00", "t1", 20000))[0]
    assert (back.points, back.growth, member.points, member.debt) == (0, -200, 0, 0)  # lapsed: not taken again
    assert sum(e.points for e in target.ledger) == member.points
    assert sum(e.pending for e in target.ledger) == member.pending


@pytest.mark.parametrize("growth_from", ["points", "spend"])
def test_voided_held_points_are_reversed_once_and_a_refund_does_not_take_them_again(growth_from):
    """An outside probe: after a void the purchase's refund took the same points again, from the
    spendable balance, and left the member in debt for points never given; the voided points also
    kept counting for growth and the points tier metric."""
    from engine.operators import set_status
    from tests.builders import refund

    growth = '[growth]\nsource = "spend"\nunit_minor = 100\nper_unit = 2\n' if growth_from == "spend" else ""
    target = book(body=anomaly("hold") + growth)
    score(target, buy("t1", "m1", "2026-03-04 09:00", line(6000)), buy("t2", "m1", "2026-03-04 10:00", line(6000)))
    member = target.members["m1"]
    grown = member.growth
    set_status(target, "m1", "void_held", "fraud confirmed", target.today)
    # what t2 gave in growth goes with its points only when growth comes from points
    kept = grown - 60 if growth_from == "points" else grown
    assert (member.points, member.pending, member.growth, member.total_points) == (60, 0, kept, 60)
    first, second = score(target, refund("r1", "m1", "2026-03-04 11:00", "t2", 3000),
                          refund("r2", "m1", "2026-03-04 12:00", "t2", 3000))
    assert [first.points, second.points] == [0, 0]
    growth_back = 0 if growth_from == "points" else -120  # spend-based growth goes with the refund
    assert (first.growth + second.growth, member.points, member.debt) == (growth_back, 60, 0)
    assert sum(e.points for e in target.ledger) == member.points
    assert sum(e.pending for e in target.ledger) == member.pending
    assert sum(e.growth for e in target.ledger) == member.growth


def test_voiding_several_held_purchases_never_takes_growth_below_zero():
    # a review: each held purchase's growth was capped at the member's growth before any was taken,
    # so three took 180 of the 60 a growth reset had left
    from engine.operators import set_status

    tiers = ('\n[tier_policy]\nreset_growth_on_upgrade = true\n[[tiers]]\nname = "Basic"\n[[tiers]]\nname = "Silver"\n'
             'metric = "growth"\nthreshold = 150\n')
    target = book(body=anomaly("hold"), tiers=tiers)
    score(target, *[buy(f"t{n}", "m1", f"2026-03-04 {10 + n}:00", line(6000)) for n in range(4)])
    member = target.members["m1"]
    assert (member.tier, member.growth, len(member.held)) == (1, 60, 3)  # reset at the third purchase
    set_status(target, "m1", "void_held", "fraud", target.today)
    assert member.growth == 0
    assert sum(e.growth for e in target.ledger) == member.growth


def test_voided_recharge_bonus_points_take_back_the_growth_they_gave():
    from engine.operators import set_status
    from tests.builders import recharge

    body = anomaly("hold") + '[stored_value]\n[[recharge_bonuses]]\nname = "b"\nmin_amount_minor = 100\npoints = 200\n'
    target = book(body=body)
    score(target, buy("t1", "m1", "2026-03-04 09:00", line(6000)), recharge("c1", "m1", "2026-03-04 10:00", 10000))
    member = target.members["m1"]
    assert (member.growth, member.pending) == (260, 200)
    set_status(target, "m1", "void_held", "fraud", target.today)
    assert (member.growth, member.total_points, member.pending) == (60, 60, 0)


@pytest.mark.parametrize(("action", "clear"), [("flag", "clear_abnormal"), ("block_earn", "clear_abnormal"),
                                              ("block_earn_and_redeem", "clear_abnormal"), ("hold", "release_held"),
                                              ("hold", "void_held")])
def test_a_day_an_operator_cleared_earns_for_the_rest_of_it_and_the_next_day_crosses_afresh(action, clear):
    """SPEC §4: blocked "until an operator clears the flag". A member cleared after its crossing was
    flagged, blocked or held again at its next purchase that day (an outside probe), so clearing
    a big but honest spender undid nothing until midnight. The day is reported once."""
    from engine.operators import set_status
    from engine.summary import summarise

    target = book(body=anomaly(action))
    score(target, buy("t1", "m1", "2026-03-04 09:00", line(6000)), buy("t2", "m1", "2026-03-04 10:00", line(6000)))
    member = target.members["m1"]
    assert member.abnormal
    set_status(target, "m1", clear, "checked with the store", target.today)
    quoted = quote_points(target)
    after = score(target, buy("t3", "m1", "2026-03-04 11:00", line(5000)))[0]
    assert (after.points, after.reason, member.abnormal) == (50, "", False)
    assert quoted == (50, "")  # the quote foresees it as the purchase meets it
    assert summarise(target.programme, member).held_points == 0
    day = target.today
    assert member.flag_days == (day,)  # reported once, at the next run
    crossed = score(target, buy("t4", "m1", "2026-03-05 09:00", line(11000)))[0]
    assert crossed.reason == {"flag": "flagged", "hold": "held"}.get(action, "blocked")
    assert (member.abnormal, member.flag_days) == (True, (day + 1,))  # 4 March reported by the run t4 brought


@pytest.mark.parametrize(("action", "clear"), [("flag", "clear_abnormal"), ("block_earn", "clear_abnormal"),
                                              ("block_earn_and_redeem", "clear_abnormal"), ("hold", "release_held"),
                                              ("hold", "void_held")])
def test_a_late_transaction_on_a_cleared_day_already_reported_earns_and_the_day_is_reported_once(action, clear):
    """The clear, then the run that reports the day, then a transaction dated on that day arriving
    late: it crossed the day again, flagged, blocked or held, and the day was reported a second
    time (a reviewer). A day under the threshold when the clear came still crosses."""
    from engine.operators import set_status
    from engine.replay import replay_stream
    from engine.spending.quote import quote
    from tests.builders import ms

    target, rows = book(body=anomaly(action)), []

    def run(*txns):
        return list(replay_stream(target, list(txns), rows))

    run(buy("t1", "m1", "2026-03-04 09:00", line(6000)), buy("t2", "m1", "2026-03-04 10:00", line(6000)))
    crossed = target.today
    set_status(target, "m1", clear, "checked with the store", crossed)
    run(buy("t3", "m1", "2026-03-05 09:00", line(100)))  # the run of 5 March
    member = target.members["m1"]
    assert (member.flag_days, [row.day for row in rows]) == ((), ["2026-03-04"])
    assert quote(target, "m1", [line(5000)], ms("2026-03-04 18:00")).points_reason == ""
    (late,) = run(buy("t4", "m1", "2026-03-04 18:00", line(5000)))
    assert (late.points, late.reason, member.abnormal, member.flag_days) == (50, "", False, ())
    assert member.cleared_days == (crossed,)
    (other,) = run(buy("t5", "m1", "2026-03-03 18:00", line(11000)))
    assert other.reason == {"flag": "flagged", "hold": "held"}.get(action, "blocked")  # 3 March was not cleared
    run(buy("t6", "m1", "2026-03-06 09:00", line(100)))  # the run of 6 March
    assert [row.day for row in rows] == ["2026-03-04", "2026-03-03"]
    set_status(target, "m1", clear, "again", target.today)  # 3 March cleared too
    assert member.cleared_days == (crossed - 1, crossed)
    target.take_changes()
    member.cleared_days = ()  # as stored before the field was kept: a clear of nothing changes and writes nothing
    set_status(target, "m1", clear, "once more", target.today)  # (a change unwritten was lost: a reviewer)
    assert (target.take_changes(), member.cleared_days) == (([], {}), ())
    member.cleared_days = (crossed - 1, crossed)
    run(buy("t7", "m1", "2026-03-12 09:00", line(100)))
    assert member.cleared_days == (crossed,)  # 4 March may still come late (max_lateness_days 7)
    run(buy("t8", "m1", "2026-03-13 09:00", line(100)))  # no longer: forgotten with its counter
    assert (member.cleared_days, crossed in member.day_points) == ((), False)


@pytest.mark.parametrize("action", ["flag", "block_earn", "hold"])
def test_a_cleared_day_crosses_again_once_a_version_raises_the_threshold_above_it(action):
    """Cleared at 120 points over 100; a version raises the threshold to 150: a late purchase that
    takes the day past 150 crosses it for the first time (a reviewer)."""
    from engine.operators import set_status
    from tests.builders import programme

    target = book(body=anomaly(action))
    score(target, buy("t1", "m1", "2026-03-04 09:00", line(6000)), buy("t2", "m1", "2026-03-04 10:00", line(6000)))
    set_status(target, "m1", "void_held" if action == "hold" else "clear_abnormal", "checked", target.today)
    score(target, buy("t3", "m1", "2026-03-05 09:00", line(100)))  # 4 March reported
    target.programme = programme(body=anomaly(action).replace("threshold = 100", "threshold = 150"))
    (under,) = score(target, buy("t4", "m1", "2026-03-04 18:00", line(2000)))  # 140: under the new threshold
    (over,) = score(target, buy("t5", "m1", "2026-03-04 19:00", line(2000)))  # 160: over it
    assert (under.reason, over.reason) == ("", {"flag": "flagged", "hold": "held"}.get(action, "blocked"))
    assert target.members["m1"].abnormal


def quote_points(target) -> tuple[int, str]:
    from engine.spending.quote import quote
    from tests.builders import ms

    answer = quote(target, "m1", [line(5000)], ms("2026-03-04 11:00"))
    return answer.points, answer.points_reason


def test_the_days_a_flagged_member_crosses_on_are_kept_in_date_order():
    """Tomorrow's transaction first, then one of today: a midnight run reads the first day only for a
    member brought through it early, and today's row came a run late (a reviewer)."""
    from engine.anomaly import FLAGGED
    from engine.members import Member

    rule = book(body=anomaly("flag")).programme.anomaly
    member = Member("m1", 1)
    assert rule.judge(member, 100, 150) is FLAGGED
    assert rule.foresee(member, 102, 150) is FLAGGED  # a quote says what the purchase then meets
    assert rule.judge(member, 102, 150) is FLAGGED  # still flagged, it crosses on a later day
    assert rule.judge(member, 101, 150) is FLAGGED
    assert rule.judge(member, 101, 50) is not FLAGGED  # past it already: no second crossing
    assert member.flag_days == (100, 101, 102)


def test_the_anomaly_report_lists_the_flagged_members_transactions_of_the_day():
    """What scoring told the history (engine/history.py `remember_in`) is what the report lists."""
    from engine.replay import replay_stream

    target, rows = book(body=anomaly("flag")), []
    list(replay_stream(target, [buy("t1", "m1", "2026-03-04 09:00", line(6000)),
                                buy("t2", "m2", "2026-03-04 09:30", line(100)),
                                event("e1", "m1", "2026-03-04 10:00", "sign_in"),
                                buy("t3", "m1", "2026-03-04 11:00", line(6000)),
                                buy("t4", "m2", "2026-03-05 09:00", line(100))], rows))
    assert [(row.member_id, row.day, row.transactions) for row in rows] == [("m1", "2026-03-04", ["t1", "e1", "t3"])]


def test_an_event_resent_after_a_version_removed_its_type_is_a_duplicate_with_its_first_points():
    # an outside probe: the resend was rejected `unknown_event_type`, telling a till that points
    # given were not, where every other kind a version takes away answers `duplicate`
    target = book(body=EVENTS)
    first = score(target, event("e1", "m1", "2026-03-04 09:00", "review"))[0]
    target.programme = programme(body=EVENTS[:EVENTS.index('[[events]]\ntype = "review"')])  # sign_in only
    again, other = score(target, event("e1", "m1", "2026-03-04 09:00", "review"),
                         event("e2", "m1", "2026-03-04 09:00", "review"))
    assert (first.outcome, first.points) == ("accepted", 20)
    assert (again.outcome, again.points, again.growth) == ("duplicate", 20, 5)
    assert (other.outcome, other.reason) == ("rejected", "unknown_event_type")
    assert target.members["m1"].points == 20
