"""The Ray actor around one Shard: the single writer of its LMDB environment. Ray restarts
it after a crash; the new process reopens LMDB and rebuilds the same hot state, or, where it
cannot (a full disk, a damaged file), says why and tries again until it can."""

import gc
import logging
import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Collection
from typing import TypeVar

import msgspec
import ray
from ray.util.annotations import RayDeprecationWarning

from actors import shard_moves
from actors.batch_stats import Counted
from actors.batch_wire import say_if_not_compiled
from actors.coupon_grants import RayGrants
from actors.logs import configure_logging
from actors.object_memory import prepare_to_hold_members
from actors.opening_wire import ImportAnswer
from actors.placement import on_this_node
from actors.shard import Shard, ShardConfig, ShardStatus
from actors.shard_outbox import OutboxState
from actors.shard_priority import yield_to_the_gateway
from engine.anomaly_report import AnomalyRow
from engine.errors import OutOfOrderError, ShardUnavailableError, UnknownMemberError
from engine.ledger import LedgerEntry
from engine.operators import Enrollment
from engine.spending.member_coupons import HeldCoupon
from engine.spending.quote import Quote
from engine.summary import MemberSummary
from engine.transactions import LineItem, TxnResult
from engine.types import Day

__all__ = ["ShardActor"]

log = logging.getLogger("patron.shard")
T = TypeVar("T")
SLOW_BATCH_SECONDS = 1.0
READS = "reads"
OPEN_RETRY_SECONDS = 5.0
_ACTOR_ID_DEPRECATED = r"(?s)This API is deprecated.*Use get_actor_id\(\) instead"
"""Ray's warning for `RuntimeContext.actor_id`, which `was_current_actor_reconstructed` reads."""


def _restarted() -> bool:
    """Whether Ray restarted this actor: an actor whose start raised is not restarted, and a first
    start opens or makes its data, so a restarted shard has data to find. Ray restarts an actor with
    the arguments it was made with, and in the serve that made a folder those said to expect none: a
    node restarted with another `PATRON_NODE_DATA` (or before its disk was mounted) started its shard
    empty, and resends were scored again (a scale-out probe). A first start that could not open its
    data and then died waits for data when restarted: on the safe side, and serve's restart ends it.
    Ray's answer comes from its GCS: one it cannot reach (restarting) counts as a restart, that side
    too, rather than fail the start, which Ray would never retry."""
    try:
        with warnings.catch_warnings():
            # Ray's own property reads its deprecated `actor_id`: a RayDeprecationWarning, three
            # lines in the log at every shard's start, about Ray's code, not ours
            warnings.filterwarnings("ignore", message=_ACTOR_ID_DEPRECATED, category=RayDeprecationWarning)
            return bool(ray.get_runtime_context().was_current_actor_reconstructed)
    except Exception:
        log.warning("cannot ask Ray whether this shard was restarted; its data is expected", exc_info=True)
        return True


# Without task events: Ray's GCS would keep a record of every call (tens a second), and its
# memory grew 8 MiB a minute in the soak until Ray's own cap on kept tasks
@ray.remote(max_restarts=-1, max_task_retries=0, enable_task_events=False, concurrency_groups={READS: 2})
class ShardActor:
    """Calls from one caller run one at a time, in the order they were sent (Ray's actor
    ordering), so a member's batches are applied in the order the gateway received them.
    Reads of committed state (quotes, cards, coupons, ledgers) run in the `reads` group, on
    threads of their own: they never wait for a batch being scored or committed
    (actors/committed_reads.py)."""

    def __init__(self, config: ShardConfig, folder_id: str = "") -> None:
        configure_logging()
        self._priority = yield_to_the_gateway(log)  # first: loading the members gives way too
        self._huge_pages = prepare_to_hold_members(log)  # before the members load: most of the arenas
        self._config = msgspec.structs.replace(config, path=on_this_node(config.path, folder_id),
                                               expect_data=config.expect_data or _restarted())
        self._instance = uuid.uuid4().hex
        self._steps = [0, 0.0, 0.0]
        """The midnight run's steps so far: how many, their seconds and CPU seconds here."""
        self._shard: Shard | None = None
        self._cannot_open = ""
        """Why the last try to open the shard's data failed (empty: open, or not tried yet)."""
        self._tried = 0.0
        self._stopped = False
        self._opening = threading.Lock()  # reads run on threads of their own: LMDB opens a folder once
        self._open()

    def _open(self) -> None:
        """Open the shard's LMDB and load its members. Where that fails, the process stays and
        answers "not ready, and why", trying again every few seconds: Ray does not restart an
        actor whose start raised, and a shard that failed to open once (a full disk at its restart)
        would stay down until patron was restarted."""
        config = self._config
        with self._opening:
            if self._shard is not None or self._stopped:
                return
            started, self._tried = time.perf_counter(), time.monotonic()
            try:
                # The keeper is found by name: an actor handle among the arguments of an actor Ray
                # restarts makes Ray warn that the restart may fail (ray-project/ray#53727)
                keeper = RayGrants(ray.get_actor(config.keeper)) if config.keeper else None
                self._shard = Shard(config, keeper)
            except Exception as error:
                why = f"{type(error).__name__}: {error}"
                if why != self._cannot_open:  # once, not every few seconds
                    log.exception("the shard cannot open its data; it tries again every "
                                  f"{OPEN_RETRY_SECONDS:g} s", extra={"shard": config.shard, "path": config.path})
                self._cannot_open = why
                return
        self._cannot_open = ""
        gc.freeze()  # the members just loaded live as long as the process
        say_if_not_compiled(log, shard=config.shard)
        log.info("shard ready", extra={"shard": config.shard, "members": len(self._shard.book.members),
                                       "huge_pages": self._huge_pages, "priority": self._priority,
                                       "seconds": round(time.perf_counter() - started, 3)})

    @property
    def shard(self) -> Shard:
        """The open shard; while its data cannot be opened, `ShardUnavailableError` (nothing of the
        call applied), after one more try when the last is a few seconds old."""
        if self._shard is None:
            if time.monotonic() - self._tried >= OPEN_RETRY_SECONDS:
                self._open()
            if self._shard is None:
                raise ShardUnavailableError(f"{self._closed()}; it tries again every {OPEN_RETRY_SECONDS:g} s")
        return self._shard

    def _closed(self) -> str:
        return f"shard {self._config.shard} cannot open its data ({self._cannot_open})"

    def status(self) -> ShardStatus:
        try:
            shard = self.shard
        except ShardUnavailableError:
            return ShardStatus(self._config.shard, False, 0, 0, "", 0, 0, down=self._closed(), instance=self._instance)
        return msgspec.structs.replace(shard.status(), huge_pages=self._huge_pages, priority=self._priority,
                                       instance=self._instance)

    def pid(self) -> int:
        return os.getpid()

    def node(self) -> str:
        return ray.get_runtime_context().get_node_id()

    def publish(self, rules_text: str, count_past_spend: bool = True) -> int:
        return self.shard.publish(rules_text, count_past_spend)

    def reevaluate_step(self, limit: int) -> tuple[int, bool, float]:
        """(visited, finished, seconds the step took here): the coordinator paces by the last."""
        return _timed(self.shard.reevaluate_step, limit)

    def midnight_begin(self, run: Day, first: bool = True) -> int:
        started, cpu = time.perf_counter(), time.thread_time()
        members = self.shard.midnight_begin(run, first)
        self._steps = [0, 0.0, 0.0]
        log.info("midnight run begins", extra={"shard": self.shard.config.shard, "members": members,
                                               "seconds": round(time.perf_counter() - started, 3),
                                               "cpu_seconds": round(time.thread_time() - cpu, 3)})
        return members

    def midnight_step(self, limit: int) -> tuple[int, list[str], bool, float]:
        """(visited, anomaly days, finished, seconds the step took here). The run's steps are
        logged at its end: their seconds, and the CPU seconds of them (the rest is waiting for
        the disk or for a core)."""
        cpu = time.thread_time()  # this thread's: reads beside it run on threads of their own
        answer = _timed(self.shard.midnight_step, limit)
        steps = self._steps
        steps[0], steps[1], steps[2] = steps[0] + 1, steps[1] + answer[-1], steps[2] + time.thread_time() - cpu
        if answer[2]:
            log.info("midnight run steps", extra={"shard": self.shard.config.shard, "steps": steps[0],
                                                  "seconds": round(steps[1], 3), "cpu_seconds": round(steps[2], 3)})
        return answer

    def release_coupons(self, coupons: list[str]) -> int:
        return self.shard.release_coupons(coupons)

    def counts(self) -> tuple[Counted, Counted]:
        return self.shard.counts()

    def liability(self) -> dict[str, int]:
        return self.shard.liability()

    def anomalies(self, day: str) -> list[AnomalyRow]:
        return self.shard.anomalies(day)

    def reports_owed(self) -> list[str]:
        return self.shard.reports_owed()

    def closed_owed(self) -> list[str]:
        return self.shard.closed_owed()

    def reports_written(self, days: list[str], closed: Collection[str] = ()) -> None:
        self.shard.reports_written(days, closed)

    def id_digests(self, day: Day) -> bytes:
        return self.shard.store.id_digests(day)

    def members_by_id(self, day: Day, digests: frozenset[bytes]) -> dict[str, list[str]]:
        return self.shard.store.members_by_id(day, digests)

    @ray.method(concurrency_group=READS)
    def checkpoint(self, path: str) -> int:
        """Beside batches: the copy reads the last commit, and ingestion goes on meanwhile."""
        return self.shard.checkpoint(path)

    def apply(self, payloads: list[bytes]) -> list[bytes | OutOfOrderError]:
        """Batches (their parts for this shard) in one commit, an answer for each: the
        results, or why that part was not applied."""
        started = time.perf_counter()
        answers = self.shard.apply_encoded(payloads)
        seconds = time.perf_counter() - started
        if seconds > SLOW_BATCH_SECONDS:
            log.warning("slow batch", extra={"shard": self.shard.config.shard, "batches": len(payloads),
                                             "bytes": sum(map(len, payloads)), "seconds": round(seconds, 3)})
        return answers

    def events_page(self, after: int, limit: int, kinds: list[str]) -> bytes:
        return self.shard.outbox.page(after, limit, kinds)

    def events_state(self) -> OutboxState:
        return self.shard.outbox.state()

    @ray.method(concurrency_group=READS)
    def member(self, member_id: str) -> MemberSummary | None:
        found = self.shard.reads.member(member_id)
        if found is None:
            self.shard.away.check_read(member_id)
        return found

    @ray.method(concurrency_group=READS)
    def quote(self, member_id: str, lines: list[LineItem], at_ms: int) -> Quote:
        return self._of_member(member_id, lambda: self.shard.reads.quote(member_id, lines, at_ms))

    @ray.method(concurrency_group=READS)
    def coupons(self, member_id: str, status: str) -> list[HeldCoupon]:
        return self._of_member(member_id, lambda: self.shard.reads.coupons(member_id, status))

    @ray.method(concurrency_group=READS)
    def ledger_positions(self, member_id: str, after_seq: int) -> list[int]:
        positions = self.shard.ledger_positions(member_id, after_seq)
        if not positions and self.shard.reads.member(member_id) is None:
            self.shard.away.check_read(member_id)
        return positions

    def _of_member(self, member_id: str, read: Callable[[], T]) -> T:
        """A read of one member here: one this shard gave away is "moved away", not "unknown"
        (MovedAway.check_read)."""
        try:
            return read()
        except UnknownMemberError:
            self.shard.away.check_read(member_id)
            raise

    @ray.method(concurrency_group=READS)
    def ledger_at(self, positions: list[int]) -> list[LedgerEntry]:
        return self.shard.ledger_at(positions)

    def enroll(self, request: Enrollment) -> tuple[MemberSummary, bool]:
        return self.shard.enroll(request)

    def enroll_many(self, requests: list[Enrollment]) -> list[tuple[MemberSummary | None, bool, str]]:
        return self.shard.enroll_many(requests)

    def import_members(self, import_id: str, data: bytes) -> ImportAnswer:
        return self.shard.import_members(import_id, data)

    def set_status(self, member_id: str, action: str, reason: str) -> MemberSummary:
        return self.shard.set_status(member_id, action, reason)

    def set_tags(self, member_id: str, add: list[str], remove: list[str], reason: str) -> MemberSummary:
        return self.shard.set_tags(member_id, add, remove, reason)

    def set_tier(self, member_id: str, tier: str, reason: str) -> MemberSummary:
        return self.shard.set_tier(member_id, tier, reason)

    def adjust(self, member_id: str, request_id: str, points: int, reason: str
               ) -> tuple[TxnResult, MemberSummary | None]:
        return self.shard.adjust(member_id, request_id, points, reason)

    def vshard_export(self, vshards: list[int], virtual_shards: int) -> bytes:
        return shard_moves.export(self.shard, vshards, virtual_shards)

    def vshard_take_in(self, data: bytes, virtual_shards: int) -> int:
        return shard_moves.take_in(self.shard, data, virtual_shards)

    def vshard_keep(self, vshards: list[int]) -> None:
        shard_moves.keep(self.shard, vshards)

    def vshard_let_go(self, vshards: list[int], virtual_shards: int) -> int:
        return shard_moves.let_go(self.shard, vshards, virtual_shards)

    def close(self) -> None:
        with self._opening:  # a retry on a reads thread must not open it again after this
            self._stopped = True
            if self._shard is not None:
                self._shard.close()


def _timed(step: Callable[[int], tuple], limit: int) -> tuple:
    """A step's answer with the seconds it worked in this process appended."""
    started = time.perf_counter()
    return *step(limit), time.perf_counter() - started
