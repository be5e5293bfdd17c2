"""Transactions as they arrive (the gRPC `Transaction` fields) and the result each one gets.

Records here and in members.py and ledger.py are `gc=False`: they never form reference
cycles, and keeping millions of them out of the cyclic collector triples decoding speed."""

from msgspec import Struct

from engine.types import Day, MemberId, Minor, TxnId

__all__ = ["LineItem", "Spent", "Transaction", "TxnRecord", "TxnResult"]


class LineItem(Struct, omit_defaults=True, gc=False, forbid_unknown_fields=True):
    sku: str = ""
    product_id: str = ""
    category: str = ""
    name: str = ""
    paid_minor: Minor = 0
    quantity: int = 0
    """0 means not given and counts as 1."""
    promotional: bool = False
    member_discounted: bool = False


class Transaction(Struct, omit_defaults=True, gc=False, forbid_unknown_fields=True):
    """A key no transaction has is refused (`malformed`, naming it), never left out: a refund's
    `amountMinor` left out refunded the whole payment (an outside probe).

    `kind` and `status` are the lower-case words (`purchase`, `paid`); an empty status is paid.
    `note` is the operator's reason on an adjustment. `points` is what a redeem spends (or
    offers, against an order of `amount_minor`); `coupon_id` names the coupon a coupon_issue
    gives, `coupon_code` the instance a coupon_use spends."""

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
    points: int = 0
    coupon_id: str = ""
    coupon_code: str = ""


class TxnResult(Struct, gc=False):
    """What one transaction did: `points` and `growth` are the change it made. `value_minor`
    is the money value of a spending transaction (a deduction, a discount, stored value paid
    as a negative number); `coupon_code` the codes it issued, joined by commas."""

    txn_id: TxnId
    outcome: str
    points: int = 0
    growth: int = 0
    reason: str = ""
    value_minor: Minor = 0
    coupon_code: str = ""


class Spent(Struct, array_like=True, gc=False):
    """The spending part of an index record."""

    value_minor: Minor = 0
    coupon_code: str = ""
    """The codes a coupon_issue or recharge issued (comma-joined), or the code a coupon_use spent."""
    bonus_minor: Minor = 0
    """Bonus balance a recharge gave or a payment took: refunds return it in proportion."""
    reversed_bonus: Minor = 0
    lots: tuple[tuple[int, int], ...] = ()
    """A redeem's lots taken, (expires, amount) each, so its refund restores them exactly."""
    undone: bool = False
    """A redeem or coupon_use is refunded all at once: a second refund finds nothing."""
    seq: int = 0  # last, appended
    """A redeem's ledger entry's `ledger_seq`: what refunds could not take back after it
    (`Member.unrecovered`) is repaid by its refund. 0 on a redeem recorded before it was kept,
    whose refund repays nothing, as then."""


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
    spent: Spent | None = None
    """What a spending transaction or recharge did beyond points; None on every other record, so
    an earning record stores one byte for it (array-like records store every field)."""
    since_began: int = -1
    """The member's `since_began` when this was applied (engine.tiers.counted_since); -1 on a record
    written before it was kept, whose day alone decides, as it did then."""
    lapsed_points: int = 0  # appended as since_began
    """Of its points, those that lapsed while held or pending (never spendable) and no refund has
    counted yet: its refund takes them out of what was earned, not from the balance (they left
    it when they lapsed; taken again, a refund inside the window left a debt: an outside probe)."""
    carry_moved: int | None = None  # last, appended as since_began
    """How much a purchase under `carry` rounding moved the member's carry (what it left less
    what it found), which its refunds move back in proportion: a purchase that completed a unit
    with spend an earlier one carried gave that spend back too, not only its own below a unit
    (an outside probe). None only on a record from before it was kept."""

    def result(self, txn_id: TxnId, outcome: str = "accepted") -> TxnResult:
        spent = self.spent
        if spent is None:
            return TxnResult(txn_id, outcome, self.points, self.growth, self.reason)
        return TxnResult(txn_id, outcome, self.points, self.growth, self.reason, spent.value_minor, spent.coupon_code)

