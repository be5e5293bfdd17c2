"""Scoring the transactions that move money or spend what was earned (docs/rules.md, "Spending"): recharges,
redeems, payments, coupons, and refunds of them. They share their checks: the member must
exist and its card be usable, and a transaction the member's state refuses is rejected
without using up its id, so the till may fix it and send the same id again."""

from collections.abc import Callable

from engine.book import Book
from engine.bounds import refund_amount
from engine.members import Member
from engine.spending.coupons import score_coupon_issue, score_coupon_use, undo_coupon_use
from engine.spending.redemption import score_redeem, undo_redeem
from engine.spending.stored_value import score_payment, score_recharge, undo_payment, undo_recharge
from engine.transactions import Transaction, TxnRecord, TxnResult
from engine.types import COUPON_ISSUE, COUPON_USE, PAYMENT, PURCHASE, RECHARGE, REDEEM, Day

__all__ = ["REFUNDABLE", "UNDOABLE", "card_problem", "score_spending", "spending_refund_problem"]

Operation = Callable[[Book, Member, Transaction, Day], TxnRecord | str]
Undo = Callable[[Book, Member, TxnRecord, Transaction, Day], TxnRecord | str]

_OPERATIONS: dict[str, Operation] = {RECHARGE: score_recharge, REDEEM: score_redeem, PAYMENT: score_payment,
                                     COUPON_ISSUE: score_coupon_issue, COUPON_USE: score_coupon_use}
UNDOABLE: dict[str, Undo] = {RECHARGE: undo_recharge, REDEEM: undo_redeem, PAYMENT: undo_payment,
                             COUPON_USE: undo_coupon_use}
"""Refundable kinds other than purchase, and what refunding each does."""
REFUNDABLE = frozenset(UNDOABLE) | {PURCHASE}


def _rejected(txn: Transaction, reason: str) -> TxnResult:
    return TxnResult(txn.txn_id, "rejected", 0, 0, reason)


def card_problem(member: Member | None) -> str:
    if member is None:
        return "unknown_member"
    return "" if member.status == "active" else f"card_{member.status}"


def spending_refund_problem(original: TxnRecord, txn: Transaction) -> str:
    """Nothing of the original left to refund: all of it refunded, or a redeem or coupon use
    already undone (they are undone all at once); or a refund stating an amount of 0 (lines of 0:
    stating nothing at all means all that is left)."""
    if original.kind in (REDEEM, COUPON_USE):
        return "nothing_to_refund" if original.spent.undone else ""
    if original.refunded_minor >= original.paid_minor or ((txn.amount_minor or txn.lines) and refund_amount(txn) <= 0):
        return "nothing_to_refund"
    return ""


def score_spending(book: Book, txn: Transaction, day: Day, member: Member | None,
                   original: TxnRecord | None = None) -> TxnResult:
    """A spending kind or a recharge, or (with `original`) a refund of one."""
    reason = card_problem(member)
    if reason:
        return _rejected(txn, reason)
    began = member.since_began  # as scoring keeps it (engine.tiers.counted_since)
    if original is None:
        outcome = _OPERATIONS[txn.kind](book, member, txn, day)
    else:
        outcome = spending_refund_problem(original, txn) or UNDOABLE[original.kind](book, member, original, txn, day)
        if not isinstance(outcome, str):
            book.txns[(txn.member_id, txn.refund_of)] = original
    if isinstance(outcome, str):
        return _rejected(txn, outcome)
    outcome.since_began = began
    book.txns[(txn.member_id, txn.txn_id)] = outcome
    member.touched = True
    book.awake.add(member.member_id)
    book.dirty[member.member_id] = member
    return outcome.result(txn.txn_id)
