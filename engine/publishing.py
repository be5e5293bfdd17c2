"""Publishing new rules: what changes for members when the tier or tag rules change (docs/rules.md)."""

from collections.abc import Iterable
from typing import NamedTuple

from engine.book import Book
from engine.bounds import LIMIT
from engine.members import Member
from engine.notices import TIER_CHANGED
from engine.programme import Programme
from engine.refunds import UNKNOWN_ORIGINAL
from engine.rules import Rules
from engine.tagging import counted_purchase
from engine.tier_changes import tier_after_transaction
from engine.tiers import reset_since
from engine.transactions import TxnRecord
from engine.types import ADJUSTMENT, EVENT, PURCHASE, RECHARGE, REFUND

__all__ = [
    "History",
    "activates_tiers",
    "forget_past_spend",
    "forget_stale_history",
    "history_to_rebuild",
    "members_to_revisit",
    "rebuild_history",
    "reevaluate",
    "remap_tiers",
    "reminders_to_replan",
]

COUNTS = frozenset({"purchases"})
REBUILT = frozenset({"spend", "points"}) | COUNTS
"""Per-day sums the transaction index can give again (a purchase's eligible spend, what each
earning transaction gave, the purchases that count for tags); those of growth (a tier may have
reset it since) and recharges start from the publish."""
EARNING = frozenset({PURCHASE, EVENT, ADJUSTMENT, RECHARGE})
"""Records whose points count toward tiers (a recharge's: its bonus points)."""


def members_to_revisit(old: Rules, new: Rules) -> bool:
    """Whether members must be visited again: tiers to re-judge, or tags to re-compute."""
    return old.tiers != new.tiers or old.tier_policy != new.tier_policy or old.tags != new.tags


def reminders_to_replan(old: Rules, new: Rules) -> bool:
    """Whether members' reminder dates move: each member is woken on the date of its next
    reminder, planned under the rules of the day, so a publish that widened `birthday_days_before`
    left the birthday notices of that year unsent, and one that widened `expiring_days` announced
    points already held on the old, shorter notice (a probe)."""
    was, now = old.notify, new.notify
    return (was.expiring_days, was.birthday_days_before) != (now.expiring_days, now.birthday_days_before)


def activates_tiers(old: Rules, new: Rules) -> bool:
    """The first publish with tiers above the lowest: the retailer chooses whether members
    are judged on spend recorded before it."""
    return len(old.tiers) == 1 and len(new.tiers) > 1


def remap_tiers(book: Book, member: Member, old_names: list[str]) -> bool:
    """Tiers are stored by position; keep each member in the tier of the same name in the rules
    now in force (`book.programme`). A member whose tier they no longer have goes to the lowest
    at once, and that move is one ledger entry, as every change of tier is (SPEC §2);
    re-evaluation may then move it on. The lowest tier is the lowest whatever its name: its
    members keep it without an entry. Returns whether anything moved (the caller then rewrites
    the member)."""
    names = book.programme.ladder.names
    left = old_names[member.tier] if 0 <= member.tier < len(old_names) else ""
    next_tier = _position(old_names, names, member.next_tier) if member.next_tier else 0
    if member.tier and left and left not in names:
        member.next_tier = next_tier
        member.given_tier = _position(old_names, names, member.given_tier)
        _leave_removed_tier(book, member, left)
        return True
    tier = _position(old_names, names, member.tier)
    given = _position(old_names, names, member.given_tier)  # a tier removed leaves no floor (0)
    moved = (tier, next_tier, given) != (member.tier, member.next_tier, member.given_tier)
    member.tier, member.next_tier, member.given_tier = tier, next_tier, given
    return moved


def _position(old_names: list[str], names: list[str], index: int) -> int:
    """Where the tier at `index` of the old ladder is in the new one; the lowest when it is gone."""
    name = old_names[index] if 0 <= index < len(old_names) else ""
    return names.index(name) if name in names else 0


def _leave_removed_tier(book: Book, member: Member, left: str) -> None:
    """Down to the lowest tier, as `enter_tier` enters it (permanent, `since` sums afresh), with
    the tier left recorded by name: no position of the new ladder names it, and the entry records
    the new version (the publish made the move)."""
    day, ref, note = book.today, f"v{book.programme.version}", "rules published: the tier was removed"
    member.tier, member.tier_since, member.tier_until = 0, day, 0  # the lowest tier is permanent (tiers.py)
    reset_since(member)
    book.write(member, day, "rules", ref, "tier", tier_from=-1, tier_to=0, tier_from_name=left, note=note)
    book.notify(TIER_CHANGED, member.member_id, day, from_tier=left, to_tier=book.programme.ladder.names[0],
                direction="down", valid_until="", cause="rules", ref=ref, note=note)


def forget_past_spend(member: Member) -> None:
    member.total_spend = 0
    member.windows.pop("spend", None)
    member.singles = ()
    reset_since(member)


class History(NamedTuple):
    """What a publish makes again from the transaction index (`history_to_rebuild`)."""

    metrics: frozenset[str]
    """Windowed metrics the new ladder judges on days the old one did not keep."""
    kept: frozenset[str]
    """Of them, those the old one windowed over fewer days: a member keeps its days of them."""
    singles: tuple[int, int] | None
    """(from, below): single purchases the new ladder judges and the old one did not remember
    (below the old smallest threshold), or None."""
    purchases: bool = False
    """Lifetime purchase counts (Member.purchases) to make again: the old rules counted none."""
    fresh: frozenset[str] = frozenset()
    """Windowed metrics the old ladder did not keep and that start from the publish (not made again)."""

    @property
    def rebuilds(self) -> bool:
        """Whether the transaction index must be read."""
        return bool(self.metrics) or self.singles is not None or self.purchases


def history_to_rebuild(old: Programme, new: Programme, past_spend: bool = True) -> History:
    """Without this, a publish adding a tier on 3 months' spend judged members on what they spent
    after it, and one lowering a `single_purchase` threshold ignored the orders already made between
    the two (an outside probe). `past_spend` False: a first publish with tiers told not to count past
    spend (`forget_past_spend`): only purchase counts, which tags keep, are made again."""
    was, ladder = old.ladder, new.ladder
    wanted = ladder.window_metrics & (REBUILT if past_spend else COUNTS)
    longer = ladder.keep_days > was.keep_days
    metrics = wanted if longer else wanted - was.window_metrics
    least, below = ladder.single_minimum, was.single_minimum
    singles = None if not past_spend or least is None or (below is not None and least >= below) else (
        least, LIMIT + 1 if below is None else below)
    purchases = new.tags.counts_purchases and not old.tags.counts_purchases
    fresh = ladder.window_metrics - was.window_metrics - metrics
    return History(metrics, wanted & was.window_metrics if longer else frozenset(), singles, purchases, fresh)


def forget_stale_history(member: Member, history: History) -> bool:
    """Drop what `history` makes again from scratch. The sums of a metric no version in force since
    kept are left as they were when the last one that did was replaced: made again on top of them,
    a member who spent 300.00 reached a tier of 500.00 at a publish that brought its window back, and
    one purchase-count tag came back for the members who bought under an earlier version only (an
    outside probe); those that start from the publish (growth, recharges) counted the older
    version's days too (a review). Returns whether anything was dropped."""
    dropped = False
    for metric in (history.metrics - history.kept) | history.fresh:
        dropped = member.windows.pop(metric, None) is not None or dropped
    if history.purchases and member.purchases:
        member.purchases, dropped = 0, True
    return dropped


def rebuild_history(book: Book, records: Iterable[tuple[str, TxnRecord]], history: History) -> None:
    """One pass over the transaction index (as far back as it remembers: `index_retention_days`,
    or `max_lateness_days` + 1 when more), for the members in `book`: per-day sums of
    `history.metrics` on each transaction's day (of the `kept` metrics only days before the oldest
    a member holds: the old ladder pruned those, and the index may no longer have the recent
    ones'), and the single purchases in `history.singles`, net of their refunds (the old ladder
    never kept them, so none was used for a tier)."""
    ladder = book.programme.ladder
    before: dict[tuple[str, str], float] = {}
    for txn_id, record in records:
        member = book.members.get(record.member_id)
        if member is None:
            continue
        for metric, amount in _amounts(record, history.metrics):
            key = (record.member_id, metric)
            if key not in before:
                days = member.windows.get(metric) if metric in history.kept else None
                before[key] = min(days) if days else float("inf")
            if amount and record.day < before[key]:
                ladder.record(member, metric, record.day, amount)
                book.dirty[member.member_id] = member
        if history.purchases and counted_purchase(record):
            member.purchases += 1
            book.dirty[member.member_id] = member
        if history.singles is not None and _single_between(member, txn_id, record, history.singles):
            ladder.record_single(member, record.day, record.eligible_minor - record.reversed_eligible, txn_id)
            book.dirty[member.member_id] = member


def _single_between(member: Member, txn_id: str, record: TxnRecord, bounds: tuple[int, int]) -> bool:
    least, below = bounds
    return (record.kind == PURCHASE and least <= record.eligible_minor - record.reversed_eligible < below
            and not any(single[2] == txn_id for single in member.singles))


def _amounts(record: TxnRecord, metrics: frozenset[str]) -> list[tuple[str, int]]:
    """What `record`'s transaction added to each of `metrics` on its day, net of refunds."""
    if record.kind == REFUND:  # a refund of a known original is in the original's reversed amounts
        if record.reason != UNKNOWN_ORIGINAL:
            return []
        # its spend kept since this was written (older records: 0, their spend stays counted)
        return [(m, record.points if m == "points" else record.eligible_minor) for m in ("points", "spend")
                if m in metrics]
    if record.kind not in EARNING:
        return []
    amounts = [("points", record.points - record.reversed_points)] if "points" in metrics else []
    if record.kind == PURCHASE and "spend" in metrics:
        amounts.append(("spend", record.eligible_minor - record.reversed_eligible))
    if "purchases" in metrics and counted_purchase(record):
        amounts.append(("purchases", 1))
    return amounts


def reevaluate(book: Book, member: Member, version: int) -> None:
    """Match the member under the new rules, as of its business day, and move it up as a
    transaction would: at once, or at the next midnight run for a `next_day` tier and under the
    `batch` policy (an outside probe: a publish put members in them at once); its tags are computed
    again at that run. Never down: a tier holds until its validity ends (or, `realtime`, a
    transaction lowers what it was reached on), and members put in a tier by a recharge bonus, a
    paid upgrade or an operator do not meet its condition at all (moving down, a publish that
    changed one discount demoted them)."""
    retag = book.programme.tags.rules or member.tags
    if retag:
        member.tag_check = book.today + 1
    waiting = member.next_tier
    if not book.programme.ladder.batch:  # under batch, the run judges every member it visits
        tier_after_transaction(book, member, book.today_for(member), f"v{version}", cause="rules")
    if retag or book.programme.ladder.batch or member.next_tier != waiting:
        _visit_next_run(book, member)


def _visit_next_run(book: Book, member: Member) -> None:
    """Changed as a transaction changes it: the run judges a touched member's upgrades, and a
    shard's wake-up index (a bounded hot set, a restart) keeps a touched one (a reviewer: a quiet
    member was visited and left as it was)."""
    member.touched = True
    book.awake.add(member.member_id)
    book.wake_on(book.today + 1, member.member_id)
    book.dirty[member.member_id] = member
