"""Members, idempotency, unpaid and malformed transactions."""

import pytest

from engine.calendar import parse_day
from engine.errors import InvalidRequestError
from engine.operators import set_status
from engine.transactions import LineItem, Transaction
from tests.builders import book, buy, line, ms, score

SPEND = "[points.spend]\nunit_minor = 1000\nper_unit = 10\n"
DAY = "2026-03-04 10:00"


def test_a_resubmitted_transaction_is_a_duplicate_that_returns_what_the_first_earned():
    target = book(body=SPEND)
    first, again = score(target, buy("t1", "m1", DAY, line(2900)), buy("t1", "m1", DAY, line(99_900)))
    assert (again.outcome, again.points, again.growth) == ("duplicate", first.points, first.growth)
    assert target.members["m1"].points == 20


def test_a_resubmission_is_a_duplicate_whatever_its_status():
    results = score(book(body=SPEND), buy("t1", "m1", DAY, line(2900)),
                    buy("t1", "m1", DAY, line(2900), status="cancelled"))
    assert [r.outcome for r in results] == ["accepted", "duplicate"]


@pytest.mark.parametrize("status", ["pending", "cancelled"])
def test_unpaid_purchases_are_ignored_and_do_not_use_up_their_id(status):
    target = book(body=SPEND)
    results = score(target, buy("t1", "m1", DAY, line(2900), status=status),
                    buy("t1", "m1", DAY, line(2900), status="paid"))
    assert [(r.outcome, r.reason, r.points) for r in results] == [("ignored", "not_paid", 0), ("accepted", "", 20)]


@pytest.mark.parametrize(("txn", "reason"), [
    (Transaction("", "m1", ms(DAY), "purchase", lines=[LineItem("S", paid_minor=1)]), "missing_txn_id"),
    (Transaction("t", "", ms(DAY), "purchase", lines=[LineItem("S", paid_minor=1)]), "missing_member_id"),
    (Transaction("t", "m1", ms(DAY), "gift"), "unknown_kind"),
    (Transaction("t", "m1", ms(DAY), "purchase", status="maybe", amount_minor=1), "unknown_status"),
    (Transaction("t", "m1", 0, "purchase", amount_minor=1), "missing_occurred_at"),
    (Transaction("t", "m1", -1, "purchase", amount_minor=1), "bad_timestamp"),  # was missing: it was sent
    (Transaction("t", "m1", -(2**63), "purchase", amount_minor=1), "bad_timestamp"),
    (Transaction("t", "m1", ms(DAY), "purchase", lines=[LineItem("S", paid_minor=-5)]), "negative_amount"),
    (Transaction("t", "m1", ms(DAY), "recharge", amount_minor=-5), "negative_amount"),
    (Transaction("t", "m1", ms(DAY), "purchase"), "empty_purchase"),
    (Transaction("t", "m1", ms(DAY), "event", event_type="dance"), "unknown_event_type"),
    (Transaction("t", "m1", ms(DAY), "refund", amount_minor=5), "missing_refund_of"),
    (Transaction("t", "m1", ms(DAY), "refund", refund_of="x"), "nothing_to_refund"),
    (Transaction("t", "m1", ms(DAY), "adjustment", amount_minor=5), "missing_reason"),
    # a reason no one can read in the ledger (an outside probe): a space, a zero-width space, a NUL
    (Transaction("t", "m1", ms(DAY), "adjustment", amount_minor=5, note=" "), "missing_reason"),
    (Transaction("t", "m1", ms(DAY), "adjustment", amount_minor=5, note="\u200b\ufeff"), "missing_reason"),
    (Transaction("t", "m1", ms(DAY), "adjustment", amount_minor=5, note="\x00\n"), "missing_reason"),
    (Transaction("t", "m\u200b1", ms(DAY), "purchase", amount_minor=5), "id_unprintable"),
    (Transaction("\u202et1", "m1", ms(DAY), "purchase", amount_minor=5), "id_unprintable"),
    (Transaction("t" * 101, "m1", ms(DAY), "purchase", amount_minor=5), "id_too_long"),
    # kept as sent and shown back in results, ledgers and coupon codes (an outside probe)
    (Transaction("t", "   ", ms(DAY), "purchase", amount_minor=5), "missing_member_id"),
    (Transaction(" ", "m1", ms(DAY), "purchase", amount_minor=5), "missing_txn_id"),
    (Transaction("t", "M\x001", ms(DAY), "purchase", amount_minor=5), "id_unprintable"),
    (Transaction("t\n", "m1", ms(DAY), "purchase", amount_minor=5), "id_unprintable"),
    (Transaction("t", "m1", ms(DAY), "refund", refund_of="x\x85", amount_minor=5), "id_unprintable"),
    (Transaction("t", "m1", ms(DAY), "refund", refund_of=" ", amount_minor=5), "missing_refund_of"),
    # past 65,535 bytes the shard's index lookup raised (`cannot_apply`) where replay took points back
    (Transaction("t", "m1", ms(DAY), "refund", refund_of="x" * 101, amount_minor=5), "id_too_long"),
    # kept with the member: megabytes made it unreadable by a default gRPC client (an outside probe)
    (Transaction("t", "m1", ms(DAY), "purchase", amount_minor=5, channel="c" * 1001), "text_too_long"),
    (Transaction("t", "m1", ms(DAY), "adjustment", amount_minor=5, note="n" * 1001), "text_too_long"),
])
def test_malformed_transactions_are_rejected_with_a_machine_readable_reason(txn, reason):
    target = book(body=SPEND)
    result = score(target, txn)[0]
    assert (result.outcome, result.reason, result.points) == ("rejected", reason, 0)
    assert not target.members
    assert not target.txns


def test_a_malformed_transaction_is_rejected_every_time_and_the_rest_of_its_batch_applies():
    bad = Transaction("t1", "m1", ms(DAY), "purchase")
    results = score(book(body=SPEND), bad, buy("t2", "m1", DAY, line(2900)), bad)
    assert [r.outcome for r in results] == ["rejected", "accepted", "rejected"]


def test_unknown_members_are_enrolled_at_the_lowest_tier_by_default():
    target = book(body=SPEND)
    score(target, buy("t1", "new", DAY, line(2900)))
    member = target.members["new"]
    assert (member.tier, member.enrolled) == (0, target.programme.calendar.day_of(ms(DAY)))


def test_unknown_members_are_rejected_when_the_programme_says_so():
    target = book(top='unknown_member = "reject"', body=SPEND)
    assert score(target, buy("t1", "new", DAY, line(2900)))[0].reason == "unknown_member"
    assert not target.members


def test_the_enrollment_channel_sets_the_default_tier():
    tiers = ('[[tiers]]\nname = "Basic"\n[[tiers]]\nname = "Web"\nmetric = "spend"\nthreshold = 10**9\n'
             .replace("10**9", "1000000000"))
    target = book(top='default_tier_by_channel = { online = "Web" }', body=SPEND, tiers=tiers)
    score(target, buy("t1", "a", DAY, line(100), channel="online"), buy("t2", "b", DAY, line(100), channel="pos"))
    assert (target.members["a"].tier, target.members["b"].tier) == (1, 0)


def test_a_channels_tier_lasts_its_validity_as_an_imported_members_does():
    # an outside probe: a member who started in a channel's Silver, valid 30 days, kept it for ever
    from engine.calendar import iso
    from engine.operators import Enrollment, enroll
    from engine.replay import advance_to

    tiers = ('[[tiers]]\nname = "Basic"\n[[tiers]]\nname = "Silver"\nmetric = "spend"\nwindow = "1 months"\n'
             'threshold = 1000000\nvalidity = "30 days"\n')
    target = book(top='default_tier_by_channel = { online = "Silver" }', body=SPEND, tiers=tiers)
    score(target, buy("t1", "a", DAY, line(100), channel="online"))
    enroll(target, Enrollment(member_id="e", channel="online"), target.today)
    for member_id in ("a", "e"):
        member = target.members[member_id]
        assert (member.tier, iso(member.tier_until)) == (1, iso(parse_day(DAY[:10]) + 29)), member_id
    advance_to(target, parse_day(DAY[:10]) + 30)
    assert (target.members["a"].tier, target.members["e"].tier) == (0, 0)  # nothing spent: the lowest


def test_a_late_first_transactions_channel_tier_counts_its_validity_from_the_business_day():
    """Enrolled by a purchase five days late, the member held Silver (valid 2 days from the
    purchase) four days past its end, and earned its multiplier (an outside probe)."""
    from engine.calendar import iso
    from engine.replay import advance_to

    tiers = ('[[tiers]]\nname = "Basic"\n[[tiers]]\nname = "Silver"\nmetric = "spend"\nwindow = "1 days"\n'
             'threshold = 1000000\nvalidity = "2 days"\n')
    target = book(top='max_lateness_days = 7\ndefault_tier_by_channel = { online = "Silver" }', body=SPEND,
                  tiers=tiers)
    advance_to(target, parse_day("2026-03-10"))
    score(target, buy("t1", "a", "2026-03-05 12:00", line(100), channel="online"))
    member = target.members["a"]
    assert (member.tier, iso(member.enrolled), iso(member.tier_until)) == (1, "2026-03-05", "2026-03-11")
    advance_to(target, parse_day("2026-03-12"))
    assert member.tier == 0


def test_transactions_later_than_max_lateness_are_rejected():
    target = book(top="max_lateness_days = 2", body=SPEND)
    results = score(target, buy("t1", "m1", "2026-03-10 10:00", line(2900)),
                    buy("t2", "m1", "2026-03-08 10:00", line(2900)),
                    buy("t3", "m1", "2026-03-07 23:00", line(2900)))
    assert [(r.outcome, r.reason) for r in results] == [("accepted", ""), ("accepted", ""), ("rejected", "too_late")]


def test_a_malformed_line_moves_no_clock():
    """A line of an unknown kind dated months ahead can never apply, so it is no clock (an outside
    probe: it aged the whole book, and today's next purchase was `too_late`)."""
    target = book(body=SPEND)
    wrong_clock = Transaction("x1", "m1", ms("2026-09-01 10:00"), "purchasee", amount_minor=2900)
    results = score(target, buy("t1", "m1", DAY, line(2900)), wrong_clock,
                    buy("t2", "m1", "2026-03-04 11:00", line(2900)))
    assert [(r.outcome, r.reason) for r in results] == [
        ("accepted", ""), ("rejected", "unknown_kind"), ("accepted", "")]
    assert (target.today, target.members["m1"].points) == (parse_day("2026-03-04"), 40)


@pytest.mark.parametrize("status", ["frozen", "lost"])
def test_frozen_and_lost_members_earn_nothing_and_their_transactions_are_kept(status):
    target = book(body=SPEND)
    score(target, buy("t1", "m1", DAY, line(2900)))
    target.members["m1"].status = status
    result = score(target, buy("t2", "m1", DAY, line(2900)))[0]
    assert (result.outcome, result.points, result.reason) == ("accepted", 0, status)
    assert target.members["m1"].points == 20
    assert ("m1", "t2") in target.txns


@pytest.mark.parametrize("status", ["frozen", "lost"])
def test_a_frozen_or_lost_card_still_gives_back_what_a_refund_or_an_operator_takes(status):
    # kept at zero, a refund left a returned purchase's points with the member and used up its id
    target = book(body=SPEND)
    score(target, buy("t1", "m1", DAY, line(2900)), buy("t2", "m1", DAY, line(5000)))
    target.members["m1"].status = status
    refund, take, give = score(target, Transaction("r1", "m1", ms(DAY), "refund", refund_of="t1", amount_minor=2900),
                               Transaction("a1", "m1", ms(DAY), "adjustment", amount_minor=-10, note="fraud"),
                               Transaction("a2", "m1", ms(DAY), "adjustment", amount_minor=10, note="goodwill"))
    # an operator's credit is refused with its id free (an outside probe: kept at zero, it was lost)
    assert [(r.outcome, r.points, r.reason) for r in (refund, take, give)] == [
        ("accepted", -20, ""), ("accepted", -10, ""), ("rejected", 0, f"card_{status}")]
    assert target.members["m1"].points == 20 + 50 - 20 - 10
    assert sum(e.points for e in target.ledger) == target.members["m1"].points
    target.members["m1"].status = "active"
    again = score(target, Transaction("a2", "m1", ms(DAY), "adjustment", amount_minor=10, note="goodwill"))[0]
    assert (again.outcome, again.points) == ("accepted", 10)

@pytest.mark.parametrize("status", ["frozen", "lost"])
def test_a_purchase_kept_at_zero_on_a_blocked_card_is_refunded_for_nothing_not_refused(status):
    # an outside probe: its refund, after the card was usable again, was `nothing_to_refund`
    target = book(body=SPEND)
    score(target, buy("t1", "m1", DAY, line(2900)))
    member = target.members["m1"]
    member.status = status
    score(target, buy("t2", "m1", DAY, line(5000)))
    member.status = "active"
    first, second, third = score(target, Transaction("r1", "m1", ms(DAY), "refund", refund_of="t2", amount_minor=3000),
                                 Transaction("r2", "m1", ms(DAY), "refund", refund_of="t2", amount_minor=2000),
                                 Transaction("r3", "m1", ms(DAY), "refund", refund_of="t2", amount_minor=1))
    assert [(r.outcome, r.points, r.reason) for r in (first, second, third)] == [
        ("accepted", 0, ""), ("accepted", 0, ""), ("rejected", 0, "nothing_to_refund")]
    assert (member.points, member.total_spend) == (20, 2900)


@pytest.mark.parametrize(("before", "after"), [([], "active"), (["freeze"], "frozen")])
def test_cancelling_a_loss_gives_back_the_card_as_it_was_before_it_was_lost(before, after):
    target = book(body=SPEND)
    score(target, buy("t1", "m1", DAY, line(2900)))
    for action in [*before, "report_lost", "report_lost", "cancel_lost", "cancel_lost"]:
        set_status(target, "m1", action, "", target.today)
    assert target.members["m1"].status == after
    statuses = [e.status for e in target.ledger if e.kind == "status"]
    assert statuses == [*(["frozen"] if before else []), "lost", after]
    set_status(target, "m1", "report_lost", "", target.today)
    set_status(target, "m1", "cancel_lost", "", target.today)
    assert target.members["m1"].status == after  # the second loss remembers the same


def test_cancelling_a_loss_of_a_card_that_was_never_lost_is_refused():
    target = book(body=SPEND)
    score(target, buy("t1", "m1", DAY, line(2900)))
    for actions in (["freeze"], ["unfreeze", "report_lost", "cancel_lost", "freeze"]):
        for action in actions:
            set_status(target, "m1", action, "", target.today)
        with pytest.raises(InvalidRequestError, match="cannot cancel lost member 'm1': the card is frozen"):
            set_status(target, "m1", "cancel_lost", "", target.today)
    for action in ("unfreeze", "freeze", "report_lost", "cancel_lost", "unfreeze"):  # lost while frozen, back
        set_status(target, "m1", action, "", target.today)
    assert target.members["m1"].status == "active"


def test_recharges_add_stored_value_through_the_ledger():
    target = book(body=SPEND)
    score(target, Transaction("r1", "m1", ms(DAY), "recharge", amount_minor=50_000))
    assert target.members["m1"].stored_value == 50_000
    assert sum(e.stored_value for e in target.ledger) == 50_000


def test_an_adjustment_is_a_signed_operator_change_with_its_reason_in_the_ledger():
    target = book(body=SPEND)
    score(target, Transaction("a1", "m1", ms(DAY), "adjustment", amount_minor=300, note="goodwill"),
          Transaction("a2", "m1", ms(DAY), "adjustment", amount_minor=-100, note="correction"))
    assert target.members["m1"].points == 200
    assert [(e.cause, e.points, e.note) for e in target.ledger if e.kind == "adjust"] == [
        ("operator", 300, "goodwill"), ("operator", -100, "correction")]


def test_a_transaction_id_is_an_idempotency_key_within_its_member():
    """SPEC §2: the same id for another member is that member's own transaction; resent for
    the same member it is a duplicate that answers what the first one earned."""
    target = book(body=SPEND)
    results = score(target, buy("T1", "m1", DAY, line(2900)), buy("T1", "m2", DAY, line(5000)),
                    buy("T1", "m1", DAY, line(9900)), buy("T1", "m2", DAY, line(100)))
    assert [(r.outcome, r.points) for r in results] == [
        ("accepted", 20), ("accepted", 50), ("duplicate", 20), ("duplicate", 50)]
    assert (target.members["m1"].points, target.members["m2"].points) == (20, 50)


def test_texts_of_a_thousand_characters_are_kept():
    target = book(body=SPEND)
    score(target, Transaction("t1", "m1", ms(DAY), "purchase", amount_minor=2900, channel="c" * 1000),
          Transaction("t2", "m1", ms(DAY), "adjustment", amount_minor=5, note="n" * 1000))
    assert target.members["m1"].profile.channel == "c" * 1000
    assert [e.note for e in target.ledger if e.kind == "adjust"] == ["n" * 1000]
