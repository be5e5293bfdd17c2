"""Small builders for rules, times and transactions, shared by the tests."""

from datetime import datetime
from zoneinfo import ZoneInfo

from engine.book import Book
from engine.programme import Programme
from engine.scoring import score_transaction
from engine.transactions import LineItem, Transaction, TxnResult
from engine.validation import load_rules

ZONE = ZoneInfo("Asia/Shanghai")

HEADER = """
version = 1
programme = "Test programme"
timezone = "Asia/Shanghai"
"""

ONE_TIER = """
[[tiers]]
name = "Basic"
"""


SHOPLINE_TIERS = """
[tier_policy]
on_expiry = "{on_expiry}"

[[tiers]]
name = "Regular"

[[tiers]]
name = "Bronze"
metric = "spend"
window = "3 months"
threshold = 50000
validity = "12 months"

[[tiers]]
name = "Silver"
metric = "spend"
window = "3 months"
threshold = 100000
validity = "12 months"
extension = {{ metric = "spend", threshold = 100000 }}
"""
"""SHOPLINE's worked example: Silver at 1,000 in 3 months, Bronze at 500, valid 12 months."""


SILVER_BY_GROWTH = """
[[tiers]]
name = "Silver"
metric = "growth"
threshold = 100
"""
GOLD_BY_SPEND = """
[[tiers]]
name = "Gold"
metric = "spend"
window = "3 months"
threshold = 50000
validity = "12 months"
"""


def three_tiers(silver: str = SILVER_BY_GROWTH) -> str:
    """Basic, Silver at 100 growth (or `silver`: "" leaves it out), Gold at 500.00 spent in 3 months."""
    return f'\n[[tiers]]\nname = "Basic"\n{silver}{GOLD_BY_SPEND}'


def without_coupon_triggers(rules: str) -> str:
    """The example rules without their enrollment and upgrade coupons, for tests of other things."""
    return rules.replace('issue_on = "enroll"', 'issue_on = "api"').replace(
        'issue_on = "upgrade"\ntiers = ["Gold"]', 'issue_on = "api"')


def shopline_tiers(on_expiry: str = "reevaluate") -> str:
    return SHOPLINE_TIERS.format(on_expiry=on_expiry)


def rules_text(top: str = "", body: str = "", tiers: str = ONE_TIER) -> str:
    """Top-level keys must come before any table, so the document is put together in order."""
    return "\n".join((HEADER, top, body, tiers))


def programme(top: str = "", body: str = "", tiers: str = ONE_TIER) -> Programme:
    return Programme(load_rules(rules_text(top, body, tiers)))


def book(top: str = "", body: str = "", tiers: str = ONE_TIER) -> Book:
    return Book(programme(top, body, tiers))


def ms(local: str) -> int:
    """UTC milliseconds of a local Asia/Shanghai time such as "2026-03-05 10:00"."""
    return int(datetime.fromisoformat(local).replace(tzinfo=ZONE).timestamp() * 1000)


def line(paid: int, sku: str = "SKU-1", **fields: object) -> LineItem:
    return LineItem(sku=sku, paid_minor=paid, **fields)


def buy(txn_id: str, member: str, when: str, *lines: LineItem, **fields: object) -> Transaction:
    return Transaction(txn_id, member, ms(when), "purchase", lines=list(lines), **fields)


def refund(txn_id: str, member: str, when: str, of: str, amount: int = 0, *lines: LineItem) -> Transaction:
    return Transaction(txn_id, member, ms(when), "refund", refund_of=of, amount_minor=amount,
                       lines=list(lines))


def event(txn_id: str, member: str, when: str, event_type: str) -> Transaction:
    return Transaction(txn_id, member, ms(when), "event", event_type=event_type)


def score(target: Book, *txns: Transaction) -> list[TxnResult]:
    """Score in order, moving the business day with the stream as replay does."""
    from engine.replay import replay_stream

    return list(replay_stream(target, txns))


def score_one(target: Book, txn: Transaction) -> TxnResult:
    return score_transaction(target, txn)


def adjust(txn_id: str, member: str, when: str, points: int) -> Transaction:
    return Transaction(txn_id, member, ms(when), "adjustment", amount_minor=points, note="test")


def redeem(txn_id: str, member: str, when: str, points: int = 0, amount: int = 0) -> Transaction:
    return Transaction(txn_id, member, ms(when), "redeem", points=points, amount_minor=amount)


def recharge(txn_id: str, member: str, when: str, amount: int) -> Transaction:
    return Transaction(txn_id, member, ms(when), "recharge", amount_minor=amount)


def pay(txn_id: str, member: str, when: str, amount: int) -> Transaction:
    return Transaction(txn_id, member, ms(when), "payment", amount_minor=amount)
