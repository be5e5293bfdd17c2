"""Between protobuf messages and engine records: enums to words and back, done once at the gateway."""

from engine.calendar import iso
from engine.ledger import LedgerEntry
from engine.midnight import AnomalyRow
from engine.summary import MemberSummary
from engine.transactions import LineItem, Transaction, TxnResult
from proto import patron_pb2 as pb

__all__ = ["ack", "anomaly_row", "attributes_from", "ledger_entry", "member_message", "transactions_from"]

_KINDS = {pb.KIND_PURCHASE: "purchase", pb.KIND_REFUND: "refund", pb.KIND_EVENT: "event",
          pb.KIND_RECHARGE: "recharge", pb.KIND_ADJUSTMENT: "adjustment"}
_STATUSES = {pb.STATUS_UNSPECIFIED: "", pb.STATUS_PAID: "paid", pb.STATUS_PENDING: "pending",
             pb.STATUS_CANCELLED: "cancelled"}
_OUTCOMES = {"accepted": pb.OUTCOME_ACCEPTED, "duplicate": pb.OUTCOME_DUPLICATE, "ignored": pb.OUTCOME_IGNORED,
             "rejected": pb.OUTCOME_REJECTED}


def transactions_from(message: pb.Transaction) -> Transaction:
    """An unknown or unspecified enum becomes a word the engine rejects with a reason."""
    return Transaction(
        message.txn_id, message.member_id, message.occurred_at_ms, _KINDS.get(message.kind, "unspecified"),
        _STATUSES.get(message.status, "unknown"), message.store_id, message.channel,
        [LineItem(line.sku, line.product_id, line.category, line.name, line.paid_minor, line.quantity,
                  line.promotional, line.member_discounted) for line in message.lines],
        message.refund_of, message.event_type, message.amount_minor, message.note)


def ack(batch_id: str, results: list[TxnResult]) -> pb.BatchAck:
    message = pb.BatchAck(batch_id=batch_id)
    add = message.results.add
    for result in results:
        add(txn_id=result.txn_id, outcome=_OUTCOMES[result.outcome], points=result.points,
            growth=result.growth, reason=result.reason)
    return message


def member_message(summary: MemberSummary) -> pb.Member:
    message = pb.Member(
        member_id=summary.member_id, tier=summary.tier, points=summary.points, growth=summary.growth,
        status=summary.status, abnormal=summary.abnormal, tier_valid_until=summary.tier_valid_until,
        pending_points=summary.pending, stored_value_minor=summary.stored_value, birthday=summary.birthday,
        enrolled_on=summary.enrolled_on, source=summary.source, content=summary.content,
        campaign=summary.campaign, channel=summary.channel, tags=summary.tags)
    for name, value in summary.attributes.items():
        if isinstance(value, str):
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


def ledger_entry(entry: LedgerEntry, tier_names: list[str]) -> pb.LedgerEntry:
    def tier(index: int) -> str:
        return tier_names[index] if 0 <= index < len(tier_names) else ""

    return pb.LedgerEntry(
        member_id=entry.member_id, seq=entry.seq, day=iso(entry.day), cause=entry.cause, ref=entry.ref,
        rule_version=entry.rule_version, kind=entry.kind, points=entry.points, pending_points=entry.pending,
        growth=entry.growth, stored_value_minor=entry.stored_value, tier_from=tier(entry.tier_from),
        tier_to=tier(entry.tier_to), status=entry.status, unrecovered=entry.unrecovered, note=entry.note)


def anomaly_row(row: AnomalyRow) -> pb.AnomalyRow:
    return pb.AnomalyRow(member_id=row.member_id, day=row.day, points=row.points, transactions=row.transactions)
