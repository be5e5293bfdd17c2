"""A shard's side of events out: what its commits wrote to the outbox (counted for metrics),
and pages of it for subscribers, read from LMDB so a subscriber far behind costs memory for
one page, never a buffer that grows."""

from collections import Counter

import msgspec

from engine.notices import Notice
from storage.outbox import Run
from storage.shard_store import ShardStore

__all__ = ["PAGE_BYTES", "EventPage", "OutboxState", "ShardOutbox", "decode_page"]

PAGE_BYTES = 90_000
"""A page stays under the 100 KiB that Ray returns inline: a larger one would go through the
object store, which costs more than a second call."""


class EventPage(msgspec.Struct, array_like=True, gc=False):
    run: Run
    """The events, oldest first, as `Event` messages without their position."""
    newest: int
    pruned: int
    """The last sequence pruned: a page asked for after an older one has missed events."""


class OutboxState(msgspec.Struct, array_like=True):
    pruned: int
    """The last sequence pruned: a subscriber placed before it has missed events."""
    newest: int
    written: dict[str, int]
    """Events written by kind since the last time this was asked."""
    removed: int
    """Events pruned since the last time this was asked."""


_encode = msgspec.msgpack.Encoder().encode
decode_page = msgspec.msgpack.Decoder(EventPage).decode


class ShardOutbox:
    def __init__(self, store: ShardStore) -> None:
        self.store = store
        self._written: Counter[str] = Counter()
        self._removed = 0

    def committed(self, notices: list[Notice]) -> None:
        self._written.update(n.kind for n in notices)

    def pruned(self, removed: int) -> None:
        self._removed += removed

    def page(self, after: int, limit: int, kinds: list[str]) -> bytes:
        """MessagePack bytes of an EventPage after sequence `after` (-1: from the oldest held):
        Ray moves them as they are."""
        pruned, newest = self.store.events_bounds()
        start = pruned if after < 0 else after  # -1: from the oldest event held
        run = self.store.events_after(start, limit, PAGE_BYTES, frozenset(kinds))
        return _encode(EventPage(run, newest, pruned))

    def state(self, take: bool = True) -> OutboxState:
        """With `take`, the counts are handed over (to the one gateway that records them) and start again."""
        pruned, newest = self.store.events_bounds()
        state = OutboxState(pruned, newest, dict(self._written), self._removed)
        if take:
            self._written, self._removed = Counter(), 0
        return state
