"""One shard's logic, without Ray: hot members in memory, LMDB underneath, whole batches
scored and committed at once. The Ray actor (shard_actor.py) only wraps this class.

Contracts: nothing is answered before it is committed; if scoring or the commit fails,
the members the call touched are reloaded from LMDB, so memory never runs ahead of disk.
A restart rebuilds the same hot state (members, anomaly counters, midnight wake-ups).
Long jobs (the midnight run, re-evaluation after a publish) go in chunks, each its own
commit, so batches interleave with them; a crash mid-job resumes where it stopped."""

import logging
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Collection, Container, Iterable
from itertools import accumulate
from operator import attrgetter
from pathlib import Path
from typing import TypeVar

import msgspec

from actors.batch_order import StreamOrder
from actors.batch_stats import BatchStats, Counted, count_batch, count_ledger, kinds_and_coupons, rejected_and_twins
from actors.batch_wire import COMPILED
from actors.committed_reads import CommittedReads
from actors.coupon_grants import GrantSource
from actors.grouping import apply_group
from actors.hot_members import HotMembers
from actors.member_index import TOTALS_KEY, MemberTotals, wakeups_of
from actors.opening_wire import ImportAnswer, Rejection, openings_of
from actors.routing import MovedAway
from actors.shard_coupons import ShardCoupons
from actors.shard_outbox import ShardOutbox
from engine.anomaly_report import AnomalyRow
from engine.book import Book, found
from engine.calendar import iso
from engine.errors import InvalidRequestError, RowRejectedError, ShardUnavailableError, StorageFullError
from engine.ledger import LedgerEntry
from engine.members import Member
from engine.midnight import periodic_due, schedule, visit, visitors
from engine.notices import Notice
from engine.opening import IMPORT_CAUSE, OPENING, open_member, opened_as
from engine.operators import Enrollment, enroll, set_status, set_tier
from engine.programme import Programme
from engine.publishing import (
    activates_tiers,
    forget_past_spend,
    forget_stale_history,
    history_to_rebuild,
    members_to_revisit,
    rebuild_history,
    reevaluate,
    remap_tiers,
    reminders_to_replan,
)
from engine.scoring import malformed_reason, score_transaction, score_until, score_well_formed
from engine.spending.coupon_stock import CountedStock
from engine.summary import MemberSummary, summarise
from engine.tagging import set_manual_tags
from engine.transactions import Transaction, TxnResult
from engine.types import ADJUSTMENT, NEVER, Day
from engine.validation import load_rules
from storage.codecs import Rejected
from storage.index_history import IndexHistory
from storage.mapped_pages import BUDGET_BYTES
from storage.shard_store import BatchWriter, ShardStore

__all__ = ["Job", "ScoringLoopError", "Shard", "ShardConfig", "ShardStatus"]

log = logging.getLogger("patron.shard")
T = TypeVar("T")


class _TransactionFailedError(Exception):
    """The engine raised on the transaction at `index` of a batch being scored."""

    def __init__(self, index: int, txn_id: str) -> None:
        self.index, self.txn_id = index, txn_id
        super().__init__(f"transaction {index} of the batch failed")


class ScoringLoopError(RuntimeError):
    """A shard's scoring failed again at a transaction it had rejected already: its own defect,
    which no transaction's rejection ends; the batch is not applied (the engine's error is the
    cause)."""


class _Batch:
    """A write's transactions, and what is read of them once they are scored: a batch made anew
    by `again` lets each transaction go as it is scored (the `release` of engine/scoring.py
    `score_until`), and a write scored again (after a failure, or when the store grew) takes the
    transactions `again` makes."""

    def __init__(self, txns: list[Transaction], again: Callable[[], list[Transaction]] | None) -> None:
        self.member_ids = [txn.member_id for txn in txns]
        self.kinds, self.coupon_ids = kinds_and_coupons(txns)
        self.release = again is not None
        self._first: list[Transaction] | None = txns
        self._again: Callable[[], list[Transaction]] = again if again is not None else lambda: txns

    def take(self) -> list[Transaction]:
        """The transactions to score: those given, the first time (from then on held only by the
        caller's scoring); after that, those `again` makes (given none, those given, never let go)."""
        txns, self._first = self._first, None
        return txns if txns is not None else self._again()


class ShardConfig(msgspec.Struct, frozen=True):
    shard: int
    path: str
    rules_text: str
    durability: str = "strict"
    start_day: Day = 0
    """The business day a new shard starts on (the coordinator's local today or --start-date)."""
    index_retention_days: int = 400
    """How long the transaction index remembers ids (duplicates and refunds of originals)."""
    map_bytes: int = 1 << 30
    max_map_bytes: int = 1 << 40
    coupon_block: int = 64
    """The smallest block of a limited coupon's inventory this shard asks the keeper for."""
    keeper: str = ""
    """The Ray name of the programme's coupon grant keeper (actors/coupon_grants.py); empty:
    none, the whole inventory is this shard's (one shard driven alone)."""
    hot_members: int = 0
    """Members this shard keeps in memory between writes (0: all); the rest are read from LMDB
    when needed (actors/hot_members.py)."""
    mapped_budget: int = BUDGET_BYTES
    """File-backed resident bytes above which the store drops LMDB's mapped pages (0: never)."""
    expect_data: bool = False
    """The shard opened its LMDB before (Layout.opened): missing data is an error, not a new shard."""
    event_floor: int = 0
    """Its events number past this at least: what `patron restore` recorded for the shard of its
    number (Coordinator.event_floors), so that one added again after a restore to fewer shards
    does not number its events as the lost one did, under positions subscribers hold."""
    midnight_part: int = 100
    """Members a midnight step visits and writes out at a time within its one commit (a step is
    the coordinator's `job_chunk`, 15,000): what a part holds is still in the CPU's caches when
    it is written, and a bounded hot set lets the members it read go before the next part (0: the
    whole step as one part)."""


class ShardStatus(msgspec.Struct):
    shard: int
    ready: bool
    members: int
    transactions: int
    business_day: str
    rule_version: int
    disk_bytes: int
    job: str = ""
    job_done: int = 0
    job_total: int = 0
    member_bytes: int = 0
    tags: dict[str, int] = {}
    """Members per tag."""
    stored_value: int = 0
    bonus_value: int = 0
    """Stored value the shard's members hold: principal and bonus, in minor units."""
    members_in_memory: int = 0
    member_loads: int = 0
    """Members read from LMDB because they were not in memory, since the shard started."""
    mapping_drops: int = 0
    """Times the store dropped LMDB's mapped pages over its budget, since the shard started."""
    compiled_wire: bool = True
    """Whether this shard's process reads its parts with the compiled reader and runs the compiled
    engine (actors/batch_wire.py)."""
    huge_pages: str = ""
    """Whether this shard's process asks for huge pages for its Python objects: "on", or "off: why"
    (actors/object_memory.py); empty where no actor started it (a Shard in a test)."""
    priority: str = ""
    """Whether this shard's threads give way to the gateway's (actors/shard_priority.py): "idle",
    "partly idle: why", or "ray: why" (Ray's nice 15 only); empty where no actor started it."""
    down: str = ""
    """Why the shard did not answer (ready is then false and the counts are 0); empty when it did."""
    instance: str = ""
    """Names this start of the shard's process (a new one after each restart): the watch counts
    restarts by it, since a shard crashing every few seconds is seldom down for long."""


class Job(msgspec.Struct):
    """A long job in progress: the members still to visit and how far it got."""

    kind: str
    day: Day
    members: list[str]
    done: int = 0
    rows: int = 0
    version: int = 0
    days: list[Day] = []
    """A midnight run over the wake-up index: the days of its entries the run visits."""
    early: set[str] = msgspec.field(default_factory=set)
    """Members a batch brought through the job before its walk reached them (`_ahead_of_batch`)."""
    retier: bool = True
    """A publish's walk: whether members' tiers and tags are judged again (else only the dates of
    their reminders are planned again, which every such walk does)."""


class Shard:
    """`grants` reaches the programme's grant keeper, which hands out limited coupons'
    inventory in blocks; without it (one shard driven alone) the whole inventory is this shard's."""

    def __init__(self, config: ShardConfig, grants: GrantSource | None = None) -> None:
        self.config = config
        if config.expect_data and not (Path(config.path) / "data.mdb").exists():
            raise FileNotFoundError(
                f"no data.mdb in {config.path}, though this shard has served: is the disk mounted, or the "
                f"node started with another PATRON_NODE_DATA? It is not started empty (acknowledged "
                f"transactions would be scored again)")
        self.store = ShardStore(Path(config.path), config.durability, config.map_bytes, config.max_map_bytes,
                                config.mapped_budget)
        try:
            if config.event_floor:
                self.store.raise_event_floor(config.event_floor)
            self._open(config, grants)
        except BaseException:  # its actor tries again in the same process, where LMDB opens a folder once
            self.store.env.close()  # no sync: the failure may be the disk's (what it committed is synced)
            raise

    def _open(self, config: ShardConfig, grants: GrantSource | None) -> None:
        rules_text = self.store.meta("rules_text") or config.rules_text
        today = self.store.meta("business_day") or config.start_day
        self.members = HotMembers(self.store, config.hot_members,
                                  on_leave=self._left_memory)
        self.book = Book(Programme(load_rules(rules_text)), today=today, history=IndexHistory(self.store),
                         stock=CountedStock())
        self.book.members = self.members.mapping()  # after the Book, which would count tags over it: _load does
        self.reads = CommittedReads(self.store, rules_text, self.book.programme.rules)
        """Quotes, cards and coupons from the last commit, on a thread beside the writer's: never
        from `self.members`, which a batch changes before its commit."""
        self.stored_value = [0, 0]
        """Principal and bonus all members hold: from the stored members, then every commit's ledger."""
        self.accepted = 0
        self.streams = StreamOrder(config.shard)
        """Kept in memory only: after a restart every stream's next part is refused and resent."""
        self.away = MovedAway(config.shard)
        """Virtual shards moved (or moving) to other shards: their writes are refused (actors/shard_moves.py)."""
        self.job: Job | None = None
        self.outbox = ShardOutbox(self.store)
        self._prune_through: int | None = None
        """The newest event before the dates run together began: their runs prune none after it."""
        self.counted = self._counted_in_store()
        """What this shard's commits did in all that its answers to batches do not carry (midnight
        runs, enrollment, operators' changes, re-evaluation, `apply`'s batches, events written and
        pruned), kept with each commit that adds to it."""
        self.counted_at_open = self.counted
        self._counting_batches = False
        """`apply`: its batches are counted in `counted` (no gateway records their answers)."""
        self._batch_stats: BatchStats | None = None
        self._pruned = 0
        """Events the open write pruned."""
        self.inventory: ShardCoupons | None = None
        self._planned: dict[str, Day] = {}
        """Bounded: next runs the write's midnight visit worked out, for the wake-up index."""
        self._notices: list[Notice] = []
        self._ledger: list[LedgerEntry] = []
        """What the open write has written out so far (`_write_out`): counted once it commits."""
        self._totals_before: tuple[dict[Day, int], dict[str, int]] | None = None
        """Bounded, a midnight step's: the liability and tag counts as last committed, put back if
        the write fails after members it changed left memory (`_visit_parts`)."""
        self._at_ms = 0
        """The open write's wall-clock time, on each of its events (`_write_out`)."""
        self._disk_write_seconds = 0.0
        """The last commit's time in LMDB's own commit (`BatchWriter.disk_write_seconds`)."""
        self._load()
        # What this shard may issue is what the keeper granted it (on the keeper's disk before it was answered)
        self.inventory = (ShardCoupons(config.shard, grants, self.book.stock, config.coupon_block)
                          if grants else None)
        if self.store.meta("rules_text") is None:
            self._write(lambda: None, (), meta={"rules_text": rules_text, "business_day": today})
        pending = self.store.meta("reevaluating")
        if pending:  # a re-evaluation was cut short: start it again (it is idempotent)
            self.job = Job("reevaluate", today, sorted(self.members), version=pending,
                           retier=self.store.meta("reevaluating_tiers", True))

    def _load(self) -> None:
        """What the shard needs before it answers. Every member in memory: one pass over them.
        A bounded hot set: the totals record, or, when it is stale (the folder was last written
        another way), one pass that writes it and the wake-up index anew (actors/member_index.py)."""
        if not self.members.bounded:
            for member in self.members.start(self.store.members()):
                self._count(member)
            if self.store.meta(TOTALS_KEY) is not None:  # from a bounded run: no longer kept up to date
                self._write_with(_forget_index, ())
            return
        totals = self.store.stamped_meta(TOTALS_KEY)
        if totals is not None:
            self._take_totals(msgspec.convert(totals, MemberTotals, strict=False))
            return

        def rebuild(writer: BatchWriter) -> None:  # run again from the start after the map grew
            self.book.tag_counts, self.stored_value, self.members.liability = {}, [0, 0], {}
            self.book.stock.taken.clear()
            writer.clear_wakeups()
            chunk: list[Member] = []
            for member in self.members.start(self.store.members()):
                self._count(member)
                chunk.append(member)
                if len(chunk) == 10_000:
                    writer.put_wakeups(wakeups_of(self.book, chunk))
                    chunk = []
            writer.put_wakeups(wakeups_of(self.book, chunk))

        if next(self.store.member_ids(), None) is not None:  # a new folder has none to read (a probe)
            log.info("reading every member once to index them", extra={"shard": self.config.shard})
        self._write_with(rebuild, ())

    def _count(self, member: Member) -> None:
        """One stored member at start: its midnight wake-ups, its tags, its stored value, and the
        coupon inventory its instances took (what is stored is what was taken, so a crash
        between taking and committing wastes nothing)."""
        book = self.book
        schedule(book, member)
        if member.touched:
            book.awake.add(member.member_id)
        if member.tags or member.manual_tags:
            book.count_tags([], member.tags + member.manual_tags)
        self.stored_value[0] += member.stored_value
        self.stored_value[1] += member.bonus_value
        book.stock.count(member)

    def _take_totals(self, totals: MemberTotals) -> None:
        self.book.tag_counts = dict(totals.tags)
        self.stored_value = [totals.stored_value, totals.bonus_value]
        self.book.stock.taken.update(totals.taken)
        self.members.liability = dict(totals.liability)

    def _index(self, writer: BatchWriter, ledger: list[LedgerEntry]) -> None:
        """Bounded: the totals record follows what this commit writes (the wake-up index follows
        the members as they are written out, `_write_out`)."""
        principal, bonus = _value_moved(ledger)
        writer.put_stamped_meta(TOTALS_KEY, MemberTotals(
            self.book.tag_counts, self.stored_value[0] + principal, self.stored_value[1] + bonus,
            self.book.stock.taken, self.members.liability))

    # -- ingestion ---------------------------------------------------------------------

    def apply(self, txns: list[Transaction]) -> list[TxnResult]:
        """Score a batch in order and commit it once; results come back only after the commit.
        What it did is counted with the changes the gateway did not send (an operator's adjustment)."""
        self._counting_batches = True
        try:
            return self.apply_counted(txns)[0]
        finally:
            self._counting_batches = False

    def apply_counted(self, txns: list[Transaction], spans: list[tuple[str, int]] | None = None,
                      again: Callable[[], list[Transaction]] | None = None, recalled: dict[int, str] | None = None
                      ) -> tuple[list[TxnResult], BatchStats]:
        """`apply`, and what the batch did, counted once for metrics. A transaction the engine
        fails on (a defect: no input should) is rejected `cannot_apply` and the batch is scored
        again without it, from the state before: one transaction never sinks its batch.
        `spans`: (batch id, transactions) of each part, under whose id a rejection is remembered.
        `again`: the same transactions made anew (read again from their bytes). Given it, and
        holding `txns` alone, the caller lets the scoring free each transaction as soon as it is
        scored, while it is in the cache (`score_until`'s `release`); a write scored again (the
        engine failed on one, or the store grew) scores what `again` makes. `recalled`: by place,
        the reason a resent batch's first sending rejected a transaction with (`_recalled`)."""
        batch = _Batch(txns, again)
        failed: set[int] = set()
        while True:
            try:
                return self._apply_once(batch, failed, spans, recalled or {})
            except _TransactionFailedError as failure:
                if failure.index in failed:  # failed again where nothing is scored: no rejection ends it
                    log.error("the scoring failed again at a transaction it had rejected; the batch is not applied",
                              extra={"shard": self.config.shard, "txn_id": failure.txn_id,
                                     "member_id": batch.member_ids[failure.index]},
                              exc_info=failure.__cause__)
                    raise ScoringLoopError(f"scoring failed again at transaction {failure.index} ({failure.txn_id!r}) "
                                           "after rejecting it: a defect of the shard, not of the batch"
                                           ) from failure.__cause__
                log.error("transaction could not be applied; rejected cannot_apply",
                          extra={"shard": self.config.shard, "txn_id": failure.txn_id,
                                 "member_id": batch.member_ids[failure.index]},
                          exc_info=failure.__cause__)
                failed.add(failure.index)

    def _apply_once(self, batch: "_Batch", failed: set[int], spans: list[tuple[str, int]] | None,
                    recalled: dict[int, str]) -> tuple[list[TxnResult], BatchStats]:
        early: list[str] = []
        # answered by this loop itself, so neither brought through a job nor given coupon units
        stops = failed | recalled.keys() if recalled else failed

        def score(writer: BatchWriter) -> list[TxnResult]:
            started = time.perf_counter()
            txns = batch.take()
            created: dict[str, int] = {}
            if self.job is not None:
                early[:] = self._ahead_of_batch(self.job, txns, stops)
                created = self._not_yet_members(self.job, txns, stops)
            if self.inventory is not None:
                self.inventory.prepare(self.book.programme, [t for n, t in enumerate(txns) if n not in recalled]
                                       if recalled else txns)
            results: list[TxnResult] = []
            tomorrow = Tomorrow(self.book)
            while len(results) < len(txns):  # a result a transaction, in order: the next one's index
                try:  # the engine's compiled loop scores all up to the next one this loop scores itself
                    index = score_until(self.book, txns, results, tomorrow.starts_ms, tomorrow.ends_ms, stops,
                                        release=batch.release)
                    if index == len(txns):
                        break
                    txn = txns[index]
                    if index in failed:
                        results.append(TxnResult(txn.txn_id, "rejected", 0, 0, "cannot_apply"))
                    elif index in recalled:
                        results.append(self._recalled(txn, recalled[index]))
                    elif not malformed_reason(self.book, txn):  # rare: dated past midnight
                        results.append(self._dated_tomorrow(tomorrow, txn))
                    else:  # a malformed one moves no member, as replay
                        results.append(score_transaction(self.book, txn))
                except ShardUnavailableError:  # the coupon keeper out of reach: nothing is applied
                    raise
                except Exception as error:  # the one being scored (score_until appends after scoring)
                    raise _TransactionFailedError(len(results), txns[len(results)].txn_id) from error
            if created:
                early.extend(self._created_through_midnight(created, txns))
            coupon_ids = batch.coupon_ids if not recalled else {
                n: c for n, c in batch.coupon_ids.items() if n not in recalled}
            self._batch_stats = stats = count_batch(batch.kinds, results, self.book.ledger,
                                                    self.book.programme.ladder.names, self.book.notices,
                                                    coupon_ids)  # a recalled out_of_stock was counted when it was new
            if spans and any(" rejected " in key for key in stats.outcomes):  # most batches: none
                remember_rejections(writer, batch.member_ids, results, spans, self.book.today, recalled)
            stats.apply_seconds = time.perf_counter() - started
            return results

        started = time.perf_counter()
        results = self._write_with(score, batch.member_ids, batch=True)
        if early and self.job is not None:  # committed: the job's walk leaves them as they are now
            self.job.early.update(early)
        stats = self._batch_stats  # the scoring of the write that committed
        assert stats is not None
        self._hold_value(stats)
        stats.commit_seconds = time.perf_counter() - started - stats.apply_seconds
        stats.disk_write_seconds = self._disk_write_seconds
        self.accepted += stats.accepted()  # counted already, with the batch's statistics
        return results, stats

    def _recalled(self, txn: Transaction, reason: str) -> TxnResult:
        """A resent batch's transaction that its first sending rejected: rejected again with the
        same reason, not scored after what later batches did (SPEC §2, order per member); but when
        its id has been applied since (the till sent it again in another batch), a duplicate of
        that, as every resubmission of an applied id is (SPEC §2). An outside probe was told a
        payment was refused, on its batch's resend, after another batch had taken the money."""
        if found(self.book.txns, (txn.member_id, txn.txn_id)) is not None:
            return score_transaction(self.book, txn)  # the checks of SPEC §2, then `duplicate`
        return TxnResult(txn.txn_id, "rejected", 0, 0, reason)

    def _ahead_of_batch(self, job: Job, txns: list[Transaction], failed: set[int]
                        ) -> list[str]:
        """A midnight run or a publish's re-evaluation under way reaches a batch's members before
        the batch does, in the batch's write. In replay both happen between two transactions, to
        everyone; served, the job walks the members in steps while batches go on, and a member it
        had not reached yet was scored as before it: points that lapsed at 00:00 were spent, and
        a purchase earned at the tier the new rules had moved the member off (outside probes).
        Only members the walk has still to reach; returns them. An engine defect on one member
        fails its first transaction (`cannot_apply`)."""
        first: dict[str, int] = {}
        for index, txn in enumerate(txns):
            if index not in failed:
                first.setdefault(txn.member_id, index)
        ids = [m for m in sorted(first.keys() - job.early) if _ahead(job, m)]
        for member_id in ids:
            try:
                self._bring_through(job, member_id)
            except Exception as error:
                raise _TransactionFailedError(first[member_id], txns[first[member_id]].txn_id) from error
        return ids

    def _bring_through(self, job: Job, member_id: str) -> None:
        if job.kind == "reevaluate":
            member = self.book.members.get(member_id) if job.retier else None
            if member is not None:
                reevaluate(self.book, member, job.version)
        else:
            self._through_midnight(member_id, job.day)

    def _through_midnight(self, member_id: str, run: Day) -> bool:
        """The member brought through the run for `run` now (idempotent: `midnight_done`), but for
        its anomaly rows: the run writes them when its walk passes (reading the closed day's
        transactions once for everyone; read here, a whole day's index was read in the middle of
        ingestion and kept as it was then). Bounded, its wake-up entries of the run's days stay:
        the walk drops them as it passes. Whether the member exists."""
        member = self.book.members.get(member_id)
        if member is None or member.midnight_done >= run:
            return member is not None
        flagged, member.flag_days = member.flag_days, ()
        try:
            visit(self.book, [member_id], run, self._planned if self.members.bounded else None)
        finally:
            member.flag_days = flagged
        # nothing due still puts the run behind it: the walk, after the batch, must not run its
        # midnight (what the batch changed is the next run's)
        member.midnight_done = max(member.midnight_done, run)
        self.book.dirty[member_id] = member
        return True

    def _dated_tomorrow(self, tomorrow: "Tomorrow", txn: Transaction) -> TxnResult:
        """A transaction dated after the business day's midnight (a till's clock, or a batch just
        before the run begins): replay runs that midnight first, so the member meets it first,
        at its first such transaction; a member it creates is one the run is behind."""
        member_id, run = txn.member_id, tomorrow.day
        created = False
        if member_id not in tomorrow.through:
            tomorrow.through.add(member_id)
            created = not self._through_midnight(member_id, run)
        result = score_well_formed(self.book, txn)  # its caller checked it is well formed
        if created and (member := self.book.members.get(member_id)) is not None and member.midnight_done < run:
            member.midnight_done = run
        return result

    def apply_encoded(self, payloads: list[bytes]) -> list[bytes | Exception]:
        """The gateway's hot path: batch parts that queued up together, each its transactions'
        protobuf bytes in and its results' protobuf bytes out (actors/batch_wire.py), so Ray moves
        plain bytes; an error in place of a part that may not or could not be committed (see
        actors/grouping.py)."""
        return apply_group(self.apply_counted, self.streams, payloads, self.config.shard, self.away,
                           self.store.rejections)

    # -- members -----------------------------------------------------------------------

    def member(self, member_id: str) -> MemberSummary | None:
        member = self.book.members.get(member_id)
        summary = summarise(self.book.programme, member) if member is not None else None
        self.members.settle()
        return summary

    def ledger(self, member_id: str, after_seq: int = 0, limit: int = 0) -> list[LedgerEntry]:
        return self.store.ledger(member_id, after_seq, limit)

    def ledger_positions(self, member_id: str, after_seq: int = 0) -> list[int]:
        return self.store.ledger_positions(member_id, after_seq)

    def ledger_at(self, positions: list[int]) -> list[LedgerEntry]:
        return self.store.entries_at(positions)

    def enroll(self, request: Enrollment) -> tuple[MemberSummary, bool]:
        self._here([request.member_id])

        def enroll_one() -> tuple[Member, bool]:
            member, created = enroll(self.book, request, self.book.today)
            if created:
                self._through_running_midnight(member.member_id)
            return member, created

        member, created = self._write(enroll_one, [request.member_id])
        return summarise(self.book.programme, member), created

    def enroll_many(self, requests: list[Enrollment]) -> list[tuple[MemberSummary | None, bool, str]]:
        """Bulk enrollment in one commit: (member, created, error) per request, in order; a
        request that is not valid gets its error and changes nothing."""
        self._here(r.member_id for r in requests)
        def enroll_each() -> list[tuple[MemberSummary | None, bool, str]]:
            answers: list[tuple[MemberSummary | None, bool, str]] = []
            for request in requests:
                try:
                    member, created = enroll(self.book, request, self.book.today)
                except InvalidRequestError as error:
                    answers.append((None, False, str(error)))
                else:
                    if created:
                        self._through_running_midnight(member.member_id)
                    answers.append((summarise(self.book.programme, member), created, ""))
            return answers

        return self._write(enroll_each, [r.member_id for r in requests])

    def import_members(self, import_id: str, data: bytes) -> ImportAnswer:
        """An import's rows for this shard (ImportRequest bytes), in one commit. A member that
        exists is rejected, unless this same import created it with the same balances: then it
        counts as imported before, so a chunk resent after a crash applies nothing twice."""
        rows = openings_of(data)
        self._here(row.member_id for row in rows)

        def open_each() -> ImportAnswer:
            answer = ImportAnswer(rejected=[])
            opened: set[str] = set()  # by this chunk's rows, now or when it was sent before
            for index, row in enumerate(rows):
                if row.member_id in opened:  # a second row of a member: refused as at the first send, resent too
                    answer.rejected.append(Rejection(index, "member_exists",
                                                     f"member {row.member_id!r} already exists"))
                    continue
                try:
                    open_member(self.book, row, import_id, self.book.today)
                    self._through_running_midnight(row.member_id)
                    answer.imported += 1
                    opened.add(row.member_id)
                except RowRejectedError as error:
                    opening = self._opening(row.member_id) if error.reason == "member_exists" else None
                    earlier = opening.ref if opening is not None else ""
                    if earlier == import_id and opened_as(self.book, opening, row):
                        answer.imported_before += 1
                        opened.add(row.member_id)
                    elif earlier == import_id:  # another row of the member, in an earlier chunk
                        answer.rejected.append(Rejection(index, "member_exists",
                                                         f"member {row.member_id!r} came with another row of "
                                                         f"this import, with other balances, tier or status"))
                    elif earlier:
                        answer.rejected.append(Rejection(index, "already_imported",
                                                         f"member {row.member_id!r} came with import {earlier!r}"))
                    else:
                        answer.rejected.append(Rejection(index, error.reason, str(error)))
            return answer

        return self._write(open_each, [row.member_id for row in rows])

    def _through_running_midnight(self, member_id: str) -> bool:
        """A member created before the date of a midnight run under way (enrolled, imported, or by a
        late transaction) while it walks: the walk, listed when it began, does not reach it, so it
        is brought through the run at once, in the same write, as if created just before it began.
        It met the run's date a run late: imported points that lapsed at its 00:00 stayed spendable
        for a day, a tier past its last valid day was kept (an import probe), and a late purchase's
        pending points waited a run more. One created on the run's date (a transaction dated after
        midnight) is past it already. Returns whether it was brought through."""
        job = self.job
        member = self.book.members.get(member_id) if job is not None and job.kind == "midnight" else None
        if member is None or member.enrolled >= job.day:
            return False
        self._through_midnight(member_id, job.day)
        return True

    def _created_through_midnight(self, created: dict[str, int], txns: list[Transaction]) -> list[str]:
        """`_through_running_midnight` of the members a batch created; an engine defect on one
        fails its first transaction (`cannot_apply`), as `_ahead_of_batch` does."""
        brought: list[str] = []
        for member_id, index in created.items():
            try:
                if self._through_running_midnight(member_id):
                    brought.append(member_id)
            except Exception as error:
                raise _TransactionFailedError(index, txns[index].txn_id) from error
        return brought

    def _not_yet_members(self, job: Job, txns: list[Transaction], failed: set[int]) -> dict[str, int]:
        """During a midnight run: the batch's members that do not exist yet, by their first
        transaction's place (one may create them: `_through_running_midnight` after the scoring)."""
        if job.kind != "midnight":
            return {}
        members, first = self.book.members, {}
        for index, txn in enumerate(txns):
            if index not in failed and txn.member_id not in first and txn.member_id not in members:
                first[txn.member_id] = index
        return first

    def _opening(self, member_id: str) -> LedgerEntry | None:
        """The ledger entry of an import that created a stored member (its first), or None."""
        positions = self.store.ledger_positions(member_id)
        first = self.store.entries_at(positions[:1])
        if first and first[0].cause == IMPORT_CAUSE and first[0].kind == OPENING:
            return first[0]
        return None

    def set_status(self, member_id: str, action: str, reason: str) -> MemberSummary:
        return self._operate(member_id, lambda day: set_status(self.book, member_id, action, reason, day))

    def set_tags(self, member_id: str, add: list[str], remove: list[str], reason: str) -> MemberSummary:
        return self._operate(member_id, lambda day: set_manual_tags(self.book, member_id, add, remove, reason, day))

    def set_tier(self, member_id: str, tier: str, reason: str) -> MemberSummary:
        return self._operate(member_id, lambda day: set_tier(self.book, member_id, tier, reason, day))

    def _operate(self, member_id: str, action: Callable[[Day], Member]) -> MemberSummary:
        """An operator's change to a member, as of the business day or, while a midnight run
        walks the members, of that run's date (it is past 00:00 of it): a walk that has not
        reached the member brings it through first, in the same write, as it does for a batch.
        Points held until the end of a return window that run closes were released a day late
        otherwise (a review)."""
        self._here([member_id])
        early: list[str] = []

        def operate() -> Member:
            job, day = self.job, self.book.today
            if job is not None and job.kind == "midnight":
                day = max(day, job.day)
            if job is not None and member_id not in job.early and _ahead(job, member_id):
                self._bring_through(job, member_id)
                early.append(member_id)
            return action(day)

        member = self._write(operate, [member_id])
        if early and self.job is not None:  # committed: the job's walk leaves it as it is now
            self.job.early.update(early)
        return summarise(self.book.programme, member)

    def adjust(self, member_id: str, request_id: str, points: int, reason: str
               ) -> tuple[TxnResult, MemberSummary | None]:
        """An operator's signed points change is an adjustment transaction: the request id is
        its idempotency key, so a resent request has no second effect. It happens now, or at
        the end of the business day when the clock is ahead of it."""
        self._here([member_id])
        at_ms = self.book.programme.calendar.within(self.book.today, int(time.time() * 1000))
        txn = Transaction(request_id, member_id, at_ms, ADJUSTMENT, amount_minor=points, note=reason)
        result = self.apply([txn])[0]
        return result, self.member(member_id)

    # -- the midnight run ----------------------------------------------------------------

    def midnight_begin(self, run: Day, first: bool = True) -> int:
        """Start the run for `run` (the next date after the business day); returns how many
        members it will visit. A run already done, or in progress, is not started again.
        `first`: the first date of those run together (a catch-up runs several in one go)."""
        if run <= self.book.today:
            return 0
        if self.job is not None and self.job.kind == "midnight" and self.job.day == run:
            return len(self.job.members) - self.job.done
        if run != self.book.today + 1:
            raise ValueError(f"runs go in date order: the next is {iso(self.book.today + 1)}, not {iso(run)}")
        if first or self._prune_through is None:
            # A catch-up of more dates than `retention_days` pruned, at its last dates, the events
            # its first dates had just written (expiry reminders, sent once): no subscriber had
            # a chance to read them (an outside probe). Its runs prune only what was there before
            # it; the next run prunes the rest. A shard restarted mid-way prunes nothing more.
            state = self.outbox.state()
            self._prune_through = state.newest if first else state.pruned
        if not self.members.bounded:
            awake = self.book.awake  # `visitors` takes it
            self.job = Job("midnight", run, visitors(self.book, run))
            self._still_awake(awake, run)
        else:  # from the wake-up index; everyone on a day of periodic recalculation
            days, woken = self.store.woken_by(run)
            self.job = Job("midnight", run, list(self.members) if periodic_due(self.book, run) else woken, days=days)
        return len(self.job.members)

    def _still_awake(self, member_ids: Iterable[str], run: Day) -> None:
        """Members a transaction dated past midnight brought through this run already
        (`_dated_tomorrow`) and changed since: the walk passes them, and taking them from
        `awake` it would leave the next run without them (a `next_day` tier entered a day late)."""
        members, awake = self.book.members, self.book.awake
        for member_id in member_ids:
            member = members.get(member_id)
            if member is not None and member.midnight_done >= run and member.touched:
                awake.add(member_id)

    def midnight_step(self, limit: int = 2_000) -> tuple[int, list[str], bool]:
        """Visit up to `limit` members in one commit: (visited, the days of the anomaly rows
        written, one per row, finished)."""
        job = self.job
        if job is None or job.kind != "midnight":
            return 0, [], True
        chunk = job.members[job.done:job.done + limit]
        finished = job.done + len(chunk) >= len(job.members)
        owed, closed = self.reports_owed(), self.closed_owed()  # read before the write, as committed

        def step(writer: BatchWriter) -> list[AnomalyRow]:
            rows = self._visit_parts(writer, job, chunk)
            writer.put_anomalies(rows)
            if rows:
                writer.put_meta(REPORTS_OWED, sorted(set(owed) | {row.day for row in rows}))
            if finished:
                writer.put_meta(CLOSED_OWED, sorted({*closed, iso(job.day - 1)}))
                writer.forget_before(job.day - self._index_days())
                writer.forget_rejections_before(job.day - REJECTIONS_KEPT_DAYS)
                self._pruned += writer.prune_events(job.day - self.book.programme.rules.notify.retention_days,
                                                    self._prune_through)
                writer.put_meta("business_day", job.day)
            return rows

        rows = self._walking(step, chunk)
        job.done += len(chunk)
        job.rows += len(rows)
        if finished:
            self.book.today = job.day
            self.book.history.forget_before(job.day)
            self.job = None
        return len(chunk), [row.day for row in rows], finished

    def _visit_parts(self, writer: BatchWriter, job: Job, chunk: list[str]) -> list[AnomalyRow]:
        """A step's members a part at a time, each part written out into the step's write before
        the next is read: what a part holds in memory is used while still in the CPU's caches,
        and, bounded, the members it read leave memory before the next part is read (so the
        totals are kept to be put back if the write fails, `_reload`)."""
        bounded, rows, part_size = self.members.bounded, [], self.config.midnight_part or len(chunk) or 1
        if bounded and len(chunk) > part_size:  # as last committed: nothing of this write is counted yet
            self._totals_before = (dict(self.members.liability), dict(self.book.tag_counts))
        for start in range(0, len(chunk), part_size):
            part = chunk[start:start + part_size]
            if bounded:  # every member in memory keeps no wake-up index
                # then the write indexes the visited members' next runs; not those a batch brought
                # through the run already (`_ahead_of_batch`): nothing is due, so nothing would
                dropped = [m for m in part if m not in job.early] if job.early else part
                writer.drop_wakeups(job.days, dropped)
                self.members.bring(part, lambda ids: writer.members(ids, ordered=True))  # in id order
                self.members.unindexed(dropped)
            rows += visit(self.book, part, job.day, self._planned if bounded else None)
            if bounded:  # entries dropped for a member the run had reached before a restart (a step,
                # or a batch ahead of the walk) and nothing changed since: written again, or it would
                # miss its next runs
                self._reindex([m for m in dropped if m not in self.book.dirty], job.day)
            if start + part_size < len(chunk):
                self._write_out(writer)
                if bounded:
                    self.members.settle()
                    self._planned.clear()
        return rows

    def _reindex(self, member_ids: list[str], run: Day) -> None:
        for member_id in member_ids:
            member = self.members.peek(member_id)
            if member is not None and member.midnight_done >= run:
                self.book.dirty[member_id] = member

    def counts(self) -> tuple[Counted, Counted]:
        """`counted` now and when this shard opened: the coordinator records the difference from
        what it last saw (actors/batch_stats.py, Counted)."""
        return self.counted, self.counted_at_open

    def _counted_in_store(self) -> Counted:
        events, stats = self.store.meta(COUNTED_KEY), self.store.meta(COUNTED_STATS_KEY)
        counted = msgspec.convert(events, Counted) if events is not None else Counted()
        if stats is not None:
            counted.stats = msgspec.convert(stats, BatchStats)
        return counted

    def _count_in(self, writer: BatchWriter, batch: bool) -> tuple[Counted, BatchStats | None]:
        """`counted` with what this write adds, put in the write (so a shard killed right after
        its commit loses none of it), and the write's own counts when it is not a gateway's batch."""
        stats = None
        if not batch:
            stats = BatchStats({})
            count_ledger(stats, self._ledger, self.book.programme.ladder.names)
        elif self._counting_batches:
            stats = self._batch_stats
        notices, pruned, was = self._notices, self._pruned, self.counted
        counts = stats is not None and not stats.counts_nothing()
        if not notices and not pruned and not counts:
            return was, stats
        total = was.stats
        if counts:  # kept apart from the events, so a batch that wrote events does not write them again
            total = BatchStats({})
            total.add(was.stats)
            total.add(stats)
            writer.put_meta(COUNTED_STATS_KEY, total)
        events = Counter(was.events)
        events.update(map(_KIND, notices))  # counted in C: a batch that enrolls thousands writes as many events
        counted = Counted(total, dict(events), was.pruned + pruned, was.commits + 1)
        writer.put_meta(COUNTED_KEY, Counted(_NOTHING, counted.events, counted.pruned, counted.commits))
        return counted, stats

    def liability(self) -> dict[str, int]:
        """Outstanding spendable points by the month they expire ("never" for no expiry)."""
        by_day = self.members.liability if self.members.bounded else _lots_by_day(self.members.values())
        by_month: dict[str, int] = {}
        for day, amount in by_day.items():
            month = iso(day)[:7] if day < NEVER else "never"
            by_month[month] = by_month.get(month, 0) + amount
        return by_month

    def anomalies(self, day: str) -> list[AnomalyRow]:
        return self.store.anomalies(day)

    def reports_owed(self) -> list[str]:
        """Days this shard wrote anomaly rows for whose report files are not known to be written:
        kept with the rows, so a run cut short after this shard's steps (by another shard's death
        or the server's) still has them reported by the next run that ends."""
        return self.store.meta(REPORTS_OWED, [])

    def closed_owed(self) -> list[str]:
        """Days this shard's runs closed whose reports (the anomaly report, empty or not, and the
        reused ids) are not known to be written: kept from the run's last step, so a server cut
        between its shards' last steps and its reports writes them once back (they were lost for
        good: an outside probe)."""
        return self.store.meta(CLOSED_OWED, [])

    def reports_written(self, days: list[str], closed: Collection[str] = ()) -> None:
        owed, closed_owed = self.reports_owed(), self.closed_owed()
        if set(owed) & set(days) or set(closed_owed) & set(closed):
            self._write(lambda: None, (), meta={REPORTS_OWED: [day for day in owed if day not in days],
                                                CLOSED_OWED: [day for day in closed_owed if day not in closed]})

    # -- publishing ----------------------------------------------------------------------

    def publish(self, rules_text: str, count_past_spend: bool = True) -> int:
        """Rules in force from the next batch on. When the tier rules changed, members keep
        their tier by name at once (one commit, with the new rules) and are re-evaluated in
        chunks afterwards; when only the reminders' notice changed, the walk plans their dates
        again. Returns how many members the walk will visit."""
        old, new = self.book.programme, Programme(load_rules(rules_text))
        self.reads.know(rules_text, new.rules)
        if not members_to_revisit(old.rules, new.rules):
            return self._publish_as_it_is(new, rules_text, reminders_to_replan(old.rules, new.rules))
        activating = activates_tiers(old.rules, new.rules)
        # what the new tiers and tags look back on that the old ones did not keep (a first publish
        # told not to count past spend makes again only purchase counts)
        history = history_to_rebuild(old, new, past_spend=count_past_spend or not activating)

        def swap() -> None:
            self.book.programme = new  # first: a member moved off a removed tier is written under it
            for member in self.book.members.values():
                moved = remap_tiers(self.book, member, old.ladder.names)
                if activating and not count_past_spend:
                    forget_past_spend(member)
                dropped = forget_stale_history(member, history)
                if moved or dropped or activating:
                    self.book.dirty[member.member_id] = member
            if history.rebuilds:
                rebuild_history(self.book, self.store.records_by_id(), history)

        try:
            self._write(swap, list(self.book.members), meta={"rules_text": rules_text, **self._walk_meta(new, True)})
        except BaseException:
            self.book.programme = old
            raise
        self._settle_coupons()
        return self._walk(new, True)

    def _publish_as_it_is(self, new: Programme, rules_text: str, replan: bool) -> int:
        """A version whose tiers and tags are those in force: a walk under way (a publish a restart
        cut short, brought to a shard by the next one) goes on; when the reminders' notice changed,
        a walk plans their dates again, and re-judges tiers from its start if the walk under way did
        (a review: replaced by a walk that judged no tier, the members it had not reached kept their
        tiers for good)."""
        retier = self.job is not None and self.job.kind == "reevaluate" and self.job.retier
        meta = {"rules_text": rules_text}
        if replan:
            meta |= self._walk_meta(new, retier)
        self._write(lambda: None, (), meta=meta)
        self.book.programme = new
        self._settle_coupons()
        return self._walk(new, retier) if replan else 0

    def _walk_meta(self, new: Programme, retier: bool) -> dict:
        """What a restart needs to walk the members again after a publish; none when there are none."""
        return {"reevaluating": new.version if self.members else 0, "reevaluating_tiers": retier}

    def _walk(self, new: Programme, retier: bool) -> int:
        """The walk after a publish, over every member; none on a shard without members (a new one a
        rebalance made): its empty job, left for the watch, refused moves for a second (a probe)."""
        members = sorted(self.members)  # as `_walk_meta` counts them, and a restart lists them
        self.job = Job("reevaluate", self.book.today, members, version=new.version, retier=retier) if members else None
        return len(members)

    def _settle_coupons(self) -> None:
        """Under new rules every block goes back to the keeper, which learns what this shard
        issued: inventories that changed count from there (docs/decisions.md)."""
        if self.inventory is not None:
            self.inventory.settle_all()

    def release_coupons(self, coupons: list[str]) -> int:
        """The keeper runs short of these coupons: give back what this shard's blocks hold
        unused, and from now on what is left after each commit. Returns the units given back."""
        return self.inventory.release(coupons) if self.inventory is not None else 0

    def reevaluate_step(self, limit: int = 2_000) -> tuple[int, bool]:
        job = self.job
        if job is None or job.kind != "reevaluate":
            return 0, True
        chunk = job.members[job.done:job.done + limit]
        finished = job.done + len(chunk) >= len(job.members)

        def step(writer: BatchWriter) -> None:
            self.members.bring(chunk, lambda ids: writer.members(ids, ordered=True))  # sorted, each once
            for member_id in chunk:
                member = self.book.members.get(member_id) if member_id not in job.early and job.retier else None
                if member is not None:
                    reevaluate(self.book, member, job.version)
            self._replan(writer, chunk)
            if finished:
                writer.put_meta("reevaluating", 0)

        self._walking(step, chunk)
        job.done += len(chunk)
        if finished:
            self.job = None
        return len(chunk), finished

    def _index_days(self) -> int:
        """How long a transaction's id is remembered: at least while a transaction of its day may still
        arrive (`max_lateness_days`), as replay remembers it. Rules allowing more lateness than the
        server's retention had a resend 400 days late scored a second time (a probe)."""
        return max(self.config.index_retention_days, self.book.programme.rules.max_lateness_days + 1)

    def _replan(self, writer: BatchWriter, chunk: list[str]) -> None:
        """The next wake-up of each member under the rules now in force. An earlier plan's date left
        in the index only makes a run look at a member with nothing to do."""
        members = [m for m in map(self.book.members.get, chunk) if m is not None]
        if self.members.bounded:
            writer.put_wakeups(wakeups_of(self.book, members))
        else:
            for member in members:
                schedule(self.book, member)

    def _walking(self, step: Callable[[BatchWriter], T], chunk: list[str]) -> T:
        """A job's chunk: members it reads from LMDB leave memory first after it (actors/hot_members.py)."""
        self.members.passing = True
        try:
            return self._write_with(step, chunk)
        finally:
            self.members.passing = False

    # -- the shard ---------------------------------------------------------------------

    def checkpoint(self, path: str) -> int:
        """A consistent, compacted copy of this shard; returns its size in bytes."""
        return self.store.copy_to(Path(path))

    def status(self) -> ShardStatus:
        job = self.job
        return ShardStatus(self.config.shard, True, len(self.book.members), self.accepted,
                           iso(self.book.today) if self.book.today else "", self.book.programme.version,
                           self.store.disk_bytes(), job.kind if job else "", job.done if job else 0,
                           len(job.members) if job else 0, self.store.member_bytes(),
                           dict(self.book.tag_counts), *self.stored_value, self.members.held(), self.members.loads,
                           self.store.mapping_drops, COMPILED)

    def close(self) -> None:
        self.store.close()

    def _here(self, member_ids: Iterable[str]) -> None:
        """Refuse a write for a member whose virtual shard moved away (a stale route's)."""
        if (refused := self.away.refusal(member_ids)) is not None:
            raise refused

    def _write(self, action: Callable[[], T], member_ids: Iterable[str], meta: dict | None = None) -> T:
        def with_meta(writer: BatchWriter) -> T:
            outcome = action()
            for key, value in (meta or {}).items():
                writer.put_meta(key, value)
            return outcome

        return self._write_with(with_meta, member_ids)

    def _write_with(self, action: Callable[[BatchWriter], T], member_ids: Iterable[str], batch: bool = False) -> T:
        """Run `action` against the book inside one LMDB write transaction and commit what it
        changed; on any failure put back the touched members as LMDB has them, and re-raise.
        A full map that may still grow is grown and the action run once more.
        What a commit did is counted only once committed: by the caller for a `batch`, else in
        `counted`, which the write itself carries (`_count_in`)."""
        member_ids = list(member_ids)
        if self.inventory is not None:
            self.inventory.dry = set()
        try:
            return self._growing(action, member_ids, batch)
        finally:
            self.members.settle()  # committed or put back: nothing in memory is ahead of LMDB now
            if self.members.bounded:  # the wake-up index has them
                self.book.awake.clear()
                self.book.wakeups.clear()

    def _growing(self, action: Callable[[BatchWriter], T], member_ids: list[str], batch: bool) -> T:
        try:
            return self._attempt(action, member_ids, batch)
        except StorageFullError:
            if not self.store.grow():
                raise
            return self._attempt(action, member_ids, batch)

    def _attempt(self, action: Callable[[BatchWriter], T], member_ids: list[str], batch: bool) -> T:
        writer = self.store.writer()
        self.book.txns = writer.index
        self.members.read_from(writer.member)
        self._planned.clear()
        self._notices, self._ledger, self._totals_before, self._pruned = [], [], None, 0
        self._batch_stats = None
        self._at_ms = int(time.time() * 1000)
        taken = self.book.stock.snapshot()
        try:
            outcome = action(writer)
            self._write_out(writer)
            if self.members.bounded:
                self._index(writer, self._ledger)
            counted, stats = self._count_in(writer, batch)
            self._ledger = []  # the commit's own references are then the entries' last
            writer.commit()
            self._disk_write_seconds = writer.disk_write_seconds
            self._totals_before = None  # committed: what memory holds is what LMDB holds
            self.counted = counted
            if not batch:  # a batch's own is held by `_apply_once`
                self._hold_value(stats)
        except BaseException:
            writer.abort()
            self._reload(member_ids)
            self.book.stock.restore(taken)  # units taken for what was not committed go back
            raise
        finally:
            self.book.txns = {}
            self.members.read_from(None)
        if self.inventory is not None:
            self.inventory.committed(self.book.programme, taken)
        return outcome

    def _write_out(self, writer: BatchWriter) -> None:
        """What the open write changed so far goes into it: the outbox's events (in the same commit
        as the changes that caused them), the members, their ledger entries and, bounded, their
        wake-up entries. Once per write, or after each part of a midnight step (`_visit_parts`)."""
        book = self.book
        notices = book.take_notices()
        if notices:
            job = self.job
            day = job.day if job is not None and job.kind == "midnight" else book.today
            writer.put_events(notices, day, self._at_ms)
            self._notices += notices
        ledger, dirty = book.take_changes()
        writer.put_members(dirty.values())
        writer.put_ledger(ledger)
        self._ledger += ledger
        moved = self.members.committed(dirty.values())  # a failure below puts them back (_reload)
        if self.members.bounded:
            writer.put_wakeups(wakeups_of(book, moved, self._planned))

    def _hold_value(self, stats: BatchStats) -> None:
        """The stored value members hold, moved by what a commit's ledger changed."""
        self.stored_value[0] += stats.stored_value
        self.stored_value[1] += stats.bonus_value

    def _left_memory(self, member_ids: list[str]) -> None:
        """Window sums hold a member's day dicts, the store its newest ledger position: they go when
        the member leaves memory (the rules in force now, since publishing replaces the ladder that
        keeps them)."""
        forget = self.book.programme.ladder.sums.forget
        for member_id in member_ids:
            forget(member_id)
        self.store.forget_heads(member_ids)  # memory: their heads are read again when they come back

    def _reload(self, member_ids: Iterable[str]) -> None:
        self.book.take_changes()
        self.book.take_notices()
        for member_id in set(member_ids):
            self.book.programme.ladder.sums.forget(member_id)
            held = self.members.peek(member_id)
            if held is None:  # not in memory (bounded, the write never read it): nothing to put back
                continue
            stored = self.store.member(member_id)
            self.book.count_tags(_all_tags(held), _all_tags(stored))
            self.members.restore(member_id, stored)
        if self._totals_before is not None:  # members left memory before the write failed
            self.members.liability, self.book.tag_counts = self._totals_before


def _all_tags(member: Member | None) -> list[str]:
    return [] if member is None else member.tags + member.manual_tags


def _forget_index(writer: BatchWriter) -> None:
    writer.clear_wakeups()
    writer.delete_meta(TOTALS_KEY)


def _value_moved(ledger: list[LedgerEntry]) -> tuple[int, int]:
    """How much stored value, principal and bonus, the entries moved."""
    principal = bonus = 0
    for entry in ledger:
        if entry.stored_value or entry.bonus_value:
            principal += entry.stored_value
            bonus += entry.bonus_value
    return principal, bonus


def _lots_by_day(members: Iterable[Member]) -> dict[Day, int]:
    by_day: dict[Day, int] = {}
    for member in members:
        for lot in member.lots:
            by_day[lot.expires] = by_day.get(lot.expires, 0) + lot.amount
    return by_day


REPORTS_OWED = "reports_owed"
"""The meta key of `Shard.reports_owed`."""
CLOSED_OWED = "closed_owed"
"""The meta key of `Shard.closed_owed`."""
COUNTED_KEY = "counted"
"""The meta key of `Shard.counted` but for its `stats`, which are under COUNTED_STATS_KEY."""
COUNTED_STATS_KEY = "counted_stats"
_NOTHING = BatchStats({})
_KIND = attrgetter("kind")
REJECTIONS_KEPT_DAYS = 2
"""How long a batch's rejections are remembered for its resends: clients resend within minutes
(PatronClient gives up after 8 tries), so two business days leave room and keep the database small."""


class Tomorrow:
    """The business day's next date, as a batch checks its transactions against it: those dated
    on it meet its midnight first (`Shard._dated_tomorrow`); later dates are refused `in_future`."""

    __slots__ = ("day", "ends_ms", "starts_ms", "through")

    def __init__(self, book: Book) -> None:
        self.day = book.today + 1
        calendar = book.programme.calendar
        self.starts_ms = calendar.midnight_ms(self.day) if book.today else 1 << 62
        self.ends_ms = calendar.midnight_ms(self.day + 1) if book.today else 1 << 62
        self.through: set[str] = set()
        """Members brought through its midnight in this batch."""


def _ahead(job: Job, member_id: str) -> bool:
    """Whether the job's walk has still to reach the member (its list is sorted)."""
    at = bisect_left(job.members, member_id, job.done)
    return at < len(job.members) and job.members[at] == member_id


def remember_rejections(writer: BatchWriter, member_ids: list[str], results: list[TxnResult],
                        spans: list[tuple[str, int]], day: Day, recalled: Container[int] = ()) -> None:
    """A rejected transaction does not use up its id (SPEC §11.1): sent again it is scored again.
    But a batch resent because its answer was lost must be answered as it was the first time,
    not scored against what later batches did (SPEC §2): so what each batch had rejected is kept,
    in the commit, by its batch id. Nearly every batch has a rejection or two among thousands
    accepted: only the rejected and those sharing a transaction id with one are looked at
    (actors/batch_stats.py `rejected_and_twins`, compiled; a Python step a transaction was 2.5% of
    a shard's write). `recalled`: the places of rejections answered from this memory (a resend):
    kept as they were, so that resending never keeps them past their two business days."""
    ends = list(accumulate(size for _, size in spans))  # where each batch's transactions end
    if len(results) != len(member_ids) or (ends[-1] if ends else 0) != len(member_ids):
        raise ValueError("spans, transactions and results of different lengths")
    rejected: dict[str, Rejected] = {}
    taken: set[tuple[str, str, str]] = set()
    for at in rejected_and_twins(results):  # in order, as all were; a result holds its transaction's id
        member_id, result, batch_id = member_ids[at], results[at], spans[bisect_right(ends, at)][0]
        if at in recalled and result.outcome == "rejected":
            continue
        if batch_id and result.outcome == "rejected":
            rejected.setdefault(batch_id, {}).setdefault((member_id, result.txn_id), []).append(result.reason)
        elif batch_id:  # the others' keys hold other ids, so they could match no rejected key
            taken.add((batch_id, member_id, result.txn_id))
    for batch_id, by_key in rejected.items():  # an id the batch also sent again and had applied: the index answers it
        for key in [key for key in by_key if (batch_id, *key) in taken]:
            del by_key[key]
    if any(rejected.values()):
        writer.put_rejections({batch_id: by_key for batch_id, by_key in rejected.items() if by_key}, day)
