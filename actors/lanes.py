"""A lane per shard: writes leave in the order they were queued, with a bounded number in
flight, and a full queue refuses at once instead of growing memory. Urgent calls (reads,
steps of long jobs) go ahead of queued writes."""

import asyncio
import itertools
from typing import Any

from engine.errors import OverloadedError

__all__ = ["Lane"]

URGENT, NORMAL = 0, 1


class Lane:
    """Ordering contract: writes are submitted in the order `send` queued them, so two batches
    that touch the same member reach the shard in arrival order. An urgent call overtakes queued
    writes (never one already submitted): a read still sees every acknowledged batch, and a
    midnight step between two batches is as valid as before or after them."""

    def __init__(self, actor: Any, shard: int, in_flight: int = 4, queue_limit: int = 64) -> None:
        self.actor = actor
        self.shard = shard
        self.queue: asyncio.PriorityQueue = asyncio.PriorityQueue()
        self.queue_limit = queue_limit
        self.waiting = 0
        """Writes queued, not yet submitted."""
        self.slots = asyncio.Semaphore(in_flight)
        self.in_flight = 0
        self._order = itertools.count()
        self._finishing: set[asyncio.Task] = set()
        self._task = asyncio.get_running_loop().create_task(self._dispatch())

    def full(self) -> bool:
        return self.waiting >= self.queue_limit

    def send(self, method: str, *args: Any, urgent: bool = False) -> asyncio.Future:
        if not urgent and self.full():
            raise OverloadedError(f"shard {self.shard} has {self.waiting} batches waiting; send again shortly")
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((URGENT if urgent else NORMAL, next(self._order), method, args, future))
        if not urgent:
            self.waiting += 1
        return future

    async def _dispatch(self) -> None:
        while True:
            priority, _, method, args, future = await self.queue.get()
            if priority == NORMAL:
                self.waiting -= 1
            await self.slots.acquire()
            self.in_flight += 1
            reference = getattr(self.actor, method).remote(*args)
            task = asyncio.ensure_future(self._finish(reference, future))
            self._finishing.add(task)  # asyncio keeps only weak references to tasks
            task.add_done_callback(self._finishing.discard)

    async def _finish(self, reference: Any, future: asyncio.Future) -> None:
        try:
            result = await reference
        except BaseException as error:  # every failure belongs to the caller
            if not future.cancelled():
                future.set_exception(error)
        else:
            if not future.cancelled():
                future.set_result(result)
        finally:
            self.in_flight -= 1
            self.slots.release()

    def close(self) -> None:
        self._task.cancel()
