"""A member and a ledger entry as the outside sees them: one shape, with tier names and ISO
dates, for replay's files, GetMember and ListLedger, and `patron member show --json`.

The field names are those of the gRPC `Member` and `LedgerEntry` messages: the gateway builds
the messages from these records by name, so a field added here and to patron.proto (with the
same name) reaches replay, gRPC and the CLI at once. Empty fields are left out of the JSON."""

from msgspec import Struct, json

from engine.calendar import iso
from engine.ledger import LedgerEntry
from engine.members import CouponInstance, Member
from engine.programme import Programme
from engine.types import NEVER
from engine.why import WhyLabels, why_text

__all__ = ["CouponView", "EntrySummary", "LotChange", "MemberSummary", "coupon_view", "summarise", "summarise_entry",
           "to_json"]


class CouponView(Struct):
    """A coupon instance as the outside sees it: days as ISO dates."""

    code: str
    coupon_id: str
    status: str
    valid_from: str
    valid_to: str


def coupon_view(instance: CouponInstance) -> CouponView:
    return CouponView(instance.code, instance.coupon_id, instance.status, iso(instance.valid_from),
                      iso(instance.valid_to))


class LotChange(Struct):
    expires: str
    """ISO date at whose 00:00 the lot expires, or "never"."""
    points: int


class MemberSummary(Struct, omit_defaults=True):
    """Money in minor units (cents); dates are ISO dates. The spending figures are always there:
    stored value is `stored_value` (principal) plus `bonus_value`."""

    member_id: str
    tier: str
    points: int
    growth: int
    abnormal: bool
    status: str
    available_points: int
    """What may be spent now: the spendable balance, or 0 while it is a debt."""
    bonus_value: int
    tags: list[str]
    """Computed and manual tags together, sorted."""
    coupons: list[CouponView]
    """The member's coupon instances, sorted by code."""
    pending_points: int = 0
    """Earned, not yet spendable (a return window, or held by the anomaly check)."""
    stored_value: int = 0
    tier_valid_until: str = ""
    """ISO date of the tier's last valid day; empty when permanent."""
    enrolled_on: str = ""
    birthday: str = ""
    source: str = ""
    content: str = ""
    campaign: str = ""
    channel: str = ""
    attributes: dict[str, str | int | float] = {}
    date_attributes: list[str] = []
    """Which of `attributes` were sent as dates (YYYY-MM-DD text)."""
    held_points: int = 0
    """Of `pending_points`, those the anomaly check holds until an operator releases or voids them;
    the rest wait out a return window and are released by a midnight run (a card showing one
    figure for both left an operator unable to tell a customer which: an outside probe)."""


class EntrySummary(Struct, omit_defaults=True):
    """A ledger entry: what changed (`kind`), by how much, and why (`cause`, `ref`, `note`)."""

    member_id: str
    seq: int
    day: str
    cause: str
    ref: str
    rule_version: int
    kind: str
    points: int = 0
    pending_points: int = 0
    growth: int = 0
    stored_value: int = 0
    tier_from: str = ""
    """Tier names; empty when the entry did not change the tier (or the member had none)."""
    tier_to: str = ""
    status: str = ""
    unrecovered: int = 0
    """Points a refund could not take back because the balance may not go negative; negative on
    the entry of a redeem's refund that repaid them."""
    note: str = ""
    why: str = ""
    """What made a purchase's or an event's points (engine/why.py)."""
    bonus_value: int = 0
    """Change of the bonus part of stored value (`stored_value` is the principal's)."""
    coupon_code: str = ""
    lots: list[LotChange] = []
    """Points a redeem took from lots (or its refund put back)."""
    refund_of: str = ""
    """On a refund's entries, the transaction it refunds (`ref` is the refund's own id)."""


def summarise(programme: Programme, member: Member) -> MemberSummary:
    names = programme.ladder.names
    tier = names[member.tier] if member.tier < len(names) else names[-1]
    until = iso(member.tier_until) if member.tier_until else ""
    profile = member.profile
    coupons = [coupon_view(c) for c in sorted(member.coupons, key=lambda c: c.code)]
    return MemberSummary(member.member_id, tier, member.points, member.growth, member.abnormal,
                         member.status, max(member.points, 0), member.bonus_value,
                         sorted(set(member.tags) | set(member.manual_tags)), coupons, member.pending,
                         member.stored_value, until, iso(member.enrolled), profile.birthday, profile.source,
                         profile.content, profile.campaign, profile.channel, profile.attributes, list(profile.dates),
                         held_points=sum(held.amount for held in member.held if not held.release))


def summarise_entry(entry: LedgerEntry, tier_names: list[str], labels: WhyLabels | None) -> EntrySummary:
    """`tier_names` and `labels` are those of the entry's own rules version (`rule_version`): an
    entry's tiers are positions in that version's ladder, and later versions may have removed or
    reordered tiers. Empty names (a version no longer kept) show no tiers rather than another
    version's; None labels, no why."""

    def tier(index: int) -> str:
        return tier_names[index] if 0 <= index < len(tier_names) else ""

    lots = [LotChange(iso(expires) if expires < NEVER else "never", amount) for expires, amount in entry.lots]
    tier_from = entry.tier_from_name or tier(entry.tier_from)  # a tier its version no longer has: by name
    return EntrySummary(entry.member_id, entry.seq, iso(entry.day), entry.cause, entry.ref, entry.rule_version,
                        entry.kind, entry.points, entry.pending, entry.growth, entry.stored_value,
                        tier_from, tier(entry.tier_to), entry.status, entry.unrecovered, entry.note,
                        why_text(entry.why, labels), entry.bonus_value, entry.coupon_code, lots, entry.refund_of)


to_json = json.Encoder().encode
"""The JSON of a summary (or a list of them); `to_json(...).decode()` for text."""
