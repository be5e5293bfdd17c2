"""Events out, on the gateway's side: positions, the feed of what every shard's outbox holds,
and a subscription that merges the shards' outboxes page by page.

Contracts: events of one shard reach a subscriber in the shard's order (a member lives in one
shard, so in order per member); every event carries the position right after it, so a
subscriber that resumes from the last position it processed gets everything after, at least
once. A subscriber holds one page per shard at most: one that does not read falls behind and
catches up from LMDB later, and ingestion never waits for it."""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from actors.metrics import Metrics
from actors.shard_outbox import EventPage, OutboxState, decode_page
from engine.errors import InvalidRequestError, PatronError, ShardUnavailableError
from engine.notices import NOTICE_KINDS
from storage.outbox import Run, varint

__all__ = ["EventFeed", "OutOfRangeError", "Subscription", "format_position", "parse_position"]

log = logging.getLogger("patron.events")
_PREFIX = "v1:"
PAGE = 5000
"""Events per shard read at most; the shard stops sooner at actors.shard_outbox.PAGE_BYTES."""
_MOST_SEQ = (1 << 64) - 2
"""The largest position a subscriber may name: storage/outbox.py keys events by 64 bits, and
reading after a position asks for the one after it."""
_POSITION_TAG = b"\n"
"""`Event.position`: field 1, length-delimited."""


class OutOfRangeError(PatronError):
    """Raised when a subscriber's position is older than what is kept (or ahead of what a shard
    holds, after a restore); `oldest` is the position to resume from."""

    def __init__(self, message: str, oldest: str) -> None:
        super().__init__(message)
        self.oldest = oldest


def format_position(seqs: list[int]) -> str:
    """Opaque to subscribers: one sequence per shard."""
    return _PREFIX + ".".join(map(str, seqs))


def parse_position(text: str, shards: int, fewest: int = 0, most: int = 0) -> list[int] | None:
    """None for an empty position (from the oldest event held). A position given before shards
    were added names `fewest` (the shards then) or more: the others' events are read from their first.
    One given before `patron restore` took the folder back to fewer shards names up to `most`: the
    shards it took away have none now, and added again they number past it (Coordinator.event_floors)."""
    if not text:
        return None
    try:
        if not text.startswith(_PREFIX):
            raise ValueError
        parts = text[len(_PREFIX):].split(".")
        if not all(part.isascii() and part.isdigit() for part in parts):  # int() takes " 0" and "0_0" too
            raise ValueError
        seqs = [int(part) for part in parts]
        if max(seqs) > _MOST_SEQ:  # an outbox numbers its events in 64 bits
            raise ValueError
    except ValueError:
        example = format_position([0] * shards)
        raise InvalidRequestError(f"after: expected a position patron gave (such as {example!r}), "
                                  f"got {text[:80]!r}") from None
    if not (fewest or shards) <= len(seqs) <= max(shards, most) or min(seqs) < 0:
        raise InvalidRequestError(f"after: the position {text[:80]!r} is not one of this server's {shards} shards")
    return seqs[:shards] + [-1] * (shards - len(seqs))  # from before shards were added: theirs from the oldest


def check_kinds(kinds: list[str]) -> list[str]:
    unknown = [kind for kind in kinds if kind not in NOTICE_KINDS]
    if unknown:
        raise InvalidRequestError(f"kinds: expected any of {', '.join(NOTICE_KINDS)}, got {unknown[0]!r}")
    return sorted(set(kinds))


class EventFeed:
    """What every shard's outbox holds, asked of each shard every `interval` seconds (a small
    urgent call): a wake-up for subscribers waiting for news (the counts are the coordinator's)."""

    def __init__(self, lanes: list[Any], metrics: Metrics, interval: float = 0.2) -> None:
        self.lanes = lanes
        self.metrics = metrics
        self.interval = interval
        self.pruned = [0] * len(lanes)
        self.newest = [0] * len(lanes)
        self._news = asyncio.Condition()
        self._task: asyncio.Task | None = None
        self._subscriptions = 0
        self.stopping = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._poll())

    async def stop_streams(self) -> None:
        """Every subscription ends at its next turn (UNAVAILABLE, to resume from its last position):
        a stream never ends on its own, and gRPC's grace for the calls in flight waited 30 s for an
        idle subscriber at every stop (an outside probe)."""
        self.stopping = True
        async with self._news:
            self._news.notify_all()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        rounds = 0
        while True:
            if self._subscriptions or rounds % 5 == 0:  # every second when nobody listens: a newcomer's start
                with contextlib.suppress(Exception):
                    await self.refresh()
            rounds += 1
            await asyncio.sleep(self.interval)

    async def refresh(self) -> None:
        self.fit()
        answers = await asyncio.gather(*(lane.send("events_state", urgent=True) for lane in self.lanes),
                                       return_exceptions=True)
        for shard, state in enumerate(answers):
            if isinstance(state, OutboxState):
                self.saw(shard, state.pruned, state.newest)
        async with self._news:
            self._news.notify_all()

    def fit(self) -> None:
        """Shards added while serving (actors/resharding.py) have outboxes too."""
        grown = len(self.lanes) - len(self.newest)
        self.pruned += [0] * grown
        self.newest += [0] * grown

    def saw(self, shard: int, pruned: int, newest: int) -> None:
        self.pruned[shard] = max(self.pruned[shard], pruned)
        self.newest[shard] = newest  # may go back: a restored checkpoint

    async def wait_past(self, cursor: list[int], timeout: float) -> None:
        """Until some shard holds an event past `cursor`, patron is stopping, or `timeout` seconds."""
        async with self._news:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._news.wait_for(
                    lambda: self.stopping or any(n > c for n, c in zip(self.newest, cursor, strict=False))), timeout)

    @property
    def subscribers(self) -> int:
        return self._subscriptions

    def subscribed(self, change: int) -> None:
        self._subscriptions += change
        self.metrics.event_subscribers.set(self._subscriptions)


class Subscription:
    """One subscriber's place in every shard's outbox, and the pages read ahead of it."""

    def __init__(self, feed: EventFeed, after: list[int] | None, kinds: list[str]) -> None:
        self.feed = feed
        self.kinds = kinds
        self.read = list(after) if after is not None else [-1] * len(feed.lanes)
        """Where the next page of each shard starts (-1: the oldest held)."""
        self.delivered = list(self.read)
        self.next_at_ms = 0
        """Commit time of the oldest event not yet delivered, to a page (0: none known): the lag."""

    def _fit(self) -> None:
        """Shards added since the subscription started: read from their first event (a new shard's
        outbox starts empty, so position 0 is before everything it will hold)."""
        self.feed.fit()
        grown = len(self.feed.lanes) - len(self.read)
        self.read += [0] * grown
        self.delivered += [0] * grown

    def lag_seconds(self) -> float:
        return max(0.0, time.time() - self.next_at_ms / 1000) if self.next_at_ms else 0.0

    async def batches(self) -> AsyncIterator[list[bytes]]:
        """For ever, lists of `Event` messages ready to send, each with the position right after
        it; in order per shard."""
        reading: dict[int, asyncio.Task] = {s: self._read(s) for s in range(len(self.read))}
        try:
            await asyncio.wait(reading.values())  # every shard's first page: each position names every shard
            while True:
                if self.feed.stopping:
                    raise ShardUnavailableError("patron is stopping: subscribe again from the last position received "
                                                "once it is back; no event is lost")
                if not reading:
                    self._fit()
                    self.next_at_ms = 0
                    await self.feed.wait_past(self.read, timeout=1.0)
                    self._fit()  # shards may have been added meanwhile
                    reading = {s: self._read(s) for s, (n, r) in enumerate(zip(self.feed.newest, self.read,
                                                                                strict=True)) if n > r}
                    continue
                done, _ = await asyncio.wait(reading.values(), return_when=asyncio.FIRST_COMPLETED)
                pages = {s: self._checked(s, reading.pop(s).result()) for s, task in list(reading.items())
                         if task in done}
                for shard, page in pages.items():
                    self.read[shard] = page.run.through
                    if self.delivered[shard] < 0:
                        self.delivered[shard] = page.pruned
                    if page.run.through < page.newest:  # read ahead while this page is delivered
                        reading[shard] = self._read(shard)
                for shard, page in pages.items():
                    if page.run.seqs:
                        self.next_at_ms = page.run.first_at_ms
                        yield self._messages(shard, page.run)
                    self.delivered[shard] = page.run.through
        finally:
            for task in reading.values():
                task.cancel()

    def _messages(self, shard: int, run: Run) -> list[bytes]:
        """The run's messages, each with its position in front (field 1): only this shard's
        sequence changes along a run, the rest of the text is made once."""
        seqs = self.delivered
        before = _PREFIX + "".join(f"{seq}." for seq in seqs[:shard])
        after = "".join(f".{seq}" for seq in seqs[shard + 1:])
        messages = []
        for seq, message in zip(run.seqs, run.messages, strict=True):
            position = f"{before}{seq}{after}".encode()
            messages.append(_POSITION_TAG + varint(len(position)) + position + message)
        return messages

    def _read(self, shard: int) -> asyncio.Task:
        call = self.feed.lanes[shard].send("events_page", self.read[shard], PAGE, self.kinds, urgent=True)
        return asyncio.ensure_future(call)

    def _checked(self, shard: int, raw: bytes) -> EventPage:
        page = decode_page(raw)
        self.feed.saw(shard, page.pruned, page.newest)
        after = self.read[shard]
        missed = page.pruned_asked  # events of other kinds pruned since `after` were not this subscriber's
        if after >= 0 and (after < missed or after > page.newest):
            oldest = format_position(self.feed.pruned)
            reason = (f"events after {after} of shard {shard} were pruned (kept: after {page.pruned})"
                      if after < missed else f"shard {shard} holds events up to {page.newest} only, not "
                      f"{after} (a restored data folder?)")
            raise OutOfRangeError(f"the position is out of range: {reason}; the oldest position still held "
                                  f"is {oldest}", oldest)
        return page
