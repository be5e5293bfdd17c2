"""Refunds: proportional, cumulative reversal of what the original actually earned."""

from engine.award import count_spend, lapsed_part, take_back
from engine.balance import pending_to_cancel
from engine.book import Book
from engine.bounds import refund_amount, room_to_earn
from engine.earning import purchase_growth, value_purchase
from engine.members import Member
from engine.record_fields import txn_record
from engine.spending.operations import REFUNDABLE
from engine.tagging import NOT_COUNTED, forget_purchase
from engine.tier_changes import tier_after_transaction
from engine.tiers import counted_since
from engine.transactions import Transaction, TxnRecord
from engine.types import PURCHASE, REFUND, Day

__all__ = ["UNKNOWN_ORIGINAL", "refund_problem", "score_refund"]

UNKNOWN_ORIGINAL = "unknown_original"
"""A refund's reason when its original was not found: it took its points back on its own day."""

def refund_problem(txn: Transaction, original: TxnRecord | None) -> str:
    """Why a refund cannot be applied whatever the member's state, or "" when it may be. The
    original is looked up for the refund's own member: another member's transaction is not its
    original. Refunds of spending kinds check what is left of them once the member's card is
    known to be usable (engine/spending/operations.py); a purchase's refund needs an amount."""
    if original is None:
        return "" if refund_amount(txn) > 0 else "nothing_to_refund"
    if original.kind not in REFUNDABLE:
        return "not_refundable"
    if original.kind != PURCHASE:
        return ""
    if original.refunded_minor >= original.paid_minor or refund_amount(txn) <= 0:
        return "nothing_to_refund"
    return ""


def score_refund(book: Book, member: Member, txn: Transaction, day: Day) -> TxnRecord | None:
    key = (txn.member_id, txn.refund_of)
    original = book.txns.get(key)
    if original is None:
        return _refund_unknown(book, member, txn, day)
    total = original.paid_minor
    refunded = min(original.refunded_minor + refund_amount(txn), total)
    # at least 0: an operator's void of held points reversed them ahead of the refunds (operators._voided)
    points = max(0, original.points * refunded // total - original.reversed_points)
    growth = max(0, original.growth * refunded // total - original.reversed_growth)
    eligible = original.eligible_minor * refunded // total - original.reversed_eligible
    from_pending = pending_to_cancel(member, txn.refund_of, points)
    if not room_to_earn(member, day, -points, -growth, -eligible, from_pending):
        return None
    whole_before, refunded_before = original.refunded_minor < total, original.refunded_minor
    original.refunded_minor = refunded
    original.reversed_points += points
    original.reversed_eligible += eligible
    since = counted_since(member, original)
    taken, taken_growth = take_back(book, member, day, txn.txn_id, "reverse", points, growth,
                                    txn.refund_of, original.day, since, lapsed_part(original, points))
    # what was taken, not what was due: growth never goes below 0, and what a refund could not take
    # is taken by the purchase's later refunds, so that its full refund reverses all it gave (SPEC
    # §5; an outside probe's member kept 1 growth of a purchase refunded in full)
    original.reversed_growth += taken_growth
    book.txns[key] = original
    count_spend(book, member, original.day, -eligible, txn.refund_of, since)
    _uncarry(book, member, original, eligible, refunded_before, refunded)
    if whole_before and refunded >= total and book.programme.tags.rules and original.reason not in NOT_COUNTED:
        forget_purchase(book, member, original.day)
    tier_after_transaction(book, member, day, txn.txn_id, lowered=True)
    return txn_record(member.member_id, REFUND, day, -taken, -taken_growth, "", book.programme.version)


def _uncarry(book: Book, member: Member, original: TxnRecord, eligible: int, before: int, after: int) -> None:
    """Under `carry`, a refund moves the carry back by what its purchase moved it, in proportion to
    what is refunded of it (`before` and `after`: refunded before and with this refund; the
    cumulative floor of its size, as points), so that a full refund leaves the carry as if the
    purchase had not been. Its own spend below one unit leaves the carry, which may go below 0
    (the next purchases' spend repaying it first; else buying under one unit and returning it,
    again and again, built a carry that earned points: an outside probe); and the spend it took
    from an earlier purchase's carry to complete a unit comes back, the unit's points being
    reversed (another probe found that spend lost). A purchase recorded before its move was kept
    gives back its refunded spend below one unit, as then."""
    programme = book.programme
    if not (programme.carries and programme.spend_unit):
        return
    moved = original.carry_moved
    if moved is None:
        if eligible > 0:
            member.carry_minor -= eligible % programme.spend_unit
        return
    total, size = original.paid_minor, abs(moved)
    back = size * after // total - size * before // total  # cumulative floors of its size, as points (SPEC §5)
    member.carry_minor -= back if moved > 0 else -back


def _refund_unknown(book: Book, member: Member, txn: Transaction, day: Day) -> TxnRecord | None:
    """Negative earning of the refund's lines under today's rules, without per-order points."""
    programme = book.programme
    value = value_purchase(programme, member, txn, day, per_order=False)
    growth = purchase_growth(programme, value, value.points)
    if not room_to_earn(member, day, -value.points, -growth, -value.eligible):
        return None
    taken, taken_growth = take_back(book, member, day, txn.txn_id, "reverse", value.points, growth)
    count_spend(book, member, day, -value.eligible, txn.txn_id)
    tier_after_transaction(book, member, day, txn.txn_id, lowered=True)
    # its spend taken out, kept so that a publish rebuilding per-day sums takes it out again (publishing.py)
    return txn_record(member.member_id, REFUND, day, -taken, -taken_growth, UNKNOWN_ORIGINAL, programme.version,
                      eligible_minor=-value.eligible)
