"""Transactions as they arrive (the gRPC `Transaction` fields) and the result each one gets.

Records here and in members.py and ledger.py are `gc=False`: they never form reference
cycles, and keeping millions of them out of the cyclic collector triples decoding speed."""

from msgspec import Struct

from engine.types import Day, MemberId, Minor, TxnId

__all__ = ["LineItem", "Transaction", "TxnRecord", "TxnResult"]


class LineItem(Struct, omit_defaults=True, gc=False):
    sku: str = ""
    product_id: str = ""
    category: str = ""
    name: str = ""
    paid_minor: Minor = 0
    quantity: int = 0
    """0 means not given and counts as 1."""
    promotional: bool = False
    member_discounted: bool = False


class Transaction(Struct, omit_defaults=True, gc=False):
    """`kind` and `status` are the lower-case words (`purchase`, `paid`); an empty status is paid.
    `note` is the operator's reason on an adjustment."""

    txn_id: TxnId = ""
    member_id: MemberId = ""
    occurred_at_ms: int = 0
    kind: str = ""
    status: str = ""
    store_id: str = ""
    channel: str = ""
    lines: list[LineItem] = []
    refund_of: TxnId = ""
    event_type: str = ""
    amount_minor: Minor = 0
    note: str = ""


class TxnResult(Struct, gc=False):
    """What one transaction did: `points` and `growth` are the change it made."""

    txn_id: TxnId
    outcome: str
    points: int = 0
    growth: int = 0
    reason: str = ""


class TxnRecord(Struct, array_like=True, gc=False):
    """The transaction index entry: answers a resubmission and a later refund.
    Only accepted transactions are recorded; the others do not use up their id."""

    member_id: MemberId
    kind: str
    day: Day
    points: int
    growth: int
    reason: str
    rule_version: int
    paid_minor: Minor = 0
    """T: what the original paid, the denominator of proportional refunds."""
    eligible_minor: Minor = 0
    """The part of the payment that counted as spend for tiers."""
    refunded_minor: Minor = 0
    reversed_points: int = 0
    reversed_growth: int = 0
    reversed_eligible: Minor = 0

    def result(self, txn_id: TxnId, outcome: str = "accepted") -> TxnResult:
        return TxnResult(txn_id, outcome, self.points, self.growth, self.reason)
