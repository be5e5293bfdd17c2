"""Stored value (docs/rules.md, "Spending"): recharges into the principal, bonuses into the bonus balance,
payments principal first, and the proportional refunds of both."""

from engine.award import lapsed_part, take_back
from engine.balance import pending_to_cancel
from engine.book import Book
from engine.bounds import fits, refund_amount, room_to_earn
from engine.members import Member
from engine.spending.coupons import void_coupons
from engine.spending.recharge_bonuses import choose_bonus, give_bonus
from engine.tier_changes import tier_after_transaction
from engine.tiers import counted_since
from engine.transactions import Spent, Transaction, TxnRecord
from engine.types import PAYMENT, RECHARGE, REFUND, Day

__all__ = ["score_payment", "score_recharge", "undo_payment", "undo_recharge"]


def _count_recharge(book: Book, member: Member, day: Day, amount: int, since: bool = True) -> None:
    """Principal paid in (or refunded) counts toward the `recharge` tier metric; bonus never does.
    `since`: False for a refund of a recharge the `since_*` sums never took in (tiers.counted_since)."""
    member.total_recharge += amount
    if since and day >= member.tier_since:
        member.since_recharge += amount
    book.programme.ladder.record(member, "recharge", day, amount)


def score_recharge(book: Book, member: Member, txn: Transaction, day: Day) -> TxnRecord | str:
    programme = book.programme
    amount = txn.amount_minor
    fixed = programme.rules.stored_value.fixed_amounts
    if fixed and amount not in fixed:
        return "amount_not_allowed"
    bonus = choose_bonus(book, member, amount, day) if programme.rules.recharge_bonuses else None
    extra = bonus.bonus_minor if bonus else 0
    points = bonus.points if bonus else 0
    if not (fits(_balance(member) + amount + extra, member.total_recharge + amount, member.since_recharge + amount)
            and room_to_earn(member, day, points, programme.growth_for_points(points), 0)):
        return "amount_too_large"
    member.stored_value += amount
    member.bonus_value += extra
    _count_recharge(book, member, day, amount)
    book.write(member, day, "txn", txn.txn_id, "recharge", stored_value=amount, bonus_value=extra,
               note=bonus.name if bonus else "")
    given = give_bonus(book, member, bonus, day, txn.txn_id) if bonus else None
    tier_after_transaction(book, member, day, txn.txn_id)
    if given is None:
        return TxnRecord(member.member_id, RECHARGE, day, 0, 0, "", programme.version, amount,
                         spent=Spent(amount))
    return TxnRecord(member.member_id, RECHARGE, day, given.points, given.growth, given.reason, programme.version,
                     amount, spent=Spent(amount + extra, given.codes, extra), lapsed_points=given.lapsed)


def score_payment(book: Book, member: Member, txn: Transaction, day: Day) -> TxnRecord | str:
    amount = txn.amount_minor
    if amount > member.stored_value + member.bonus_value:
        return "insufficient_balance"
    principal = min(amount, member.stored_value)
    bonus = amount - principal
    member.stored_value -= principal
    member.bonus_value -= bonus
    book.write(member, day, "txn", txn.txn_id, "payment", stored_value=-principal, bonus_value=-bonus)
    return TxnRecord(member.member_id, PAYMENT, day, 0, 0, "", book.programme.version, amount,
                     spent=Spent(-amount, bonus_minor=bonus))


def _balance(member: Member) -> int:
    """The stored value balance, principal and bonus: one balance in two parts (SPEC §11.4), so
    within the bound together, as an import checks it (engine/opening.py). Each part never
    negative, so neither passes the bound alone."""
    return member.stored_value + member.bonus_value


def _refunded_so_far(original: TxnRecord, txn: Transaction) -> int:
    """C: what is refunded of the original with this refund, never more than it (T). A refund
    stating no amount (nor lines: they were ignored, and all that was left went back) takes all
    that is left."""
    asked = refund_amount(txn) or original.paid_minor - original.refunded_minor
    return min(original.refunded_minor + asked, original.paid_minor)


def undo_payment(book: Book, member: Member, original: TxnRecord, txn: Transaction, day: Day) -> TxnRecord | str:
    """The money goes back in the proportion the payment took it: the bonus part is
    floor(bonus taken × C / T) cumulatively, the rest goes to the principal. Refused as
    `amount_too_large` when a balance would pass the bound: what the payment freed may have been
    filled again since (by recharges, or an imported balance no lifetime sum bounds)."""
    refunded = _refunded_so_far(original, txn)
    returned = refunded - original.refunded_minor
    spent = original.spent
    bonus = spent.bonus_minor * refunded // original.paid_minor - spent.reversed_bonus
    principal = returned - bonus
    if not fits(_balance(member) + principal + bonus):
        return "amount_too_large"
    member.stored_value += principal
    member.bonus_value += bonus
    original.refunded_minor = refunded
    spent.reversed_bonus += bonus
    book.write(member, day, "txn", txn.txn_id, "payment_refund", stored_value=principal, bonus_value=bonus)
    return TxnRecord(member.member_id, REFUND, day, 0, 0, "", book.programme.version,
                     spent=Spent(returned))


def undo_recharge(book: Book, member: Member, original: TxnRecord, txn: Transaction, day: Day) -> TxnRecord | str:
    """Principal back, and the recharge's bonus balance, bonus points and growth taken back in
    the same proportion (floor, cumulative); a full refund voids the unused coupons it gave.
    Points taken back may leave a debt; balances may not go negative."""
    total = original.paid_minor
    refunded = _refunded_so_far(original, txn)
    principal = refunded - original.refunded_minor
    spent = original.spent
    bonus = spent.bonus_minor * refunded // total - spent.reversed_bonus
    if principal > member.stored_value or bonus > member.bonus_value:
        return "insufficient_balance"
    points = max(0, original.points * refunded // total - original.reversed_points)  # a void's, as refunds.py
    growth = max(0, original.growth * refunded // total - original.reversed_growth)
    from_pending = pending_to_cancel(member, txn.refund_of, points)
    if not room_to_earn(member, day, -points, -growth, 0, from_pending):
        return "amount_too_large"
    member.stored_value -= principal
    member.bonus_value -= bonus
    since = counted_since(member, original)
    _count_recharge(book, member, original.day, -principal, since)
    book.write(member, day, "txn", txn.txn_id, "recharge_refund", stored_value=-principal, bonus_value=-bonus)
    taken, taken_growth = take_back(book, member, day, txn.txn_id, "reverse", points, growth,
                                    txn.refund_of, original.day, since, lapsed_part(original, points))
    original.refunded_minor = refunded
    spent.reversed_bonus += bonus
    original.reversed_points += points
    original.reversed_growth += taken_growth  # what was taken: a later refund takes the rest (refunds.py)
    if refunded == total:
        void_coupons(book, member, txn.refund_of, spent.coupon_code, day, txn.txn_id)
    tier_after_transaction(book, member, day, txn.txn_id, lowered=True)
    return TxnRecord(member.member_id, REFUND, day, -taken, -taken_growth, "", book.programme.version,
                     spent=Spent(-(principal + bonus)))
