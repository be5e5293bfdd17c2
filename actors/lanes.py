"""A lane per shard: calls leave in the order they were queued, with a bounded number in
flight, and a full queue refuses at once instead of growing memory."""

import asyncio
from typing import Any

from engine.errors import OverloadedError

__all__ = ["Lane"]


class Lane:
    """Ordering contract: `send` queues synchronously, and one dispatcher submits in queue
    order, so two batches that touch the same member reach the shard in arrival order."""

    def __init__(self, actor: Any, shard: int, in_flight: int = 4, queue_limit: int = 64) -> None:
        self.actor = actor
        self.shard = shard
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=queue_limit)
        self.slots = asyncio.Semaphore(in_flight)
        self.in_flight = 0
        self._finishing: set[asyncio.Task] = set()
        self._task = asyncio.get_running_loop().create_task(self._dispatch())

    def send(self, method: str, *args: Any) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait((method, args, future))
        except asyncio.QueueFull:
            raise OverloadedError(f"shard {self.shard} has {self.queue.qsize()} calls waiting; "
                                  f"send again shortly") from None
        return future

    async def _dispatch(self) -> None:
        while True:
            method, args, future = await self.queue.get()
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

    def waiting(self) -> int:
        return self.queue.qsize()

    def close(self) -> None:
        self._task.cancel()
