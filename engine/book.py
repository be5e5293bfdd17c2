"""One shard's book: its members, its transaction index, the business day, and the ledger it writes."""

from collections.abc import MutableMapping
from typing import Protocol

from engine.history import History, RecentHistory
from engine.ledger import LedgerEntry
from engine.members import Member
from engine.notices import Notice, encode_detail
from engine.programme import Programme
from engine.spending.coupon_stock import CountedStock, CouponStock
from engine.transactions import TxnRecord
from engine.types import Day, MemberId, TxnId
from engine.why import Why

__all__ = ["Book", "TxnIndex", "TxnKey", "found"]


TxnKey = tuple[MemberId, TxnId]
"""A transaction id is an idempotency key within its member (SPEC §2): the index is keyed by both."""


class TxnIndex(Protocol):
    """The transaction index as the engine uses it: a dict, or storage's batch writer."""

    def get(self, key: TxnKey, default: TxnRecord | None = None, /) -> TxnRecord | None: ...

    def __setitem__(self, key: TxnKey, record: TxnRecord, /) -> None: ...


class Book:
    """The engine reads and writes members and index records through the two mappings, so a
    caller may back them with plain dicts (replay, tests) or with storage (a shard).
    Contract: after scoring, `dirty` holds every member that changed and `ledger` every
    entry written, in order (none when the caller asked for none: `keep_outputs`); the caller
    persists both and then clears them."""

    def __init__(self, programme: Programme, members: MutableMapping[MemberId, Member] | None = None,
                 txns: TxnIndex | None = None, today: Day = 0, history: History | None = None,
                 stock: CouponStock | None = None, keep_outputs: bool = True) -> None:
        self.programme = programme
        self.members: MutableMapping[MemberId, Member] = {} if members is None else members
        self.txns: TxnIndex = {} if txns is None else txns
        self.today = today
        """The business day: the date of the last midnight run. 0 until the first transaction."""
        self.ledger: list[LedgerEntry] = []
        self.dirty: dict[MemberId, Member] = {}
        self.history: History = RecentHistory() if history is None else history
        """The day's transactions per member, for the anomaly report."""
        self.awake: set[MemberId] = set()
        """Members changed since the last midnight run: the next run visits them."""
        self.wakeups: dict[Day, set[MemberId]] = {}
        """Members the run of a later date must visit (an expiry, a release, a validity end)."""
        self.tag_counts: dict[str, int] = {}
        """Members per tag, computed and manual alike; kept up to date as tags change."""
        for member in self.members.values():
            if member.tags or member.manual_tags:
                self.count_tags([], member.tags + member.manual_tags)
        self.notices: list[Notice] = []
        """Events for notifiers, in order: the caller commits them with the ledger, then clears them."""
        self.stock: CouponStock = CountedStock() if stock is None else stock
        """Coupon inventory: one unit is taken before each instance is issued."""
        self.keep_outputs = keep_outputs
        """Whether the ledger entries and notices written are kept for the caller (`take_changes`,
        `take_notices`). A replay that writes neither keeps none, and does not make them: about a
        ledger entry a transaction and a notice an enrollment, 3% of its instructions. Every change
        is counted in `ledger_seq` and marks its member dirty all the same."""

    def write(self, member: Member, day: Day, cause: str, ref: str, kind: str, *, points: int = 0,
              pending: int = 0, growth: int = 0, stored_value: int = 0, tier_from: int = -1,
              tier_to: int = -1, status: str = "", unrecovered: int = 0, note: str = "", why: Why | str = "",
              bonus_value: int = 0, coupon_code: str = "", lots: tuple[tuple[int, int], ...] = (),
              tier_from_name: str = "") -> None:
        """Record one change to a member in the ledger; the member must already show it."""
        member.ledger_seq += 1
        if self.keep_outputs:
            self.ledger.append(LedgerEntry(
                member.member_id, member.ledger_seq, day, cause, ref, self.programme.version, kind,
                points, pending, growth, stored_value, tier_from, tier_to, status, unrecovered, note, why,
                bonus_value, coupon_code, lots, tier_from_name))
        self.dirty[member.member_id] = member

    def write_earned(self, member: Member, day: Day, ref: TxnId, kind: str, points: int, pending: int, growth: int,
                     why: Why | str) -> None:
        """`write` of what a transaction gave (`give`: every purchase and event), with nothing
        but positional arguments, so that compiled it is a C call (a method with keyword-only
        arguments cannot be one)."""
        member.ledger_seq += 1
        if self.keep_outputs:
            self.ledger.append(LedgerEntry(member.member_id, member.ledger_seq, day, "txn", ref,
                                           self.programme.version, kind, points, pending, growth, why=why))
        self.dirty[member.member_id] = member

    def write_coupon(self, member: Member, day: Day, cause: str, ref: str, kind: str, coupon_code: str) -> None:
        """`write` of a coupon instance's entry (issued, used, restored, void, expired), positional
        only as `write_earned`: compiled, a C call (an enrollment's welcome coupon writes one)."""
        member.ledger_seq += 1
        if self.keep_outputs:
            self.ledger.append(LedgerEntry(member.member_id, member.ledger_seq, day, cause, ref,
                                           self.programme.version, kind, coupon_code=coupon_code))
        self.dirty[member.member_id] = member

    def today_for(self, member: Member) -> Day:
        """The business day as `member` lives it. A shard brings one member through the next
        midnight ahead of the rest when a transaction dated after it arrives (actors/shard.py,
        `_dated_tomorrow`): from then on that member is on the new date, as replay's whole book
        is, and a tier it enters counts its validity from there."""
        return max(self.today, member.midnight_done)

    def as_of(self, member: Member, day: Day) -> Day:
        """The day a change to `member` on `day` counts from: a late one from the member's
        business day (`today_for`), where a tier entered then starts its validity."""
        return max(day, self.today, member.midnight_done)

    def count_tags(self, old: list[str], new: list[str]) -> None:
        """Move one member's place in the members-per-tag counts from its old tags to its new."""
        counts = self.tag_counts
        for tag in set(old) - set(new):
            counts[tag] -= 1
            if not counts[tag]:
                del counts[tag]
        for tag in set(new) - set(old):
            counts[tag] = counts.get(tag, 0) + 1

    def notify(self, kind: str, member_id: MemberId, day: Day, **detail: object) -> None:
        """Emit an event for notifiers (engine.notices), committed with this change or not at all."""
        self.notify_detail(kind, member_id, day, detail)

    def notify_detail(self, kind: str, member_id: MemberId, day: Day, detail: dict[str, object]) -> None:
        """`notify` with the detail made by the caller (a midnight run's reminders: no keywords to gather)."""
        if self.keep_outputs:
            self.notices.append(Notice(kind, member_id, day, encode_detail(detail)))

    def take_notices(self) -> list[Notice]:
        notices, self.notices = self.notices, []
        return notices

    def wake_on(self, day: Day, member_id: MemberId) -> None:
        self.wakeups.setdefault(day, set()).add(member_id)

    def take_changes(self) -> tuple[list[LedgerEntry], dict[MemberId, Member]]:
        ledger, dirty = self.ledger, self.dirty
        self.ledger, self.dirty = [], {}
        return ledger, dirty


def found(mapping: MutableMapping | TxnIndex, key: object) -> object:
    """`mapping.get(key)`, for the book's members and index. They are protocols (a shard's are
    storage's), so compiled, `book.txns.get(key)` is a method called by name, about 100
    instructions more than a dict's lookup in C, which a dict (replay's, the tests') gets here."""
    if type(mapping) is dict:
        table = mapping  # a dict, as book.pxd types it
        return table.get(key)
    return mapping.get(key)
