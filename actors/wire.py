"""Between protobuf messages and engine records: enums to words and back. A batch's transactions
are read in the shard that owns them (actors/batch_wire.py), everything else at the gateway."""

import msgspec

from engine.anomaly_report import AnomalyRow
from engine.ledger import LedgerEntry
from engine.spending.member_coupons import HeldCoupon
from engine.spending.quote import Quote, QuotedCoupon
from engine.summary import CouponView, MemberSummary, summarise_entry
from engine.transactions import LineItem, Transaction
from engine.why import WhyLabels
from proto import patron_pb2 as pb

__all__ = ["KIND_WORDS", "OUTCOME_NUMBERS", "STATUS_WORDS", "anomaly_row", "attributes_from", "held_coupon_message",
           "ledger_entry", "line_items", "member_message", "quote_message", "transactions_from"]

KIND_WORDS = {pb.KIND_PURCHASE: "purchase", pb.KIND_REFUND: "refund", pb.KIND_EVENT: "event",
              pb.KIND_RECHARGE: "recharge", pb.KIND_ADJUSTMENT: "adjustment", pb.KIND_REDEEM: "redeem",
              pb.KIND_PAYMENT: "payment", pb.KIND_COUPON_ISSUE: "coupon_issue", pb.KIND_COUPON_USE: "coupon_use"}
STATUS_WORDS = {pb.STATUS_UNSPECIFIED: "", pb.STATUS_PAID: "paid", pb.STATUS_PENDING: "pending",
                pb.STATUS_CANCELLED: "cancelled"}
"""Enums to words; the compiled part reader (actors/part_reader.pyx) maps them from these too."""
OUTCOME_NUMBERS = {"accepted": pb.OUTCOME_ACCEPTED, "duplicate": pb.OUTCOME_DUPLICATE, "ignored": pb.OUTCOME_IGNORED,
                   "rejected": pb.OUTCOME_REJECTED}
"""A result's outcome to its enum; the compiled result writer (actors/result_writer.pyx) too."""
_NOT_ON_MEMBER = frozenset({"attributes", "coupons", "date_attributes"})  # date_attributes: in the attributes


def transactions_from(message: pb.Transaction) -> Transaction:
    """An unknown or unspecified enum becomes a word the engine rejects with a reason."""
    return Transaction(
        message.txn_id, message.member_id, message.occurred_at_ms, KIND_WORDS.get(message.kind, "unspecified"),
        STATUS_WORDS.get(message.status, "unknown"), message.store_id, message.channel, line_items(message.lines),
        message.refund_of, message.event_type, message.amount_minor, message.note, message.points,
        message.coupon_id, message.coupon_code)


def line_items(lines: list[pb.LineItem]) -> list[LineItem]:
    return [LineItem(line.sku, line.product_id, line.category, line.name, line.paid_minor, line.quantity,
                     line.promotional, line.member_discounted) for line in lines]


def member_message(summary: MemberSummary) -> pb.Member:
    """Field by field by name (engine/summary.py holds the shape), so the two cannot drift; the
    bonus balance is `bonus_value_minor` there, as the contract names it."""
    fields = {name: getattr(summary, name) for name in summary.__struct_fields__ if name not in _NOT_ON_MEMBER}
    fields["bonus_value_minor"] = fields.pop("bonus_value")
    message = pb.Member(**fields)
    message.coupons.extend(coupon_instance(coupon) for coupon in summary.coupons)
    dates = summary.date_attributes
    for name, value in summary.attributes.items():
        if name in dates:
            message.attributes[name].date = str(value)
        elif isinstance(value, str):
            message.attributes[name].text = value
        else:
            message.attributes[name].number = value
    return message


def attributes_from(attributes: dict) -> tuple[dict[str, str | float], frozenset[str]]:
    """Typed attributes as plain values, and the names of those that are dates."""
    values: dict[str, str | float] = {}
    dates = set()
    for name, value in attributes.items():
        kind = value.WhichOneof("value")
        values[name] = getattr(value, kind) if kind else ""
        if kind == "date":
            dates.add(name)
    return values, frozenset(dates)


def ledger_entry(entry: LedgerEntry, tier_names: list[str], labels: WhyLabels | None) -> pb.LedgerEntry:
    summary = summarise_entry(entry, tier_names, labels)
    message = pb.LedgerEntry(**{name: getattr(summary, name) for name in summary.__struct_fields__ if name != "lots"})
    for lot in summary.lots:
        message.lots.add(expires=lot.expires, points=lot.points)
    return message


def anomaly_row(row: AnomalyRow) -> pb.AnomalyRow:
    return pb.AnomalyRow(member_id=row.member_id, day=row.day, points=row.points, transactions=row.transactions)


def coupon_instance(view: CouponView) -> pb.CouponInstance:
    return pb.CouponInstance(code=view.code, coupon_id=view.coupon_id, status=view.status,
                             valid_from=view.valid_from, valid_to=view.valid_to)


def held_coupon_message(held: HeldCoupon) -> pb.HeldCoupon:
    return pb.HeldCoupon(instance=coupon_instance(held.instance), kind=held.kind, value_minor=held.value_minor,
                         percent=held.percent, gift_sku=held.gift_sku, min_charge_minor=held.min_charge_minor,
                         designated=held.designated)


def _quoted_coupon(quoted: QuotedCoupon) -> pb.QuotedCoupon:
    return pb.QuotedCoupon(coupon=held_coupon_message(quoted.coupon), value_minor=quoted.value_minor,
                           reason=quoted.reason)


def quote_message(quote: Quote) -> pb.QuoteResponse:
    """Field by field by name, like the member: the bonus balance is `bonus_value_minor` there."""
    plain = {name: getattr(quote, name) for name in quote.__struct_fields__
             if name not in ("lines", "coupons", "unusable_coupons", "bonus_value")}
    return pb.QuoteResponse(
        **plain, bonus_value_minor=quote.bonus_value,
        lines=[pb.QuotedLine(line=pb.LineItem(**msgspec.structs.asdict(p.line)), price_minor=p.price_minor)
               for p in quote.lines],
        coupons=[_quoted_coupon(c) for c in quote.coupons],
        unusable_coupons=[_quoted_coupon(c) for c in quote.unusable_coupons])
