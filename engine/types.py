"""The shared vocabulary: ids, units and the words transactions and results use."""

from typing import Final, Literal, TypeAlias

__all__ = [
    "ADJUSTMENT",
    "COUPON_ISSUE",
    "COUPON_USE",
    "EVENT",
    "KINDS",
    "NEVER",
    "OUTCOMES",
    "PAYMENT",
    "PURCHASE",
    "RECHARGE",
    "REDEEM",
    "REFUND",
    "SPENDING_KINDS",
    "STATUSES",
    "Day",
    "MemberId",
    "Metric",
    "Minor",
    "TxnId",
]

MemberId: TypeAlias = str
TxnId: TypeAlias = str
Minor: TypeAlias = int
"""Money in minor units (fen, cents): always an integer."""
Day: TypeAlias = int
"""A local calendar day as `date.toordinal()`: cheap to compare, add and store."""

NEVER: Final[Day] = 10**7
"""An expiry day later than any real date (ordinal 3,652,059 is 31 Dec 9999)."""

PURCHASE: Final = "purchase"
REFUND: Final = "refund"
EVENT: Final = "event"
RECHARGE: Final = "recharge"
ADJUSTMENT: Final = "adjustment"
REDEEM: Final = "redeem"
PAYMENT: Final = "payment"
COUPON_ISSUE: Final = "coupon_issue"
COUPON_USE: Final = "coupon_use"
SPENDING_KINDS: Final = frozenset({REDEEM, PAYMENT, COUPON_ISSUE, COUPON_USE})
"""Kinds that never enroll a member and are rejected, not kept at zero, on a card that cannot spend."""
KINDS: Final = frozenset({PURCHASE, REFUND, EVENT, RECHARGE, ADJUSTMENT}) | SPENDING_KINDS
STATUSES: Final = frozenset({"paid", "pending", "cancelled"})
OUTCOMES: Final = ("accepted", "duplicate", "ignored", "rejected")

Metric: TypeAlias = Literal["growth", "points", "spend", "recharge", "single_purchase"]
