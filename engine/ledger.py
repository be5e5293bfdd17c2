"""Ledger entries: every change to a member, with its cause and the rule version that made it."""

from msgspec import Struct

from engine.types import Day, MemberId
from engine.why import Why

__all__ = ["LedgerEntry"]


class LedgerEntry(Struct, array_like=True, omit_defaults=True, gc=False):
    """`cause` is `txn`, `midnight`, `operator` or `rules`; `ref` names the transaction,
    the midnight date or the operator's reason. `kind` says what happened: earn, event,
    reverse, recharge, adjust, release, void, expire, reset, tier, status; and for spending
    redeem, restore, payment, payment_refund, recharge_refund, bonus (recharge bonus points),
    coupon_issued, coupon_not_issued, coupon_used, coupon_restored, coupon_expired,
    coupon_void. A member's creation is not an entry: the member records its enrollment day
    and channel."""

    member_id: MemberId
    seq: int
    day: Day
    cause: str
    ref: str
    rule_version: int
    kind: str
    points: int = 0
    pending: int = 0
    growth: int = 0
    stored_value: int = 0
    tier_from: int = -1
    tier_to: int = -1
    """Tiers by position in the ladder of the entry's own `rule_version` (summary.py names them so)."""
    status: str = ""
    unrecovered: int = 0
    """Points a refund could not take back because the balance may not go negative."""
    note: str = ""
    """The operator's reason, where an operator caused the change; the recharge bonus's name;
    why a coupon was not issued."""
    why: Why | str = ""
    """What made a purchase's or an event's points, for a member who asks: its parts, made into
    a line when read (engine/why.py); a text in entries stored before the parts were. Appended,
    like the fields after it, so that entries stored before them still decode."""
    bonus_value: int = 0
    """Change of the bonus part of stored value (`stored_value` is the principal's)."""
    coupon_code: str = ""
    lots: tuple[tuple[int, int], ...] = ()
    """Points taken from or restored to lots, (expires day, amount) each (redeem and its refund)."""
    tier_from_name: str = ""
    """The tier left, by name, when the entry's rules version has no tier of that name (a publish
    removed it; `tier_from` is then -1): positions name tiers only within one version's ladder."""
    refund_of: str = ""
    """On every entry a refund wrote: the id of the transaction it refunds, as the refund named it
    (`ref` is the refund's own id), so that the ledger alone tells which purchase, redeem,
    payment, recharge or coupon use a refund undid."""
