"""Moving virtual shards between shards while batches flow, and adding shards (`patron shards
move`, `patron shards rebalance`). The coordinator moves one virtual shard at a time:

1. writes for its members wait at serve's gateway and at every node gateway (--gateway-per-node),
   in arrival order (`held`, `free`), while what was already sent to the source drains: serve's
   gateway queues the export in the source's lane behind it, and each node gateway answers once
   what it sent to the source has been answered; a node gateway that does not answer in time
   fails the move, undone;
2. the source exports the virtual shard's records from one snapshot, and from then on refuses
   writes for its members (a stale route cannot apply one there: actors/shard_moves.py);
3. the destination writes them in one commit (ledgers appended at its own positions);
4. the layout naming the destination as owner is written to disk (atomically), then used, and
   sent to every node gateway;
5. the writes that waited leave, to the destination, in the order they arrived;
6. the source deletes its copy, in one commit.

A note in the data folder names the move from step 2 until step 6 is done: after a crash at any
point, the next start deletes the copy held by the shard the layout on disk does not name, so
exactly one copy is in force, and it holds every acknowledged write (docs/decisions.md)."""

import asyncio
import logging
import time
from typing import Any

import msgspec

from actors.job_errors import job_error
from actors.lanes import Holds, Lane
from engine.calendar import parse_day
from engine.errors import InvalidRequestError, OverloadedError, ReshardBusyError
from storage import vshard_move
from storage.vshard_move import MoveNote

__all__ = ["ReshardProgress", "Resharding", "even_moves"]

log = logging.getLogger("patron.resharding")

DAYS_APART_PATIENCE = 1800.0
"""Seconds a move waits for its two shards to be on one business day: a midnight run cut short
(a shard died in it) is finished once the shard is back, a date at a time."""


class _NotYet(Exception):  # noqa: N818 - a condition `_move_soon` waits out, not an error anyone sees
    """The virtual shard's shard and the one it would go to are on different business days, or one
    of them runs a job."""


class ReshardProgress(msgspec.Struct):
    """A move or rebalance, as it goes and once it is over."""

    shards: int
    planned: int
    """Virtual shards to move."""
    done: int = 0
    members_moved: int = 0
    vshard: int = -1
    """Moving now, to `to` (-1: between moves)."""
    to: int = -1
    running: bool = True
    error: str = ""
    started: float = msgspec.field(default_factory=time.monotonic)
    seconds: float = 0.0


def even_moves(owners: list[int], shards: int) -> list[tuple[int, int]]:
    """(virtual shard, destination) for each move that makes the layout even over `shards`: each
    shard owns its share (differing by one at most), and a virtual shard moves only off a shard
    that owns more than its share, to one that owns less, so as few move as can."""
    share = [len(owners) // shards + (1 if shard < len(owners) % shards else 0) for shard in range(shards)]
    owned: list[list[int]] = [[] for _ in range(shards)]
    for vshard, owner in enumerate(owners):
        owned[owner].append(vshard)
    spare = [vshard for shard in range(shards) for vshard in owned[shard][share[shard]:]]
    moves = []
    for shard in range(shards):
        for _ in range(share[shard] - len(owned[shard])):
            moves.append((spare.pop(0), shard))
    return moves


class Resharding(Holds):
    """The coordinator's moves of virtual shards. One move or rebalance runs at a time. Its holds
    are serve's gateway's; node gateways (`others`) hold and route as it tells them."""

    def __init__(self, coordinator: Any) -> None:
        """`coordinator`: actors/coordinator.py's, which holds the layout, lanes and jobs' lock."""
        super().__init__(coordinator)
        self.coordinator = coordinator
        self.others: Any = None
        """With --gateway-per-node, the node gateways (actors/node_gateway.py `NodeGateways`)."""
        self.progress: ReshardProgress | None = None
        self._task: asyncio.Task | None = None
        self._apart_said = False

    # -- starting ------------------------------------------------------------------------------

    def start_move(self, vshard: int, to: int) -> ReshardProgress:
        layout = self.coordinator.layout
        if not 0 <= vshard < layout.virtual_shards:
            raise InvalidRequestError(f"virtual_shard: expected 0 to {layout.virtual_shards - 1}, got {vshard}")
        if not 0 <= to < layout.shards:
            raise InvalidRequestError(f"to: expected a shard from 0 to {layout.shards - 1}, got {to} "
                                      f"(add shards with patron shards rebalance --shards N)")
        return self._start(layout.shards, [(vshard, to)] if layout.owners[vshard] != to else [])

    def start_rebalance(self, shards: int) -> ReshardProgress:
        layout = self.coordinator.layout
        shards = shards or layout.shards
        if shards < layout.shards:
            raise InvalidRequestError(f"shards: this folder has {layout.shards} shards; patron adds shards but "
                                      f"does not remove them, so expected {layout.shards} or more, got {shards}")
        if shards > layout.virtual_shards:
            raise InvalidRequestError(f"shards: at most {layout.virtual_shards} (one virtual shard each), got {shards}")
        return self._start(shards, even_moves(layout.owners, shards), rebalance=True)

    def tell_unfinished_rebalance(self) -> None:
        """At the start: a rebalance the last run did not finish is told (GetStatus `resharding`,
        the log), so an uneven layout is not taken for the one asked for."""
        note = vshard_move.read_rebalance_note(self.coordinator.folder.root)
        if note is None:
            return
        self.progress = ReshardProgress(note.shards, note.planned, running=False, seconds=0.0, error=(
            f"a rebalance over {note.shards} shards did not finish (patron stopped, or a move failed, before its last "
            f"move): "
            f"run `patron shards rebalance --shards {note.shards}` to go on"))
        log.warning(self.progress.error)

    def _start(self, shards: int, moves: list[tuple[int, int]], rebalance: bool = False) -> ReshardProgress:
        if self._task is not None and not self._task.done():
            raise ReshardBusyError("virtual shards are being moved already (GetStatus shows how far); "
                                   "start again when that is done")
        root = self.coordinator.folder.root
        if rebalance and (moves or shards > self.coordinator.layout.shards):
            vshard_move.write_rebalance_note(root, vshard_move.RebalanceNote(shards, len(moves)))
        elif rebalance:  # even already: one cut short has nothing left to do
            vshard_move.clear_rebalance_note(root)
        self.progress = progress = ReshardProgress(shards, len(moves))
        self._task = self.coordinator._background(self._run(progress, shards, moves, rebalance),
                                                  "the move of virtual shards")
        return progress

    async def _run(self, progress: ReshardProgress, shards: int, moves: list[tuple[int, int]],
                   rebalance: bool) -> None:
        try:
            if shards > self.coordinator.layout.shards:
                await self._add_shards(shards)
            for vshard, to in moves:
                progress.vshard, progress.to = vshard, to
                progress.members_moved += await self._move_soon(vshard, to)
                progress.done += 1
                self.coordinator.metrics.vshards_moved.inc()
            if rebalance:
                vshard_move.clear_rebalance_note(self.coordinator.folder.root)
        except Exception as error:
            progress.error = job_error(error)
            raise
        finally:
            progress.running, progress.vshard, progress.to = False, -1, -1
            progress.seconds = time.monotonic() - progress.started
            log.info("virtual shards moved", extra={"moved": progress.done, "planned": progress.planned,
                                                     "members": progress.members_moved, "error": progress.error})

    # -- moving ------------------------------------------------------------------------------

    async def _move_soon(self, vshard: int, to: int, tries: int = 20) -> int:
        failed, began = 0, time.monotonic()
        while True:
            try:
                moved = await self.move(vshard, to)
            except _NotYet as apart:
                if time.monotonic() - began > DAYS_APART_PATIENCE:
                    raise ReshardBusyError(f"virtual shard {vshard} did not move: {apart} for "
                                           f"{DAYS_APART_PATIENCE:.0f} s; start again once `patron status` shows "
                                           f"every shard on one business day, without a job") from None
                await asyncio.sleep(1.0)
                continue
            if moved is not None:
                return moved
            failed += 1
            if failed == tries:
                raise ReshardBusyError(f"virtual shard {vshard} did not move: a write failed on its shard each of "
                                       f"{tries} times it was about to (see the logs); start again when it is fixed")
            await asyncio.sleep(0.5)

    async def move(self, vshard: int, to: int) -> int | None:
        """Move one virtual shard (steps 1 to 6 above); returns how many members moved, or None when
        a write failed on the source just before the export: a stream's later batches must then be
        refused there, as they would be without the move (actors/batch_order.py), so the move is
        undone, to be tried again."""
        coordinator = self.coordinator
        root, virtual_shards = coordinator.folder.root, coordinator.layout.virtual_shards
        async with coordinator.exclusive:  # no midnight run, publish or checkpoint meanwhile
            while coordinator.publishing:  # members re-evaluated where they are, first
                await asyncio.sleep(0.2)
            await self.recover()
            source = coordinator.layout.owners[vshard]
            if source == to:
                return 0
            await self._settled(source, to)
            self.hold(frozenset({vshard}))
            try:
                failures = coordinator.lanes[source].failures
                failed_elsewhere = await self.others.hold(source) if self.others is not None else False
                vshard_move.write_note(root, MoveNote(vshard, source, to))
                data = await self._call(source, "vshard_export", [vshard], virtual_shards)
                if failed_elsewhere or coordinator.lanes[source].failures != failures:
                    await self._call(source, "vshard_keep", [vshard])
                    vshard_move.clear_note(root)
                    return None
                members = await self._call(to, "vshard_take_in", data, virtual_shards)
                coordinator.set_owner(vshard, to)
            except BaseException:
                await self.recover()
                raise
            finally:
                self.hold(frozenset())
                if self.others is not None:  # the new layout, and nothing held
                    await self.others.route()
            await self.recover()
        return members

    async def _settled(self, source: int, to: int) -> None:
        """_NotYet unless both shards are on one business day and neither runs a job (one left by a
        midnight run cut short, or a re-evaluation the coordinator no longer waits on: the move was
        refused, and a rebalance stopped part-way: a probe). After a shard died in a midnight
        run, the others are a date ahead until the run is finished: members moved ahead then were
        passed over by it, their tags, expiry and report rows a day late (an outside probe). The
        coordinator finishes it once every shard answers: while one does not, the move fails at
        once rather than wait for what will not come (nor hold the jobs' lock on an unanswered call)."""
        seen = await self.coordinator.status_as_seen()  # each waited for at most a few seconds
        days = [seen[source], seen[to]]
        if not all(status.ready for status in seen):
            raise ReshardBusyError(f"shard {next(s.shard for s in seen if not s.ready)} does not answer ("
                                   f"{next(s.down for s in seen if not s.ready) or 'restarting?'}); nothing moved; "
                                   f"start again once `patron status` shows every shard ready")
        if busy := [status for status in days if status.job]:
            raise _NotYet(f"shard {busy[0].shard} is running its {busy[0].job} job")
        if days[0].business_day != days[1].business_day:
            if not self._apart_said:
                log.warning("moves wait for a midnight run cut short to be finished", extra={
                    "shard": source, "business_day": days[0].business_day, "to": to,
                    "to_business_day": days[1].business_day})
            self._apart_said = True
            raise _NotYet(f"shard {source} is on business day {days[0].business_day} and shard {to} on "
                             f"{days[1].business_day}")
        self._apart_said = False

    async def recover_when_answering(self, answering: set[int]) -> None:
        """A move whose last step failed (its source stopped as it deleted its copy) leaves its note
        and a second copy: deleted once both shards answer, between moves, so that no midnight
        run, publish or checkpoint meets it later (a cluster probe: a checkpoint kept both copies,
        and the members were counted twice until the next move or start)."""
        if self._task is not None and not self._task.done():
            return  # its next move recovers first
        note = vshard_move.read_note(self.coordinator.folder.root)
        if note is None or not {note.source, note.destination} <= answering:
            return
        async with self.coordinator.exclusive:
            await self.recover()

    async def recover(self) -> None:
        """After a move that stopped short (here or before a restart): delete the copy held by
        the shard that does not own the virtual shard, then the note."""
        coordinator = self.coordinator
        root = coordinator.folder.root
        note = vshard_move.read_note(root)
        if note is None:
            return
        owner = coordinator.layout.owners[note.vshard]
        stray = note.destination if owner == note.source else note.source
        if owner == note.source:  # the move is undone: the source takes writes for it again
            await self._call(owner, "vshard_keep", [note.vshard])
        if stray < len(coordinator.lanes):
            gone = await self._call(stray, "vshard_let_go", [note.vshard], coordinator.layout.virtual_shards)
            log.info("a moved virtual shard's other copy deleted", extra={"vshard": note.vshard, "shard": stray,
                                                                          "members": gone})
        vshard_move.clear_note(root)

    async def _call(self, shard: int, method: str, *args: Any) -> Any:
        """A call in the shard's lane, behind the writes queued before it; a full lane is waited for."""
        while True:
            try:
                return await self.coordinator.lanes[shard].send(method, *args)
            except OverloadedError:
                await asyncio.sleep(0.05)

    # -- adding shards -------------------------------------------------------------------------

    async def _add_shards(self, shards: int) -> None:
        """Start the new shards, empty, on the business day of the others; the layout naming
        them (owning nothing yet) is on disk before they start, so a restart starts them too."""
        coordinator, config = self.coordinator, self.coordinator.config
        async with coordinator.exclusive:  # not in the middle of a midnight date or a publish
            days = [parse_day(s.business_day) for s in await coordinator.status() if s.business_day]
            day = min(days) if days else config.start_date or coordinator.today()
            coordinator.set_shards(shards)
            for shard in range(len(coordinator.actors), shards):
                actor = coordinator._spawn(shard, day)
                await actor.status.remote()
                coordinator.actors.append(actor)
                coordinator.lanes.append(Lane(actor, shard, config.in_flight_per_shard, config.queue_per_shard))
            if self.others is not None:  # lanes to the new shards before any virtual shard moves there
                await self.others.route()
        log.info("shards added", extra={"shards": shards})
