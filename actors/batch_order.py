"""Order per member across failures: once a stream's batch fails on a shard, nothing later from
that stream is applied on that shard. Each part of a batch names its stream, its number in
the stream, and the stream's previous batch with a part on the same shard; a shard applies a
part only when it committed that previous part itself, in this process. A part whose
predecessor failed, or was committed before the shard restarted, is refused, and so is every
later one of that stream: the client, which knows the order, sends them again on a new stream."""

import asyncio
import uuid
from collections import OrderedDict

import msgspec

from engine.errors import OutOfOrderError

__all__ = ["BatchPart", "Stream", "StreamOrder"]


class BatchPart(msgspec.Struct, array_like=True):
    """The transactions of one batch that belong to one shard, and where the batch stands in its stream."""

    data: bytes
    """Those transactions as a serialised TransactionBatch, in the batch's order (actors/batch_wire.py)."""
    stream: str = ""
    """Empty for a batch sent alone (SubmitBatch): it waits for nothing."""
    number: int = 0
    after: int = 0
    """The number of the stream's previous batch with a part on this shard; 0 when there is none."""
    batch_id: str = ""
    """The client's id of the batch: a resend of it is answered as it was (actors/grouping.py)."""


class Stream:
    """One StreamBatches call as the gateway numbers its batches for the shards."""

    def __init__(self) -> None:
        self.id = uuid.uuid4().hex
        self.number = 0
        self.last_on: dict[int, int] = {}
        """The number of the last batch with a part on each shard."""
        self.failed = False
        """A part of it failed: the shards' chains no longer say enough once a virtual shard can
        move (its members' next part would go to a shard that never saw the failure), so nothing
        more of this stream is sent anywhere; the client resends on a new stream."""

    def place_batch(self, shards: list[int]) -> dict[int, tuple[str, int, int]]:
        """The next batch, with parts on `shards`: (stream, number, after) for each part."""
        if self.failed:
            raise OutOfOrderError("not applied: an earlier batch of this stream failed; send again from the first "
                                  "unanswered batch, in order, on a new stream")
        self.number += 1
        places = {shard: (self.id, self.number, self.last_on.get(shard, 0)) for shard in shards}
        self.last_on.update(dict.fromkeys(shards, self.number))
        return places

    def watch(self, sent: asyncio.Future) -> None:
        """Mark the stream failed as soon as this part's call fails."""
        sent.add_done_callback(self._answered)

    def _answered(self, sent: asyncio.Future) -> None:
        if not sent.cancelled() and sent.exception() is not None:
            self.failed = True


class StreamOrder:
    """What each stream last committed on this shard. Streams that went quiet are forgotten
    beyond `limit`; a forgotten stream's next part is refused, which is safe (it is resent)."""

    def __init__(self, shard: int, limit: int = 10_000) -> None:
        self.shard = shard
        self.limit = limit
        self.last: OrderedDict[str, int] = OrderedDict()

    def refusals(self, parts: list[BatchPart], other: list[Exception | None] | None = None
                 ) -> list[Exception | None]:
        """For parts to be committed together, in order: why each may not be (None: it may).
        `other`: a refusal for other reasons, for each part; the stream's next part then is refused."""
        last: dict[str, int] = {}
        refused: list[Exception | None] = []
        for index, part in enumerate(parts):
            committed = last.get(part.stream, self.last.get(part.stream, 0))
            if part.after and committed != part.after:
                refused.append(OutOfOrderError(
                    f"not applied on shard {self.shard}: the stream's batch before it there was not committed "
                    f"(it failed, or the shard restarted); send again from the first unanswered batch, in order"))
            elif other is not None and other[index] is not None:
                refused.append(other[index])
            else:
                refused.append(None)
                last[part.stream] = part.number
        return refused

    def committed(self, parts: list[BatchPart]) -> None:
        for part in parts:
            if part.stream:
                self.last[part.stream] = part.number
                self.last.move_to_end(part.stream)
        while len(self.last) > self.limit:
            self.last.popitem(last=False)
