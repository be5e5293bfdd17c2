"""A shard's side of events out: where its outbox stands, and pages of it for subscribers, read
from LMDB so a subscriber far behind costs memory for one page, never a buffer that grows."""

import msgspec

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
    pruned_asked: int
    """The last sequence pruned of the kinds asked for (all kinds: `pruned`): one asked for after
    an older one has missed events it asked for; the other kinds' pruned since cost it nothing."""


class OutboxState(msgspec.Struct, array_like=True):
    pruned: int
    """The last sequence pruned: a subscriber placed before it has missed events."""
    newest: int


_encode = msgspec.msgpack.Encoder().encode
decode_page = msgspec.msgpack.Decoder(EventPage).decode


class ShardOutbox:
    def __init__(self, store: ShardStore) -> None:
        self.store = store

    def page(self, after: int, limit: int, kinds: list[str]) -> bytes:
        """MessagePack bytes of an EventPage after sequence `after` (-1: from the oldest held):
        Ray moves them as they are."""
        run, newest, pruned, asked = self.store.events_page(after, limit, PAGE_BYTES, frozenset(kinds))
        return _encode(EventPage(run, newest, pruned, asked))

    def state(self) -> OutboxState:
        """Where the outbox stands (its counts are the shard's `Counted`, recorded by the coordinator)."""
        return OutboxState(*self.store.events_bounds())
