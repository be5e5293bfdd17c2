"""`patron member show`: a member and its ledger for people (a card and a table) and for
machines (`--json`: the same JSON replay writes, engine/summary.py's shape)."""

from collections.abc import Collection, Iterable
from typing import Any

from engine.summary import CouponView, EntrySummary, LotChange, MemberSummary, to_json
from proto import patron_pb2 as pb

__all__ = ["aligned", "entry_summary", "ledger_table", "member_card", "member_json", "member_summary", "money"]


def member_summary(message: pb.Member) -> MemberSummary:
    """Every field of the message, by name: a field patron.proto has and the summary lacks fails here."""
    fields = {field.name: _plain(message, field) for field in message.DESCRIPTOR.fields}
    fields["attributes"] = {name: getattr(value, value.WhichOneof("value") or "text")
                            for name, value in message.attributes.items()}
    fields["date_attributes"] = sorted(name for name, value in message.attributes.items()
                                       if value.WhichOneof("value") == "date")
    fields["bonus_value"] = fields.pop("bonus_value_minor")
    fields["coupons"] = [CouponView(c.code, c.coupon_id, c.status, c.valid_from, c.valid_to) for c in message.coupons]
    return MemberSummary(**fields)


def entry_summary(message: pb.LedgerEntry) -> EntrySummary:
    fields = {field.name: _plain(message, field) for field in message.DESCRIPTOR.fields}
    fields["lots"] = [LotChange(lot.expires, lot.points) for lot in message.lots]
    return EntrySummary(**fields)


def _plain(message: Any, field: Any) -> Any:
    value = getattr(message, field.name)
    return list(value) if field.is_repeated and not field.message_type else value


def member_json(member: MemberSummary, ledger: list[EntrySummary] | None = None) -> str:
    """The member; with its ledger, {"member": ..., "ledger": [...]}."""
    document = member if ledger is None else {"member": member, "ledger": ledger}
    return to_json(document).decode()


def member_card(member: MemberSummary) -> str:
    tier = member.tier + (f" (until {member.tier_valid_until})" if member.tier_valid_until else "")
    rows = [("member", member.member_id), ("tier", tier),
            ("points", f"{member.points:,}" + _pending(member)),
            ("growth", f"{member.growth:,}"),
            ("status", member.status + (", abnormal: earning is checked" if member.abnormal else "")),
            ("stored value", _stored_value(member)),
            ("enrolled", " ".join(filter(None, (member.enrolled_on, member.channel and f"via {member.channel}")))),
            ("birthday", member.birthday),
            ("source", member.source), ("content", member.content), ("campaign", member.campaign),
            ("tags", ", ".join(member.tags)),
            *((name, str(value)) for name, value in sorted(member.attributes.items()))]
    return "\n".join(f"{label:<13} {value}" for label, value in rows if value)


def ledger_table(entries: Iterable[EntrySummary]) -> str:
    """One row per entry: when, what it did, and why."""
    header = ("#", "day", "what", "points", "pending", "growth", "tier", "why")
    rows = [header] + [(str(e.seq), e.day, e.kind, _signed(e.points), _signed(e.pending_points),
                        _signed(e.growth), f"{e.tier_from or 'none'} -> {e.tier_to}" if e.tier_to else "", _why(e))
                       for e in entries]
    if len(rows) == 1:
        return "no ledger entries"
    return aligned(rows, numeric={0, 3, 4, 5})


def aligned(rows: list[tuple[str, ...]], numeric: Collection[int] = ()) -> str:
    """Rows as columns: numeric columns to the right, the others to the left."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(cell.rjust(width) if column in numeric else cell.ljust(width)
                               for column, (cell, width) in enumerate(zip(row, widths, strict=True))).rstrip()
                     for row in rows)


_CAUSES = {"txn": "transaction {ref}", "midnight": "midnight run of {ref}", "operator": "operator {ref}",
           "rules": "rules {ref}"}


def _why(entry: EntrySummary) -> str:
    why = _CAUSES.get(entry.cause, entry.cause + " {ref}").format(ref=entry.ref)
    details = [f"refund of {entry.refund_of}" if entry.refund_of else "", entry.why,
               f"status {entry.status}" if entry.status else "",
               _unrecovered(entry.unrecovered),
               f"stored value {money(entry.stored_value, signed=True)}" if entry.stored_value else "",
               f"bonus {money(entry.bonus_value, signed=True)}" if entry.bonus_value else "",  # left out (a probe)
               f"coupon {entry.coupon_code}" if entry.coupon_code else "",  # in --json only (a probe)
               entry.note if entry.note and entry.note != entry.ref else ""]
    version = f" (rules v{entry.rule_version})" if entry.cause != "rules" else ""
    return "; ".join([why, *filter(None, details)]) + version


def _unrecovered(points: int) -> str:
    """A refund's points it could not take back, or (negative) those a redeem's refund repaid."""
    if points > 0:
        return f"{points:,} points not recovered"
    return f"{-points:,} points not recovered before, repaid" if points else ""


def _pending(member: MemberSummary) -> str:
    if not member.pending_points:
        return ""
    held = f", {member.held_points:,} of them held for an operator" if member.held_points else ""
    return f" (and {member.pending_points:,} pending{held})"


def _stored_value(member: MemberSummary) -> str:
    """What the member can spend, as a quote says it, then its parts: the principal alone read as the
    balance, and an operator told a customer 47.57 of the 60.00 they have (an outside probe)."""
    if not member.bonus_value:
        return money(member.stored_value)
    paid_in = money(member.stored_value) or "0.00"
    return f"{money(member.stored_value + member.bonus_value)} ({paid_in} paid in, {money(member.bonus_value)} bonus)"


def _signed(number: int) -> str:
    return f"{number:+,}" if number else ""


def money(minor: int, signed: bool = False) -> str:
    if not minor:
        return ""
    sign = ("+" if minor > 0 else "-") if signed else ("-" if minor < 0 else "")
    return f"{sign}{abs(minor) // 100:,}.{abs(minor) % 100:02d}"
