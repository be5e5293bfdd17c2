"""A lane per shard: writes leave in the order they were queued, with a bounded number in
flight, and a full queue refuses at once instead of growing memory. Urgent calls (steps of
long jobs, event pages, checkpoints) go ahead of queued writes; reads of committed state
(quotes, cards, coupons, ledgers) do not queue at all. Batches that queued up behind each
other leave together, to be committed at once."""

import asyncio
import time
import zlib
from collections import deque
from collections.abc import Iterable
from typing import Any, NamedTuple

from actors.routing import shard_of
from engine.errors import MovedAwayError, OverloadedError
from storage.folder import Layout

__all__ = ["GROUP_BYTES", "GROUP_LIMIT", "Holds", "Lane", "ShardLanes"]

GROUPED = "apply"
"""The write that may leave with those queued right behind it: the shard takes a list of
payloads and answers a list, each item an answer or the error of that payload alone."""


GROUP_LIMIT = 32
"""Batches queued behind each other that leave as one call and one commit, at most. A commit
rewrites every LMDB page it touches and waits for one `fdatasync`, so the larger the group, the
less of both a transaction pays: with 8 clients keeping 8 batches of 1,000 in flight, 32 against
8 measured 73,000 against 54,000 transactions/s and 15% less CPU a transaction (bench/RESULTS.md,
"Larger group commits"). Bounded so that an urgent call (a midnight step) waits behind at most
one such group. Under sustained overload a refusal's tail follows it (about 49, 26 and 12 ms at
p99 for 32, 16 and 8 on two cores, "A commit's sync behind the next group"): 32 keeps capacity."""

REROUTE_SECONDS = 5.0
"""How long a read that reached the shard its member left waits for its gateway's new route."""
REROUTE_PAUSE = 0.05

GROUP_BYTES = 6 << 20
"""What a group's parts may come to, at most (the first always leaves): a group stays within
what a Ray call carries inline (actors/server.py, INLINE_CALL_BYTES) with room to spare."""


class Call(NamedTuple):
    method: str
    args: tuple
    future: asyncio.Future


class Lane:
    """Ordering contract: writes are submitted in the order `send` queued them, so two batches
    that touch the same member reach the shard in arrival order. An urgent call overtakes queued
    writes (never one already submitted): a read still sees every acknowledged batch, and a
    midnight step between two batches is as valid as before or after them. Batches grouped into
    one call keep their order inside it."""

    def __init__(self, actor: Any, shard: int, in_flight: int = 1, queue_limit: int = 64,
                 group_limit: int = GROUP_LIMIT, group_bytes: int = GROUP_BYTES) -> None:
        self.actor = actor
        self.shard = shard
        self.urgent: deque[Call] = deque()
        self.writes: deque[Call] = deque()
        self._ready = asyncio.Event()
        self.queue_limit = queue_limit
        self.group_limit = group_limit
        self.group_bytes = group_bytes
        self.slots = asyncio.Semaphore(in_flight)
        self.in_flight = 0
        self.reserved = 0
        """Room promised to batches admitted on their metadata and not yet read (`reserve`)."""
        self.call_seconds = 0.0
        """A write's time on the shard, smoothed: how soon a full queue is likely to have room
        (the call in progress ends and the next group leaves the queue). Urgent calls (the event
        feed's polls, midnight steps) are not counted: they do not free the queue's room."""
        self.started: list[float] = []
        """When each call in flight was sent (time.monotonic)."""
        self.failures = 0
        """Calls (or batches of a group) answered with an error: a move of virtual shards off this
        shard watches it (actors/resharding.py)."""
        self.unanswered: set[asyncio.Future] = set()
        """Writes queued or in flight: a move waits for those sent before its hold (`drained`)."""
        self._finishing: set[asyncio.Task] = set()
        self._task = asyncio.get_running_loop().create_task(self._dispatch())

    @property
    def waiting(self) -> int:
        """Writes queued, not yet submitted."""
        return len(self.writes)

    def full(self) -> bool:
        return self.waiting + self.reserved >= self.queue_limit

    def reserve(self) -> None:
        """Room for a batch admitted before its body is read: it counts as queued until `send`
        (reserved=True) takes it or `release` gives it back, so a batch let in is not refused
        once read, and batches arriving meanwhile are refused at once."""
        if self.full():
            raise self.refusal()
        self.reserved += 1

    def release(self) -> None:
        self.reserved -= 1

    def refusal(self) -> OverloadedError:
        """Why a full queue takes no more, with when room is likely (patron-retry-after-ms)."""
        return OverloadedError(f"shard {self.shard} is at its limit of {self.queue_limit} queued batches; "
                               f"nothing was applied; send again shortly", self.room_in())

    def room_in(self) -> float:
        """Seconds until room is likely: a call's smoothed time, or how long the oldest call in
        flight has run when that is longer (room comes no sooner than it ends). Before a batch's
        call had ended, the smoothed time was that of the start-up's small calls, or none: the
        burst that fills empty queues was refused with no useful hint, and its callers came
        back within 0.1 s, into the refusals of the burst (bench/RESULTS.md, "overload: the
        first wave")."""
        return max(self.call_seconds, time.monotonic() - self.started[0]) if self.started else self.call_seconds

    def read(self, method: str, *args: Any) -> Any:
        """A read of committed state, straight to the shard's reads group: no slot, no queue;
        it runs beside the write in progress and sees every batch acknowledged before it
        (actors/committed_reads.py)."""
        return getattr(self.actor, method).remote(*args)

    def send(self, method: str, *args: Any, urgent: bool = False, reserved: bool = False) -> asyncio.Future:
        if reserved:
            self.release()
        elif not urgent and self.full():
            raise self.refusal()
        future = asyncio.get_running_loop().create_future()
        (self.urgent if urgent else self.writes).append(Call(method, args, future))
        if not urgent:
            self.unanswered.add(future)
            future.add_done_callback(self.unanswered.discard)
        self._ready.set()
        return future

    async def drained(self) -> None:
        """Once every write sent before this call has been answered (committed, or failed)."""
        if self.unanswered:
            await asyncio.wait(list(self.unanswered))

    async def _dispatch(self) -> None:
        while True:
            await self.slots.acquire()
            while not (self.urgent or self.writes):
                self._ready.clear()
                await self._ready.wait()
            urgent = bool(self.urgent)
            calls = [self.urgent.popleft()] if urgent else self._next_writes()
            self.in_flight += 1
            method = calls[0].method
            if method == GROUPED:
                reference = getattr(self.actor, method).remote([call.args[0] for call in calls])
            else:
                reference = getattr(self.actor, method).remote(*calls[0].args)
            self.started.append(started := time.monotonic())
            task = asyncio.ensure_future(self._finish(reference, calls, method == GROUPED, started, urgent))
            self._finishing.add(task)  # asyncio keeps only weak references to tasks
            task.add_done_callback(self._finishing.discard)

    def _next_writes(self) -> list[Call]:
        """The oldest write, with the batches queued right behind it when it is a batch (up to
        `group_limit` of them and `group_bytes` of parts): a shard that fell behind catches up
        with fewer, larger commits."""
        calls = [self.writes.popleft()]
        if calls[0].method != GROUPED:
            return calls
        size = len(calls[0].args[0])
        while self.writes and self.writes[0].method == GROUPED and len(calls) < self.group_limit:
            size += len(self.writes[0].args[0])
            if size > self.group_bytes:
                break
            calls.append(self.writes.popleft())
        return calls

    async def _finish(self, reference: Any, calls: list[Call], grouped: bool, started: float,
                      urgent: bool = False) -> None:
        try:
            result = await reference
        except BaseException as error:  # every failure belongs to the callers: a group fails whole
            self.failures += len(calls)
            for call in calls:
                if not call.future.cancelled():
                    call.future.set_exception(error)
        else:  # a grouped call answers each batch with its results or its own error
            for call, answer in zip(calls, result if grouped else [result], strict=True):
                if call.future.cancelled():
                    continue
                if grouped and isinstance(answer, BaseException):
                    self.failures += 1
                    call.future.set_exception(answer)
                else:
                    call.future.set_result(answer)
        finally:
            took = time.monotonic() - started
            self.started.remove(started)
            if not urgent:  # the event feed's polls (2 ms each second) said room came in 2 ms
                self.call_seconds = took if not self.call_seconds else 0.8 * self.call_seconds + 0.2 * took
            self.in_flight -= 1
            self.slots.release()

    def close(self) -> None:
        self._task.cancel()


class Holds:
    """The virtual shards whose writes wait at a gateway while they move between shards
    (actors/resharding.py): serve's gateway holds them for the coordinator, a node gateway when
    the coordinator tells it to (actors/node_gateway.py)."""

    def __init__(self, router: "ShardLanes") -> None:
        self.router = router
        self.holding: frozenset[int] = frozenset()
        self._released = asyncio.Event()
        self._released.set()

    def held(self, member_ids: Iterable[str]) -> bool:
        """Whether a write for these members must wait (only while a move is under way)."""
        if not self.holding:
            return False
        virtual_shards, holding = self.router.layout.virtual_shards, self.holding
        return any(zlib.crc32(m.encode()) % virtual_shards in holding for m in member_ids)

    async def released(self) -> None:
        await self._released.wait()

    async def free(self, member_ids: Iterable[str]) -> None:
        """Wait while a write for these members must wait."""
        member_ids = list(member_ids)
        while self.held(member_ids):
            await self.released()

    def hold(self, vshards: frozenset[int]) -> None:
        """Hold these virtual shards' writes from now on, and only these (none: release them)."""
        self.holding = vshards
        if vshards:
            self._released.clear()
        else:
            self._released.set()


class ShardLanes:
    """What a gateway's services ask of the shards: which shard owns a member, and a call or a
    read on one, once no move of its virtual shard holds writes. The coordinator (serve's
    gateway) and a node's gateway both answer this way; each sets `layout`, `lanes` and
    `resharding` (the holds) when it starts."""

    layout: Layout
    lanes: list[Lane]
    resharding: Holds
    behind: frozenset[int] | set[int] = frozenset()
    """Shards behind the rules in force, which get no batch until they have taken them: the
    coordinator keeps it (actors/coordinator.py `_catch_up`) and sends it to node gateways with
    their routes."""

    def shard_for(self, member_id: str) -> int:
        return shard_of(self.layout, member_id)

    async def call(self, shard: int, method: str, *args: Any, urgent: bool = False) -> Any:
        """A call on one shard: in order with its batches, or (urgent) ahead of the queued ones."""
        return await self.lanes[shard].send(method, *args, urgent=urgent)

    async def read(self, shard: int, method: str, *args: Any) -> Any:
        """A read of one shard's committed state: it waits for no write."""
        return await self.lanes[shard].read(method, *args)

    async def read_member(self, member_id: str, method: str, *args: Any) -> Any:
        """A read of one member's committed state on the shard that owns the member. A move can
        hand the member's virtual shard on between routing and reading, and the source deletes
        its copy once the new owner is in use: its answer may then be "unknown member" for one
        who exists (an outside probe), so a read answered by a shard that no longer owns the
        member is asked again of the owner, and one the source says it gave away
        (MovedAwayError) waits for this gateway to be told of the move (`rerouted`)."""
        waited = 0.0
        while True:
            shard = self.shard_for(member_id)
            try:
                answer = await self.read(shard, method, *args)
            except Exception as error:
                waited = await self.after_failed_read(error, shard, member_id, waited)
                continue
            if not self.moved_from(shard, member_id):
                return answer

    async def after_failed_read(self, error: Exception, shard: int, member_id: str, waited: float) -> float:
        """A read of the member at `shard` failed: return (the seconds waited so far) when it is to be
        asked again of the owner, because the member moved, or `shard` says it did (`rerouted`);
        else raise its error."""
        if isinstance(error, MovedAwayError):
            return await self.rerouted(shard, member_id, waited)
        if self.moved_from(shard, member_id):
            return waited
        raise error

    def moved_from(self, shard: int, member_id: str) -> bool:
        """Whether the member's virtual shard has left `shard` (for a read routed there)."""
        return self.shard_for(member_id) != shard

    async def rerouted(self, shard: int, member_id: str, waited: float) -> float:
        """After `shard` said the member's virtual shard moved away: at once when this gateway
        routes it elsewhere already, else once its routes are renewed (a node gateway is told of
        a move after serve's gateway: a route it missed comes with the next status round, about a
        second); MovedAwayError (ABORTED: ask again) after REROUTE_SECONDS. Returns the seconds
        waited so far."""
        while not self.moved_from(shard, member_id):
            if waited >= REROUTE_SECONDS:
                raise MovedAwayError(f"member {member_id!r} moved from shard {shard}, and this gateway was not told "
                                     f"where within {REROUTE_SECONDS:g} s; ask again")
            await asyncio.sleep(REROUTE_PAUSE)
            waited += REROUTE_PAUSE
        return waited
