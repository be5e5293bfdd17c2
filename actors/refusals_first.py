"""Under overload, refusals go before the work of the batches let in.

The gateway's one event loop takes gRPC calls one per turn, and a refusal costs it a fraction of
a millisecond; routing a batch that was let in (parsing it, cutting it into its shards' parts)
costs it one to three milliseconds of Python. When a burst of calls meets filling queues, the
batches let in are read while the others still arrive, and their routing held every refusal
behind it: 64 batches let in at once were 100-250 ms of the loop's CPU, and that was the
refusals' p99 (bench/RESULTS.md, "overload: what held the refusals"). So while calls arrive at
queues half full or more, a batch let in waits to be routed until arrivals pause for `quiet`
(counted from the last batch routed too: the calls it held up arrive after it), or until it has
waited `patience`; batches take turns. Otherwise nothing waits.

Nor may a burst let many batches in at once: an overload that met empty queues let 64 in, and
the last refusals of the burst waited for the routing of all of them. At most `reading` batches
let in are being read or routed at a time; a call arriving meanwhile is refused at once, as at
a full queue, and counts as a call arriving at a full queue: the batches let in wait for the
burst to be refused. Each is routed within milliseconds of being read, so in steady state this
only shapes bursts: the shards' queues still fill, a few batches at a time."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from engine.errors import OverloadedError

__all__ = ["RefusalsFirst"]


class RefusalsFirst:
    QUIET = 0.002
    """A pause this long between arrivals means the calls waiting to be taken have been taken:
    each costs the loop about 0.3 ms."""
    PATIENCE = 0.1
    """The most a batch let in waits for that pause, from when it was read: about the time the
    loop takes to refuse a burst of 200 calls. Its acknowledgement, behind a queue half full,
    takes seconds anyway."""
    READING = 8
    """Batches let in and not yet routed, at most: what was a shard's whole group when this was
    chosen (actors/lanes.py groups up to 32 now), and a refusal waits for at most this many
    routings (2-4 ms each)."""

    def __init__(self, quiet: float = QUIET, patience: float = PATIENCE,
                 clock: Callable[[], float] = time.monotonic, reading: int = READING) -> None:
        self.quiet, self.patience, self.clock = quiet, patience, clock
        self.last_arrival = self.last_route = float("-inf")
        self._turns = asyncio.Lock()
        self.max_reading, self.reading = reading, 0

    def let_in(self) -> None:
        """A batch let in on its metadata, to be read and routed (`finished` when it is, or when
        it is not after all); OverloadedError while `max_reading` such batches are."""
        if (refusal := self.refusal()) is not None:
            raise refusal

    def refusal(self) -> OverloadedError | None:
        """`let_in` without raising: None when the batch is let in, else why not. A refusal is
        the gateway's commonest answer under overload, and a raised exception costs it more."""
        if self.reading >= self.max_reading:
            self.arrived()  # a burst: the batches let in are routed once the calls behind them are refused
            return OverloadedError(f"the gateway is reading {self.reading} batches let in just now; nothing "
                                   f"was applied; send again shortly")
        self.reading += 1
        return None

    def finished(self) -> None:
        self.reading -= 1

    def arrived(self) -> None:
        """A call came to queues half full or more: more may be waiting to be taken."""
        self.last_arrival = self.clock()

    @asynccontextmanager
    async def turn(self, read_at: float) -> AsyncIterator[None]:
        """Routes a batch read at `read_at` (this clock) once arrivals pause, or once it has
        waited `patience`; the next batch takes its turn after this one is routed."""
        async with self._turns:
            while (wait := self._wait(read_at)) > 0:
                await asyncio.sleep(wait)
            try:
                yield
            finally:
                self.last_route = self.clock()

    def _wait(self, read_at: float) -> float:
        now = self.clock()
        if now - self.last_arrival >= self.patience:  # no call came to a full queue lately
            return 0.0
        calm_at = max(self.last_arrival, self.last_route) + self.quiet
        return max(0.0, min(calm_at, read_at + self.patience) - now)
