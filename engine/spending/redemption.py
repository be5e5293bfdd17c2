"""Redeeming points (docs/rules.md, "Spending"): gifts and points as cash, from the lots that expire
first, within the programme's windows; and the refund that puts them back."""

from engine.balance import add_points, take_points
from engine.book import Book
from engine.bounds import room_to_restore
from engine.members import Member
from engine.spending.points_as_cash import settle
from engine.transactions import Spent, Transaction, TxnRecord
from engine.types import REDEEM, REFUND, Day

__all__ = ["available_points", "redeemable", "score_redeem", "undo_redeem"]

def available_points(member: Member) -> int:
    """The spendable balance (pending and held points are not in it), 0 while in debt."""
    return max(member.points, 0)


def redeemable(book: Book, member: Member, txn: Transaction, day: Day) -> tuple[int, int] | str:
    """(points, value) the redeem spends, or why it cannot; in the order docs/rules.md gives."""
    programme = book.programme
    if member.abnormal and programme.anomaly.action == "block_earn_and_redeem":
        return "redeem_blocked"
    if not programme.redemption_window.allows(day):
        return "outside_window"
    cash = programme.rules.redemption.cash
    if txn.amount_minor and cash is None:
        return "cash_not_enabled"
    available = available_points(member)
    if not txn.amount_minor:
        return (txn.points, 0) if 0 < txn.points <= available else "insufficient_points"
    # SPEC 11.3: what the offer settles must be available (the checks of redeeming); an offer
    # beyond the balance was cut down to it and accepted for less (an outside probe)
    points, value = settle(cash, txn.points or available, txn.amount_minor)
    return (points, value) if 0 < points <= available else "insufficient_points"


def _take_lots(member: Member, points: int) -> tuple[tuple[int, int], ...]:
    """Take from the lot that expires first (never-expiring lots sort last)."""
    taken, remaining, lots = [], points, member.lots
    while remaining:
        lot = lots[0]
        amount = min(lot.amount, remaining)
        lot.amount -= amount
        remaining -= amount
        taken.append((lot.expires, amount))
        if lot.amount == 0:
            del lots[0]
    member.points -= points
    return tuple(taken)


def score_redeem(book: Book, member: Member, txn: Transaction, day: Day) -> TxnRecord | str:
    """Spending never counts against the sums tiers are judged on: redeeming never lowers a tier."""
    spent = redeemable(book, member, txn, day)
    if isinstance(spent, str):
        return spent
    points, value = spent
    lots = _take_lots(member, points)
    book.write(member, day, "txn", txn.txn_id, "redeem", points=-points, lots=lots)
    return TxnRecord(member.member_id, REDEEM, day, -points, 0, "", book.programme.version,
                     spent=Spent(value, lots=lots, seq=member.ledger_seq))


def undo_redeem(book: Book, member: Member, original: TxnRecord, txn: Transaction, day: Day) -> TxnRecord | str:
    """All the points back at once, each to the expiry it came from (a lot already past its
    expiry goes at the next midnight run); restored points repay a debt first, and then what
    refunds could not take back (`Member.unrecovered`). Refused as `amount_too_large` when the
    balance would pass the bound (SPEC §2)."""
    if not room_to_restore(member, -original.points):
        return "amount_too_large"
    spent = original.spent
    for expires, amount in spent.lots:
        add_points(member, amount, expires, given_back=True)  # their reminder, if sent, is not sent again
    restored = -original.points
    book.write(member, day, "txn", txn.txn_id, "restore", points=restored, lots=spent.lots)
    recovered = _recover(book, member, restored, spent.seq, day, txn.txn_id)
    spent.undone = True
    # the points it gave back, less those it repaid at once: what the member's balance gained
    return TxnRecord(member.member_id, REFUND, day, restored - recovered, 0, "", book.programme.version,
                     spent=Spent(-spent.value_minor))


def _recover(book: Book, member: Member, restored: int, since: int, day: Day, ref: str) -> int:
    """Restored points take what refunds after the redeem (its entry `since`) could not, as those
    refunds would have taken them had the redeem been refunded first (earliest expiry first): the
    same end whichever comes first. The entry's negative `unrecovered` says how much it repaid
    (returned)."""
    room = min(restored, max(member.points, 0)) if since else 0
    recovered, left = 0, []
    for seq, points in member.unrecovered:
        part = min(points, room - recovered) if seq >= since else 0
        recovered += part
        if points > part:
            left.append((seq, points - part))
    if not recovered:
        return 0
    member.unrecovered = tuple(left)
    take_points(member, recovered, False)
    book.write(member, day, "txn", ref, "reverse", points=-recovered, unrecovered=-recovered,
               note="points refunds could not take back, repaid by the points this refund restored")
    return recovered
