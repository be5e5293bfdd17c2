"""The outbox: one shard's events for notifiers, keyed by a per-shard sequence, written in the
same LMDB transaction as the change that caused them, so an event exists exactly when its
change does. Sequences only grow: pruning remembers the last one it removed, so numbering
goes on past it even when every event was pruned.

An event is stored as subscribers receive it: a small header (when it was written), then the
`Event` message of proto/patron.proto in its wire form, every field but `position`, which
depends on the subscriber's place in every shard. Reading a page is then copying bytes, and
the gateway only puts the position in front. Events written before this form (a MessagePack
array) are read as if written in it.

Its database (`events`) is additive: an older data folder gains it, empty, when it is opened."""

import struct
from functools import lru_cache
from typing import Any

import msgspec

from engine.calendar import iso
from engine.notices import Notice
from engine.types import Day

__all__ = ["DATABASE", "FLOOR_KEY", "PRUNED_KEY", "PRUNED_KINDS_KEY", "RESTORE_GAP", "Run", "append",
           "event_message", "newest", "prune", "pruned_kinds", "pruned_of", "read_after", "varint"]

DATABASE = b"events"
PRUNED_KEY = "events_pruned"
"""Meta key: the highest sequence pruned (0: none). Positions before it are out of range."""
PRUNED_KINDS_KEY = "events_pruned_kinds"
"""Meta key: the highest sequence pruned of each kind ("*": of any kind, pruned where the kinds
were not kept). A subscriber asking for some kinds missed none at a position past all of theirs."""
FLOOR_KEY = "events_floor"
"""Meta key: the sequence new events number after, at least (0: none). A restored outbox would
number its next events as the events lost with the restore were numbered, and a subscriber
resuming from one of those positions would skip the new ones (an outside probe: 159 of 683);
`patron restore` sets it past every position given before (`RESTORE_GAP`)."""
RESTORE_GAP = 1 << 40
"""Past a restored outbox's newest event when the folder's own newest is unknown: more events than
a shard writes in its life, and 2^24 restores still fit the 64 bits of a sequence."""
_AT_MS = b"0"  # Event field 6 (at_ms), a varint: 6 << 3 | 0

_SEQ = struct.Struct(">Q")
_HEAD = struct.Struct(">Biq")
"""The form (1), the business day of the commit (what retention counts), and its wall-clock
time in ms (how far behind a subscriber is)."""
_FORM = 1
_KIND, _MEMBER, _DAY, _DETAIL = b"\x12", b"\x1a", b"\"", b"*"  # Event fields 2-5 (field << 3 | 2)
"""The message starts with its `kind` (field 2, length-delimited): filtering reads it there."""


class _Legacy(msgspec.Struct, array_like=True, gc=False):
    """An event as the first outbox wrote it."""

    written: Day
    at_ms: int
    kind: str
    member_id: str
    day: Day
    detail: str


_decode_legacy = msgspec.msgpack.Decoder(_Legacy).decode

try:  # absent, the pure loop packs the rows; a row_packer without any of patron's names is said at start
    from storage.row_packer import event_rows as _event_rows  # (storage/commit_rows.py `MISSING`)
except ImportError:
    _event_rows = None


_SHORT = [bytes((n,)) for n in range(0x80)]


def varint(n: int) -> bytes:
    """How protobuf writes a length."""
    if n < 0x80:
        return _SHORT[n]
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, text: str) -> bytes:
    """An empty string is left out, as protobuf does (a kind is never empty)."""
    data = text.encode()
    return tag + varint(len(data)) + data if data else b""


def event_message(kind: str, member_id: str, day: str, detail: str) -> bytes:
    """Fields 2-5 of `Event` (kind, member_id, day, detail) as protobuf writes them."""
    return _message(_kind_field(kind), member_id, _field(_DAY, day), detail)


def _message(kind_field: bytes, member_id: str, day_field: bytes, detail: str) -> bytes:
    return b"".join((kind_field, _field(_MEMBER, member_id), day_field, _field(_DETAIL, detail)))


def _row(head: bytes, kind: str, member_id: str, day: Day, detail: str) -> bytes:
    """A stored event: `head` (`_HEAD`: form, business day, commit time, the same for a commit's
    rows) and the `Event` message's fields 2-5, written without `_message`'s calls (a midnight run
    writes an event for most members it visits)."""
    member, text = member_id.encode(), detail.encode()
    return b"".join((head, _kind_field(kind), _MEMBER + varint(len(member)) + member if member else b"",
                     _day_field(day), _DETAIL + varint(len(text)) + text if text else b""))


@lru_cache(maxsize=64)
def _kind_field(kind: str) -> bytes:
    """A handful of kinds and days fill a commit's rows: their fields are made once."""
    return _field(_KIND, kind)


@lru_cache(maxsize=1024)
def _day_field(day: Day) -> bytes:
    return _field(_DAY, iso(day))


def _current(value: bytes) -> bytes:
    if value[0] == _FORM:
        return value
    old = _decode_legacy(value)
    return _row(_HEAD.pack(_FORM, old.written, old.at_ms), old.kind, old.member_id, old.day, old.detail)


def event_rows_pure(head: bytes, notices: list[Notice], seq: int) -> list[tuple[bytes, bytes]]:
    """The notices' rows, numbered after `seq`: `head` (`_HEAD`) and each one's `_row`."""
    rows = []
    for notice in notices:
        seq += 1
        rows.append((_SEQ.pack(seq), _row(head, notice.kind, notice.member_id, notice.day, notice.detail)))
    return rows


def event_rows(head: bytes, notices: list[Notice], seq: int) -> list[tuple[bytes, bytes]]:
    """`event_rows_pure`, by the compiled code when it is built (storage/row_packer.pyx: a sixth of a
    shard's transactions write an event, a new member's welcome coupon, and the pure loop was
    about 800 instructions a transaction of a shard's write)."""
    if _event_rows is None or type(notices) is not list or not 0 <= seq < (1 << 64) - len(notices):
        return event_rows_pure(head, notices, seq)  # the last: a sequence past 64 bits is _SEQ's error
    return _event_rows(head, notices, seq, _MEMBER, _DETAIL, _kind_field, _day_field, _row)


def append(txn: Any, db: Any, notices: list[Notice], written: Day, at_ms: int, pruned: int) -> int:
    """Write the notices after the newest event (or the last pruned one); returns the newest sequence."""
    cursor = txn.cursor(db=db)
    seq = max(_SEQ.unpack(cursor.key())[0] if cursor.last() else 0, pruned)
    rows = event_rows(_HEAD.pack(_FORM, written, at_ms), notices, seq)
    seq += len(rows)
    if cursor.putmulti(rows, append=True)[1] != len(rows):  # append skips a key it finds, silently
        raise RuntimeError(f"event sequences after {seq - len(rows)} are taken")
    return seq


def newest(txn: Any, db: Any, pruned: int) -> int:
    cursor = txn.cursor(db=db)
    return max(_SEQ.unpack(cursor.key())[0] if cursor.last() else 0, pruned)


class Run(msgspec.Struct, array_like=True, gc=False):
    """Consecutive events of one shard, oldest first."""

    seqs: list[int]
    messages: list[bytes]
    """Each event's `Event` message without its position."""
    through: int
    """The sequence read up to: past the last event when events of other kinds were skipped."""
    first_at_ms: int
    """The commit time of the first event (0: none)."""


def read_after(txn: Any, db: Any, after: int, limit: int, max_bytes: int, kinds: frozenset[str],
               floor: int = 0) -> Run:
    """Up to `limit` events after `after` (and about `max_bytes` of them) whose kind is in
    `kinds` (all when empty). `through` moves past the events not asked for too, and to `floor`
    when the events end before it (nothing is numbered between)."""
    run = Run([], [], after, 0)
    cursor = txn.cursor(db=db)
    if not cursor.set_range(_SEQ.pack(after + 1)):
        run.through = max(after, floor)
        return run
    wanted = frozenset(kind.encode() for kind in kinds)
    seqs, messages, start, size = run.seqs, run.messages, _HEAD.size, 0
    for key, stored in cursor.iternext():
        run.through = _SEQ.unpack(key)[0]
        value = _current(stored)
        if wanted and _kind(value) not in wanted:
            continue
        at_ms = _HEAD.unpack_from(value)[2]
        if not seqs:
            run.first_at_ms = at_ms
        seqs.append(run.through)
        messages.append(value[start:] + _AT_MS + varint(at_ms))
        size += len(value)
        if len(seqs) >= limit or size >= max_bytes:
            break
    else:
        run.through = max(run.through, floor)
    return run


def prune(txn: Any, db: Any, before: Day, through: int | None = None) -> tuple[int, int, dict[str, int]]:
    """Remove the events committed on business days before `before`, and numbered up to `through`
    when given, oldest first: (how many, the last sequence removed, 0 when none, and the last
    removed of each kind)."""
    cursor = txn.cursor(db=db)
    removed = last = 0
    kinds: dict[str, int] = {}
    cursor.first()
    while (key := cursor.key()) and _HEAD.unpack_from(value := _current(cursor.value()))[1] < before:
        seq = _SEQ.unpack(key)[0]
        if through is not None and seq > through:
            break
        last = seq
        kinds[_kind(value).decode()] = last
        removed += 1
        cursor.delete()  # and on to the next
    return removed, last, kinds


def _kind(value: bytes) -> bytes:
    """A stored event's kind: the `Event` message's field 2 after the header, one length byte."""
    start = _HEAD.size + 2
    return value[start:start + value[start - 1]]


def pruned_kinds(by_kind: dict[str, int] | None, pruned: int, removed: dict[str, int]) -> dict[str, int]:
    """The last pruned of each kind once `removed` (kind: last sequence) is pruned after `pruned`.
    What was pruned where the kinds were not kept (before they were, or since by an older patron:
    their largest is not `pruned`) counts as of every kind ("*"), so `pruned_of` never says less."""
    kept = dict(by_kind or {})
    if max(kept.values(), default=0) != pruned:
        kept["*"] = pruned
    return {**kept, **removed}


def pruned_of(kinds: frozenset[str], pruned: int, by_kind: dict[str, int] | None) -> int:
    """The last sequence pruned of any of `kinds` (all kinds when empty), given the last pruned of
    all (`pruned`) and of each kind (`by_kind`: None where it was never kept)."""
    # every prune that keeps the kinds leaves its last sequence among them: a larger `pruned` was
    # pruned by a patron that did not keep them (run again after a downgrade), of kinds unknown
    if not kinds or by_kind is None or max(by_kind.values(), default=0) != pruned:
        return pruned
    return max(by_kind.get("*", 0), *(by_kind.get(kind, 0) for kind in kinds))
