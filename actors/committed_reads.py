"""Reads that never wait for the writer: a quote, a member's card and coupons, answered from the
shard's last commit while batches are scored and committed on the writer's thread (the shard
actor runs them in a concurrency group of their own, actors/shard_actor.py).

They do not read the members in memory: scoring changes those before the commit, and a failed
commit puts them back, so a read beside the writer could see half a batch. One LMDB read
transaction is a snapshot of the last commit: the member (with its anomaly counters and coupons),
the rules in force and the business day, all of a commit or none of it. A quote does not look at
the programme's coupon inventory, so nothing in it is counted elsewhere. It predicts: nothing it
reads is held for the purchase that follows."""

import threading
import time

from engine.book import Book
from engine.errors import UnknownMemberError
from engine.members import Member
from engine.programme import Programme
from engine.rules import Rules
from engine.spending.member_coupons import HeldCoupon, member_coupons
from engine.spending.quote import Quote, quote
from engine.summary import MemberSummary, summarise
from engine.transactions import LineItem
from engine.types import Day
from engine.validation import load_rules
from storage.shard_store import ShardStore

__all__ = ["CommittedReads"]


class CommittedReads:
    """Programmes are kept by their rules document: the one a snapshot names is used with it, so
    a read during a publish sees the members and the rules of the same commit. They are the reads'
    own, not the writer's: a quote may run a member's midnight (on a copy), which reads and fills
    the ladder's window sums, kept per member id, on this thread beside the writer's."""

    def __init__(self, store: ShardStore, rules_text: str, rules: Rules) -> None:
        self.store = store
        self._programmes = {rules_text: Programme(rules)}
        self._lock = threading.Lock()

    def know(self, rules_text: str, rules: Rules) -> Programme:
        """A rules document about to be committed (a publish), parsed as `rules`, its programme kept
        with the one in force: a read meanwhile may see either."""
        programme = Programme(rules)
        with self._lock:
            newest = list(self._programmes.items())[-1:]
            self._programmes = dict([*newest, (rules_text, programme)])
        return programme

    def _state(self, member_id: str) -> tuple[Programme, Member | None, Day]:
        member, rules_text, today = self.store.committed(member_id)
        programme = self._programmes.get(rules_text)
        if programme is None:  # committed by a process before this one's last restart: rare
            programme = self.know(rules_text, load_rules(rules_text))
        return programme, member, today

    def quote(self, member_id: str, lines: list[LineItem], at_ms: int = 0) -> Quote:
        """Read-only: what the basket would cost and earn bought at `at_ms` (0: now, on the business day)."""
        programme, member, today = self._state(member_id)
        at_ms = at_ms or programme.calendar.within(today, int(time.time() * 1000))
        book = Book(programme, {member_id: member} if member is not None else {}, today=today)
        return quote(book, member_id, lines, at_ms)

    def coupons(self, member_id: str, status: str = "") -> list[HeldCoupon]:
        programme, member, _ = self._state(member_id)
        if member is None:
            raise UnknownMemberError(member_id)
        return member_coupons(programme, member, status)

    def member(self, member_id: str) -> MemberSummary | None:
        programme, member, _ = self._state(member_id)
        return summarise(programme, member) if member is not None else None
