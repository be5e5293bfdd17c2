"""A virtual shard's records, taken out of one shard's LMDB and put into another's: what moving a
virtual shard between shards copies (docs/decisions.md, "Moving virtual shards").

Per member a shard keeps: the member record, its ledger (entries at positions of this shard,
each linked to the member's entry before it), its transaction index records (keyed by id and
member, listed by the day index), anomaly rows, wake-up index entries, and what recent batches
had rejected for it. All of them move. The
outbox does not: events already written stay in the source's feed. The totals record and the
coupon grants are the shard's own, kept up to date by the caller (actors/shard_moves.py).

`export` reads in one read transaction (a snapshot), `put` and `delete` write into a caller's
`BatchWriter`, so what they do is committed at once or not at all."""

import zlib
from collections.abc import Iterator
from pathlib import Path

import lmdb
import msgspec

from engine.ledger import LedgerEntry
from engine.members import Member
from engine.transactions import TxnRecord
from storage.codecs import (
    decode_keys,
    decode_txn,
    encode,
    encode_rejections,
    entry_of,
    linked_position,
    member_of,
    position_key,
    rejected_by_key,
    rejected_in,
    rejections_day,
    rejections_of,
    txn_key,
    wakeup_of,
)
from storage.folder import write_atomically
from storage.shard_store import BatchWriter, ShardStore

__all__ = ["MoveNote", "RebalanceNote", "VShardRecords", "clear_note", "clear_rebalance_note", "delete", "export",
           "has_rejections", "members_of", "put", "read_note", "read_rebalance_note", "write_note",
           "write_rebalance_note"]


class IndexRecord(msgspec.Struct, array_like=True):
    txn_id: str
    record: TxnRecord


class VShardRecords(msgspec.Struct, array_like=True):
    """Everything a shard keeps for the members of some virtual shards, with no position of the
    shard it came from: the destination appends the ledger at its own positions."""

    vshards: list[int]
    members: list[Member]
    ledger: list[LedgerEntry]
    """Each member's entries, oldest first, members one after another."""
    index: list[IndexRecord]
    anomalies: list[tuple[bytes, bytes]]
    """Anomaly rows as stored: (key, value); the key names the day and the member."""
    wakeups: list[bytes]
    """Wake-up index keys (day, member)."""
    rejections: list[tuple[bytes, int, list[tuple[str, str, str]]]] = []
    """What batches had rejected for these members: (batch id's key, day, (member, transaction
    id, reason) rows), so a resend after the move is answered as the first time."""


class _Test:
    """Whether a member id belongs to one of the virtual shards (actors/routing.py's hash)."""

    def __init__(self, vshards: frozenset[int], virtual_shards: int) -> None:
        self.vshards, self.virtual_shards = vshards, virtual_shards

    def __call__(self, member_id: bytes) -> bool:
        return zlib.crc32(member_id) % self.virtual_shards in self.vshards


def export(store: ShardStore, vshards: frozenset[int], virtual_shards: int) -> VShardRecords:
    """Every record of those virtual shards' members, from one snapshot."""
    test = _Test(vshards, virtual_shards)
    dbs = store.dbs
    with store.env.begin() as txn:
        members, ledger = [], []
        for key, raw in store.member_table.items(txn, test):
            members.append(member_of(raw))
            ledger.extend(_chain(txn, dbs["ledger"], linked_position(raw), key))
        index = []
        for member_id, txn_id in _indexed(txn, dbs["txn_days"], test):
            raw = txn.get(txn_key(member_id, txn_id), db=dbs["txn_index"])
            if raw is not None:
                index.append(IndexRecord(txn_id, decode_txn(raw)))
        anomalies = [(bytes(key), bytes(value)) for key, value in txn.cursor(db=dbs["anomalies"])
                     if test(_anomaly_member(key))]
        wakeups = [bytes(key) for key in txn.cursor(db=dbs["wakeups"]).iternext(values=False)
                   if test(wakeup_of(key)[1].encode())]
        rejections = [(key, day, rows) for key, day, rows, _ in _rejections(txn, dbs["rejections"], test) if rows]
    return VShardRecords(sorted(vshards), members, ledger, index, anomalies, wakeups, rejections)


def members_of(store: ShardStore, vshards: frozenset[int], virtual_shards: int) -> list[Member]:
    """The stored members of those virtual shards."""
    with store.env.begin() as txn:
        return [member_of(raw) for _, raw in store.member_table.items(txn, _Test(vshards, virtual_shards))]


def has_rejections(store: ShardStore, vshards: frozenset[int], virtual_shards: int) -> bool:
    """Whether a batch's remembered rejections name a member of those virtual shards."""
    with store.env.begin() as txn:
        return any(moved for _, _, moved, _ in _rejections(txn, store.dbs["rejections"],
                                                           _Test(vshards, virtual_shards)))


def put(writer: BatchWriter, records: VShardRecords) -> None:
    """Write the records in the writer's transaction: members with their ledgers appended at this
    shard's positions (chained anew by `BatchWriter.commit`), the index under this commit's day
    entries, anomaly rows and wake-ups as they were."""
    writer.put_members(records.members)
    writer.put_ledger(records.ledger)
    for item in records.index:
        writer[(item.record.member_id, item.txn_id)] = item.record
    txn, dbs = writer.txn, writer.dbs
    txn.cursor(db=dbs["anomalies"]).putmulti(records.anomalies)
    txn.cursor(db=dbs["wakeups"]).putmulti([(key, b"") for key in records.wakeups])
    for key, day, rows in records.rejections:  # beside what this shard's members had in the same batch
        here = txn.get(key, db=dbs["rejections"])
        merged = rejected_in(here)
        merged.update(rejected_by_key(rows))  # a copy a move left: once
        later = max(day, rejections_day(here)) if here is not None else day
        txn.put(key, encode_rejections(later, merged), db=dbs["rejections"])


def delete(writer: BatchWriter, vshards: frozenset[int], virtual_shards: int) -> int:
    """Remove every record of those virtual shards' members in the writer's transaction; returns
    how many members."""
    test = _Test(vshards, virtual_shards)
    txn, dbs = writer.txn, writer.dbs
    writer.forget_heads()  # a member that comes back must not chain to the positions deleted here
    gone = list(writer.store.member_table.items(txn, test))
    for key, raw in gone:
        position = linked_position(raw)
        while position:
            at = position_key(position)
            record = txn.get(at, db=dbs["ledger"])
            if record is None:
                break
            position = linked_position(record)
            txn.delete(at, db=dbs["ledger"])
        writer.store.member_table.delete(txn, key)
    _unindex(txn, dbs, test)
    for db in ("anomalies", "wakeups"):
        member = _anomaly_member if db == "anomalies" else (lambda key: wakeup_of(key)[1].encode())
        doomed = [bytes(key) for key in txn.cursor(db=dbs[db]).iternext(values=False) if test(member(key))]
        for key in doomed:
            txn.delete(key, db=dbs[db])
    for key, day, moved, kept in list(_rejections(txn, dbs["rejections"], test)):
        if moved and kept:
            txn.put(key, encode_rejections(day, rejected_by_key(kept)),
                    db=dbs["rejections"])
        elif moved:
            txn.delete(key, db=dbs["rejections"])
    return len(gone)


def _rejections(txn: lmdb.Transaction, db: object, test: _Test
                ) -> Iterator[tuple[bytes, int, list[tuple[str, str, str]], list[tuple[str, str, str]]]]:
    """Each batch's remembered rejections: (key, day, the rows of these members, the others)."""
    for key, raw in txn.cursor(db=db):
        day, rows = rejections_of(raw)
        ours: list[tuple[str, str, str]] = []
        others: list[tuple[str, str, str]] = []
        for row in rows:
            (ours if test(row[0].encode()) else others).append(row)
        yield bytes(key), day, ours, others


def _unindex(txn: lmdb.Transaction, dbs: dict, test: _Test) -> None:
    """The index records of those members, and their pairs in the day index (an entry left with
    no pair goes)."""
    rewritten = []
    for key, value in txn.cursor(db=dbs["txn_days"]):
        pairs = decode_keys(value)
        kept = [pair for pair in pairs if not test(pair[0].encode())]
        if len(kept) != len(pairs):
            rewritten.append((bytes(key), kept))
            for member_id, txn_id in pairs:
                if test(member_id.encode()):
                    txn.delete(txn_key(member_id, txn_id), db=dbs["txn_index"])
    for key, kept in rewritten:
        if kept:
            txn.put(key, encode(kept), db=dbs["txn_days"])
        else:
            txn.delete(key, db=dbs["txn_days"])


def _chain(txn: lmdb.Transaction, ledger: object, newest: int, member: bytes) -> list[LedgerEntry]:
    entries = []
    position = newest
    while position:
        record = txn.get(position_key(position), db=ledger)
        if record is None:
            raise RuntimeError(f"member {member.decode()}'s ledger leads to position {position}, which is missing; "
                               f"the shard store is damaged: restore a checkpoint")
        entries.append(entry_of(record))
        position = linked_position(record)
    entries.reverse()
    return entries


def _indexed(txn: lmdb.Transaction, days: object, test: _Test) -> Iterator[tuple[str, str]]:
    """(member, transaction id) of those members in the day index: every index record is listed
    there (the commit writes both, retention removes both)."""
    for _, value in txn.cursor(db=days):
        for member_id, txn_id in decode_keys(value):
            if test(member_id.encode()):
                yield member_id, txn_id


def _anomaly_member(key: bytes) -> bytes:
    return bytes(key).split(b"\x00", 1)[1]


class MoveNote(msgspec.Struct):
    """A move under way, written in the data folder before the destination takes the records in
    and removed once the source let them go: after a crash in between, the shard the layout does
    not name as owner still holds a copy, and the next start deletes it."""

    vshard: int
    source: int
    destination: int


def _note_path(root: Path) -> Path:
    return root / "moving.json"


class RebalanceNote(msgspec.Struct):
    """A rebalance under way, written when it starts and removed when its last move is done: one
    still there at a start was cut short (a stop or crash), and the layout is not yet even."""

    shards: int
    planned: int


def read_rebalance_note(root: Path) -> RebalanceNote | None:
    path = root / "rebalance.json"
    return msgspec.json.decode(path.read_bytes(), type=RebalanceNote) if path.exists() else None


def write_rebalance_note(root: Path, note: RebalanceNote) -> None:
    write_atomically(root / "rebalance.json", msgspec.json.encode(note))


def clear_rebalance_note(root: Path) -> None:
    (root / "rebalance.json").unlink(missing_ok=True)


def read_note(root: Path) -> MoveNote | None:
    path = _note_path(root)
    return msgspec.json.decode(path.read_bytes(), type=MoveNote) if path.exists() else None


def write_note(root: Path, note: MoveNote) -> None:
    write_atomically(_note_path(root), msgspec.json.encode(note))


def clear_note(root: Path) -> None:
    _note_path(root).unlink(missing_ok=True)
