"""The outbox: one shard's events for notifiers, keyed by a per-shard sequence, written in the
same LMDB transaction as the change that caused them, so an event exists exactly when its
change does. Sequences only grow: pruning remembers the last one it removed, so numbering
goes on past it even when every event was pruned.

Its database (`events`) is additive: an older data folder gains it, empty, when it is opened."""

import struct
from typing import Any

import msgspec

from engine.notices import Notice
from engine.types import Day

__all__ = ["DATABASE", "PRUNED_KEY", "StoredEvent", "append", "newest", "prune", "read_after"]

DATABASE = b"events"
PRUNED_KEY = "events_pruned"
"""Meta key: the highest sequence pruned (0: none). Positions before it are out of range."""

_SEQ = struct.Struct(">Q")


class StoredEvent(msgspec.Struct, array_like=True, gc=False):
    written: Day
    """The business day of the commit: what retention counts."""
    at_ms: int
    """Wall-clock time of the commit: how far behind a subscriber is."""
    kind: str
    member_id: str
    day: Day
    detail: str


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(StoredEvent).decode


def append(txn: Any, db: Any, notices: list[Notice], written: Day, at_ms: int, pruned: int) -> int:
    """Write the notices after the newest event (or the last pruned one); returns the newest sequence."""
    cursor = txn.cursor(db=db)
    seq = max(_SEQ.unpack(cursor.key())[0] if cursor.last() else 0, pruned)
    rows = []
    for notice in notices:
        seq += 1
        rows.append((_SEQ.pack(seq), _encode(StoredEvent(written, at_ms, notice.kind, notice.member_id, notice.day,
                                                          notice.detail))))
    if cursor.putmulti(rows, append=True)[1] != len(rows):  # append skips a key it finds, silently
        raise RuntimeError(f"event sequences after {seq - len(rows)} are taken")
    return seq


def newest(txn: Any, db: Any, pruned: int) -> int:
    cursor = txn.cursor(db=db)
    return max(_SEQ.unpack(cursor.key())[0] if cursor.last() else 0, pruned)


def read_after(txn: Any, db: Any, after: int, limit: int, kinds: frozenset[str]
               ) -> tuple[list[tuple[int, StoredEvent]], int]:
    """Up to `limit` events after `after` whose kind is in `kinds` (all when empty), and the
    sequence read up to: a subscriber's place moves past the events it did not ask for too."""
    found: list[tuple[int, StoredEvent]] = []
    through = after
    cursor = txn.cursor(db=db)
    if not cursor.set_range(_SEQ.pack(after + 1)):
        return found, through
    for key, value in cursor:
        through = _SEQ.unpack(key)[0]
        event = _decode(value)
        if not kinds or event.kind in kinds:
            found.append((through, event))
            if len(found) >= limit:
                break
    return found, through


def prune(txn: Any, db: Any, before: Day) -> tuple[int, int]:
    """Remove the events committed on business days before `before`, oldest first: (how many,
    the last sequence removed, 0 when none)."""
    cursor = txn.cursor(db=db)
    removed = last = 0
    cursor.first()
    while (key := cursor.key()) and _decode(cursor.value()).written < before:
        last = _SEQ.unpack(key)[0]
        removed += 1
        cursor.delete()  # and on to the next
    return removed, last
