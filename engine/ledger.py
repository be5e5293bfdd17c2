"""Ledger entries: every change to a member, with its cause and the rule version that made it."""

from msgspec import Struct

from engine.types import Day, MemberId

__all__ = ["LedgerEntry"]


class LedgerEntry(Struct, array_like=True, omit_defaults=True, gc=False):
    """`cause` is `txn`, `midnight`, `operator` or `rules`; `ref` names the transaction,
    the midnight date or the operator's reason. `kind` says what happened: earn, event,
    reverse, recharge, adjust, release, void, expire, reset, tier, status. A member's
    creation is not an entry: the member records its enrollment day and channel."""

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
    status: str = ""
    unrecovered: int = 0
    """Points a refund could not take back because the balance may not go negative."""
    note: str = ""
    """The operator's reason, where an operator caused the change."""
    why: str = ""
    """What made a purchase's or an event's points, for a member who asks (engine/why.py).
    Last, so that entries stored before it existed still decode (with no why)."""
