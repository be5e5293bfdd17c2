"""A member's points as lots: earning repays debt first; reversals take the earliest-expiring lots."""

from bisect import insort

from engine.members import Held, Lot, Member, forget_points_reminder
from engine.types import Day, TxnId

__all__ = ["add_points", "cancel_held", "hold_points", "pending_to_cancel", "take_points"]


def add_points(member: Member, amount: int, expires: Day, given_back: bool = False) -> None:
    """Make `amount` spendable; a debt (negative balance) is repaid before a lot is made. Points
    earned into an expiry date the member holds none of are announced again, though that date's
    were (they were spent meanwhile); points `given_back` (a redeem refunded) are not."""
    member.points += amount
    repaid = min(member.debt, amount)
    member.debt -= repaid
    rest = amount - repaid
    if rest <= 0:
        return
    lots = member.lots
    latest = lots[-1] if lots else None  # a local, so that compiled code reads it as a Lot
    if latest is not None and latest.expires == expires:  # the usual case: today's lot is the latest
        latest.amount += rest
        return
    for lot in lots:
        if lot.expires == expires:
            lot.amount += rest
            return
    if member.reminded and not given_back:
        forget_points_reminder(member, expires)
    insort(lots, Lot(expires, rest), key=_expiry)


def _expiry(lot: Lot) -> Day:
    return lot.expires


def hold_points(member: Member, amount: int, release: Day, expires: Day, txn_id: TxnId) -> None:
    """Keep `amount` pending until the midnight run of `release` (0: until an operator decides)."""
    member.pending += amount
    member.held.append(Held(release, expires, amount, txn_id))


UNRECOVERED_KEPT = 16
"""Separate entries of `Member.unrecovered` a member keeps: buying, redeeming and refunding again and
again would otherwise grow its record without end."""


def take_points(member: Member, amount: int, allow_negative: bool) -> int:
    """Remove up to `amount` spendable points, earliest expiry first. What the lots cannot
    cover becomes debt, or, when the balance may not go negative, is returned as unrecovered and
    kept with the member (`Member.unrecovered`: a redeem's refund repays it)."""
    remaining = amount
    lots = member.lots
    while remaining and lots:
        lot = lots[0]
        taken = min(lot.amount, remaining)
        lot.amount -= taken
        remaining -= taken
        if lot.amount == 0:
            del lots[0]
    if remaining and allow_negative:
        member.debt += remaining
        remaining = 0
    elif remaining:
        owed = (*member.unrecovered, (member.ledger_seq, remaining))
        if len(owed) > UNRECOVERED_KEPT:  # the two oldest as one, at the later's place: repaid no more
            owed = ((owed[1][0], owed[0][1] + owed[1][1]), *owed[2:])
        member.unrecovered = owed
    member.points -= amount - remaining
    return remaining


def pending_to_cancel(member: Member, txn_id: TxnId, amount: int) -> int:
    """What `cancel_held(member, txn_id, amount)` would cancel, without cancelling it: the part of
    taking `amount` points back that leaves the spendable balance alone (room_to_earn's `from_pending`)."""
    if amount <= 0:
        return 0
    pending = 0
    for held in member.held:
        if held.txn_id == txn_id:
            pending += held.amount
    return min(pending, amount)


def cancel_held(member: Member, txn_id: TxnId, amount: int) -> int:
    """Cancel up to `amount` of the points a transaction still has pending; returns how many."""
    cancelled = 0
    for held in member.held:
        if held.txn_id == txn_id and cancelled < amount:
            taken = min(held.amount, amount - cancelled)
            held.amount -= taken
            cancelled += taken
    if cancelled:
        member.held = [h for h in member.held if h.amount]
        member.pending -= cancelled
    return cancelled
