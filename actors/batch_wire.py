"""A batch as it crosses from the gateway to a shard and back, once, in protobuf's own bytes.

The gateway reads only the member ids of a batch and forwards each shard the bytes of its
transactions as the client sent them (a serialised TransactionBatch of that shard's part); the
shard turns them into engine records. A shard answers each transaction with its TxnResult
already encoded as a `results` entry of a BatchAck, so the gateway's acknowledgement is the
batch id followed by those entries in the batch's order: no record is built or encoded twice."""

import logging
from collections.abc import Callable, Iterator
from typing import Protocol

import msgspec

from actors.batch_stats import COMPILED_COUNTS, BatchStats
from actors.batch_stats import MISSING as _COUNTS_MISSING
from actors.routing import shards_of
from actors.wire import OUTCOME_NUMBERS as _OUTCOMES
from actors.wire import transactions_from
from engine import compiled_engine
from engine.transactions import Transaction, TxnResult
from proto import patron_pb2 as pb
from storage.commit_rows import COMPILED_ROWS
from storage.commit_rows import MISSING as _ROWS_MISSING
from storage.folder import Layout
from storage.outbox import varint

__all__ = ["COMPILED", "COMPILED_ENGINE", "COMPILED_WIRE", "BatchRoute", "PartAnswer", "Route", "ack_bytes",
           "cut_pure", "encoder_problems", "not_compiled", "read_part_pure", "result_entries", "result_entries_pure",
           "result_message", "route_of", "say_if_not_compiled", "split", "split_entries", "transactions_of"]

try:
    from actors.batch_cutter import cut_entries as _cut_compiled
    from actors.batch_cutter import read_route as _route_compiled
    from actors.part_reader import read_part as _read_compiled
    from actors.result_writer import write_results as _write_compiled
except ImportError as error:  # never silent: every start says so (say_if_not_compiled)
    _cut_compiled = _route_compiled = _read_compiled = _write_compiled = None
    _MISSING = f"{type(error).__name__}: {error}"
else:
    _MISSING = ""
_MISSING = "; ".join(why for why in (_MISSING, _ROWS_MISSING, _COUNTS_MISSING) if why)
COMPILED_WIRE = _read_compiled is not None and COMPILED_ROWS and COMPILED_COUNTS
"""Whether batches are read for routing and cut (actors/batch_cutter.pyx), parts read
(actors/part_reader.pyx), results written (actors/result_writer.pyx), a batch's statistics counted
(actors/batch_counter.pyx) and a commit's rows packed (storage/row_packer.pyx) by compiled code, or
by the pure code here, in actors/batch_stats.py and in storage/commit_rows.py, their specification."""
COMPILED_ENGINE, _ENGINE_PURE_WHY = compiled_engine()
"""Whether the engine's modules run compiled (setup.py, engine/__init__.py)."""
COMPILED = COMPILED_WIRE and COMPILED_ENGINE
"""What patron_compiled_wire and ShardStatus.compiled_wire report: all of the compiled code runs."""

_TRANSACTIONS = 2
"""TransactionBatch.transactions and BatchAck.results: both field 2, length-delimited."""
_ENTRY_KEY = _TRANSACTIONS << 3 | 2


class PartAnswer(msgspec.Struct, array_like=True, gc=False):
    """A shard's answer to one part: a BatchAck `results` entry per transaction, in the part's
    order, as one buffer, and the size of each entry in it."""

    results: bytes
    sizes: list[int]
    stats: BatchStats

    def entries(self) -> list[bytes]:
        entries, position = [], 0
        for size in self.sizes:
            entries.append(self.results[position:position + size])
            position += size
        return entries


# -- the gateway ---------------------------------------------------------------------------


class Route(Protocol):
    """What the gateway routes a batch on: `BatchRoute`, or the compiled reading's `BatchRead`."""
    batch_id: str
    count: int

    def member_ids(self) -> Iterator[str]: ...

    def shards(self, layout: Layout) -> dict[int, list[int]]: ...

    def parts(self, indices: dict[int, list[int]]) -> dict[int, tuple[list[int], bytes]]: ...


class BatchRoute:
    """What the gateway routes a batch on, read by protobuf's parse: the specification of the
    compiled reading (actors/batch_cutter.pyx `read_route`, whose `BatchRead` answers the same).
    A batch protobuf refuses raises DecodeError here, before any part of it is made."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.batch = pb.TransactionBatch.FromString(data)
        self.batch_id: str = self.batch.batch_id
        self.count = len(self.batch.transactions)

    def member_ids(self) -> Iterator[str]:
        """Each transaction's member id, in order, made only as asked for."""
        return (message.member_id for message in self.batch.transactions)

    def shards(self, layout: Layout) -> dict[int, list[int]]:
        """Each shard's transactions by their index in the batch, in order."""
        return _indices(shards_of(layout, list(self.member_ids())))

    def parts(self, indices: dict[int, list[int]]) -> dict[int, tuple[list[int], bytes]]:
        """`split`: each shard's part, for `indices` as `shards` gives them."""
        return cut(self.data, indices, self.count, _encoder(self.batch))


def route_of(data: bytes) -> Route:
    """What routing needs of a batch, read by the compiled reading when it is built; it leaves
    what protobuf's encoders do not write (and broken bytes) to `BatchRoute`, so that protobuf
    decides those as before (a DecodeError for a batch it refuses)."""
    if _route_compiled is not None:
        read = _route_compiled(data)
        if read is not None:
            return read
    return BatchRoute(data)


def split(data: bytes, batch: pb.TransactionBatch, shards: list[int]) -> dict[int, tuple[list[int], bytes]]:
    """Each shard's part of a batch: the indices of its transactions and their bytes as a
    TransactionBatch. `data` is the batch as received, `batch` the same parsed (so it is valid),
    `shards` the shard of each transaction. A batch for one shard goes whole, as it came."""
    return split_entries(data, shards, _encoder(batch))


def _encoder(batch: pb.TransactionBatch) -> Callable[[list[int]], bytes]:
    """A part encoded again from the parsed batch, for a batch whose entries cannot be cut as they came."""
    messages = batch.transactions
    return lambda part: pb.TransactionBatch(transactions=[messages[i] for i in part]).SerializeToString()


def split_entries(data: bytes, shards: list[int], encode: Callable[[list[int]], bytes]
                  ) -> dict[int, tuple[list[int], bytes]]:
    """`split` for any message whose entries are its field 2 (an ImportRequest's members too);
    `encode` makes a part's bytes again from its indices when the encoding is an unusual one."""
    return cut(data, _indices(shards), len(shards), encode)


def cut(data: bytes, indices: dict[int, list[int]], entries: int, encode: Callable[[list[int]], bytes]
        ) -> dict[int, tuple[list[int], bytes]]:
    """`split_entries` for each shard's indices (`entries` in all)."""
    if len(indices) <= 1:
        return {shard: (part, data) for shard, part in indices.items()}
    if _cut_compiled is not None:
        parts = _cut_compiled(data, indices, entries)
        if parts is not None:
            return parts
    return cut_pure(data, indices, entries, encode)


def cut_pure(data: bytes, indices: dict[int, list[int]], entries: int, encode: Callable[[list[int]], bytes]
             ) -> dict[int, tuple[list[int], bytes]]:
    """The specification of the cut (the compiled one, actors/batch_cutter.pyx, leaves it what it
    does not expect): each shard's entries as they came, or encoded again when they cannot be."""
    spans = _entry_spans(data)
    if spans is None or len(spans) != entries:
        return {shard: (part, encode(part)) for shard, part in indices.items()}
    return {shard: (part, b"".join([data[spans[i]] for i in part])) for shard, part in indices.items()}


def _indices(shards: list[int]) -> dict[int, list[int]]:
    indices: dict[int, list[int]] = {}
    for index, shard in enumerate(shards):
        indices.setdefault(shard, []).append(index)
    return indices


def _entry_spans(data: bytes) -> list[slice] | None:
    """Where each `transactions` entry (tag, length, message) of a serialised batch lies, in
    order. None when the batch holds a group, which only a hand-made encoder would write.
    Keys and lengths of one byte, nearly all of them, are read inline: this runs per transaction."""
    spans: list[slice] = []
    position, end = 0, len(data)
    while position < end:
        start, key = position, data[position]
        if key < 0x80:
            position += 1
        else:
            key, position = _varint(data, position)
        wire = key & 7
        if wire == 2:
            size = data[position]
            if size < 0x80:
                position += 1 + size
            else:
                size, position = _varint(data, position)
                position += size
            if key == _ENTRY_KEY:
                spans.append(slice(start, position))
        elif wire == 0:
            position = _varint(data, position)[1]
        elif wire in (1, 5):
            position += 8 if wire == 1 else 4
        else:
            return None
    return spans


def _varint(data: bytes, position: int) -> tuple[int, int]:
    """The varint at `position` and the position after it."""
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def ack_bytes(batch_id: str, entries: list[bytes]) -> bytes:
    """A serialised BatchAck: the id, then the results entries (a message's fields may come in any order)."""
    return pb.BatchAck(batch_id=batch_id).SerializeToString() + b"".join(entries)


# -- the shard -----------------------------------------------------------------------------


def transactions_of(data: bytes) -> list[Transaction]:
    """The engine records of a part, by the compiled reader when it is built; it leaves what
    protobuf's encoders do not write (groups, wire types other than the field's, broken bytes) to
    the pure reader, so that protobuf decides those as before (a DecodeError for broken bytes)."""
    if _read_compiled is not None:
        transactions = _read_compiled(data)
        if transactions is not None:
            return transactions
    return read_part_pure(data)


def read_part_pure(data: bytes) -> list[Transaction]:
    """The specification of reading a part: protobuf's parse, then field by field. An unknown or
    unspecified enum becomes a word the engine rejects with a reason, so a bad transaction is
    answered alone."""
    return [transactions_from(message) for message in pb.TransactionBatch.FromString(data).transactions]


def encoder_problems() -> dict[str, str]:
    """Which records the compiled encoder leaves to msgspec, and why (none when it is missing
    altogether: COMPILED_WIRE says that)."""
    try:
        from storage.record_encoder import problems
    except ImportError:
        return {}
    return problems()


def _shortfalls() -> list[tuple[str, str, object]]:
    """What this process runs without of the compiled code: (what, what to do about it, why) each;
    one list, so that the report's row and the start's log can never disagree."""
    found: list[tuple[str, str, object]] = []
    if not COMPILED_WIRE:
        found.append((f"the wire code ({_MISSING})",
                      "the compiled wire code (actors/part_reader, actors/batch_cutter, actors/result_writer, "
                      "actors/batch_counter, storage/row_packer) is missing: batches are cut and read, results "
                      "written, batches counted and commits' rows packed by the slower pure code; reinstall with a "
                      "C compiler present: pip install -e . (or make venv)", _MISSING))
    if slower := encoder_problems():
        found.append((f"the record encoder for {', '.join(slower)}",
                      "some records a commit stores are written by msgspec, not by the compiled encoder "
                      f"(storage/record_encoder: {', '.join(slower)}): the same bytes at more CPU a commit; this "
                      "build's checks do not hold for the installed msgspec or Python; reinstall: pip install -e . "
                      "(or make venv)", slower))
    if not COMPILED_ENGINE:
        found.append((f"the engine ({_ENGINE_PURE_WHY})",
                      "the compiled engine is not in use (missing, stale or turned off): the engine runs its slower "
                      ".py modules; reinstall with a C compiler present: pip install -e . (or make venv), and unset "
                      "PATRON_PURE_ENGINE", _ENGINE_PURE_WHY))
    return found


def not_compiled() -> list[str]:
    """What this process runs without of the compiled code, each with why; empty when nothing:
    what `say_if_not_compiled` logs, for a report to carry (bench/harness.py)."""
    return [what for what, _, _ in _shortfalls()]


def say_if_not_compiled(log: logging.Logger, **extra: object) -> None:
    """An ERROR at every start of a shard or server without the compiled wire code or engine: it
    works, at about 8% (reading and answers), 8% (commits and counts) or 15% (engine) more CPU a
    transaction, and an install can fix it."""
    for _, message, reason in _shortfalls():
        log.error(message, extra={"reason": reason, **extra})


def result_message(result: TxnResult) -> pb.TxnResult:
    return pb.TxnResult(txn_id=result.txn_id, outcome=_OUTCOMES[result.outcome], points=result.points,
                        growth=result.growth, reason=result.reason, value_minor=result.value_minor,
                        coupon_code=result.coupon_code)


def result_entries(results: list[TxnResult]) -> tuple[bytes, list[int]]:
    """The results as the `results` entries of a BatchAck (tag, length, message each), one after
    the other, and the size of each: by the compiled writer when it is built; it leaves what it
    does not expect (what protobuf would refuse) to the pure code, which decides as before."""
    if _write_compiled is not None and type(results) is list:
        written = _write_compiled(results)
        if written is not None:
            return written
    return result_entries_pure(results)


def result_entries_pure(results: list[TxnResult]) -> tuple[bytes, list[int]]:
    """The specification of `result_entries` (the compiled writer, actors/result_writer.pyx, gives
    the same bytes). A message is its txn_id (field 1, written first)
    followed by the rest, and the rest repeats across a batch (an accepted purchase's points,
    a duplicate, a rejection's reason): protobuf encodes each distinct rest once, remembered
    in `_TAILS`, and a transaction costs its id's bytes and two joins, no message of its own."""
    tails = _TAILS
    if len(tails) > _MOST_TAILS:
        tails.clear()
    entries: list[bytes] = []
    for result in results:
        key = (result.outcome, result.points, result.growth, result.reason, result.value_minor, result.coupon_code)
        tail = tails.get(key)
        if tail is None:
            tail = tails[key] = pb.TxnResult(
                outcome=_OUTCOMES[result.outcome], points=result.points, growth=result.growth, reason=result.reason,
                value_minor=result.value_minor, coupon_code=result.coupon_code).SerializeToString()
        txn_id = result.txn_id.encode()
        size = len(txn_id)
        message = _ID_KEY + varint(size) + txn_id + tail if size else tail  # proto3 writes no empty string
        entries.append(_ENTRY_KEY_BYTE + varint(len(message)) + message)
    return b"".join(entries), [len(entry) for entry in entries]


_TAILS: dict[tuple[str, int, int, str, int, str], bytes] = {}
"""A result's message after its txn_id, by its values: a few thousand distinct in a day's stream."""
_MOST_TAILS = 20_000
_ID_KEY = bytes([1 << 3 | 2])
"""TxnResult.txn_id: field 1, length-delimited."""
_ENTRY_KEY_BYTE = bytes([_ENTRY_KEY])
