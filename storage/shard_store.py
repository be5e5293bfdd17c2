"""One shard's LMDB environment: members, ledger, transaction index and metadata, written
once per batch. The shard is its single writer; open it once per process."""

import errno
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import lmdb
import msgspec

from engine.anomaly_report import AnomalyRow
from engine.errors import StorageFullError
from engine.ledger import LedgerEntry
from engine.members import Member
from engine.notices import Notice
from engine.transactions import TxnRecord
from engine.types import Day
from storage import outbox
from storage.codecs import (
    Rejected,
    anomaly_key,
    day_key,
    decode_keys,
    decode_member,
    decode_row,
    decode_txn,
    encode,
    encode_rejections,
    entry_of,
    id_digest,
    linked_position,
    member_of,
    position_key,
    rejected_in,
    rejection_key,
    rejections_day,
    seq_of,
    txn_id_of,
    txn_key,
    wakeup_key,
    wakeup_of,
    with_newest,
)
from storage.commit_rows import IndexLookups, chained_ledger_rows, encoded_members, index_rows, member_rows
from storage.layout import upgrade_layout
from storage.mapped_pages import BUDGET_BYTES, drop_mapping, file_resident_bytes
from storage.member_table import DATABASES as MEMBER_DATABASES
from storage.member_table import MemberTable

log = logging.getLogger("patron.storage")

__all__ = ["BatchWriter", "ShardStore", "newest_event"]

T = TypeVar("T")
_DATABASES = (b"members", b"ledger", b"txn_index", b"txn_days", b"anomalies", b"meta", outbox.DATABASE, b"wakeups",
              b"rejections", *MEMBER_DATABASES)
_RETIRED = 1
"""Databases of older layouts that an upgrade opens to move and drop (layout 2's `txns`)."""
INITIAL_MAP_BYTES = 1 << 30
MAX_MAP_BYTES = 1 << 40
GROW_AT = 0.75
"""The map grows before a write that could take it past this share."""


class ShardStore:
    """`strict` durability syncs every commit to disk before it returns; `relaxed` leaves
    flushing to the OS (a process crash loses nothing; a power cut may lose recent commits).

    Threads: one thread writes (and grows the map); the reads marked so (`member`, `committed`,
    `ledger_positions`, `entries_at`) may run on other threads beside it, each in its own read
    transaction, a snapshot of the last commit. Growing the map invalidates every open
    transaction, so it waits for those reads to end (`_mapping`).

    Memory: pages LMDB reads stay mapped into the process; once the process's file-backed
    resident memory passes `mapped_budget` (0: never) the writer drops them from its page tables
    before its next batch (storage/mapped_pages.py; they stay in the page cache)."""

    def __init__(self, path: Path, durability: str = "strict", map_bytes: int = INITIAL_MAP_BYTES,
                 max_map_bytes: int = MAX_MAP_BYTES, mapped_budget: int = BUDGET_BYTES) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.mapped_budget = mapped_budget
        self.mapping_drops = 0
        self.max_map_bytes = max(max_map_bytes, map_bytes)
        strict = durability == "strict"
        self.env = lmdb.open(str(path), map_size=map_bytes, max_dbs=len(_DATABASES) + _RETIRED, sync=strict,
                             metasync=strict, readahead=False, lock=True)
        try:  # a shard's actor tries again in the same process, where LMDB opens a folder once
            self.dbs = {name.decode(): self.env.open_db(name) for name in _DATABASES}
            logs = [self.dbs[name.decode()] for name in MEMBER_DATABASES]
            self.member_table = MemberTable(self.dbs["members"], logs, self.dbs["meta"])
            upgrade_layout(self.env, self.dbs)
        except BaseException:
            self.env.close()
            raise
        self._mapping = threading.Lock()
        """Held by a read from another thread while its transaction is open, and by a map resize."""
        self._copying = threading.Lock()
        """Held by a checkpoint's copy (seconds at a million members, on a reads thread): a map
        resize waits for it as for a read, while the reads of quotes and cards go on beside it."""
        self.heads: dict[str, int] = {}
        """The position of members' newest ledger entries as last committed, for those written or
        read since the store opened: a commit chains a member's first new entry to it without
        reading the member's record. Each value is what LMDB holds (set from a read of the last
        commit, or once a commit that wrote it returned); a write that deletes members or ledger
        entries (a virtual shard's move) forgets them all, and `forget_heads` forgets members that
        leave memory, at the open write's commit too. So a member here is stored, in the member
        table (storage/member_table.py): a commit writes its record without asking. Size: with
        every member in memory, one entry per member read or written since the start; with a
        bounded hot set, between writes only members in memory, and during a write also those it
        read."""
        self._left_in_write: set[str] = set()
        """Members that left memory since the open write began (`forget_heads`)."""
        self._batches = self._last_batch()
        self.largest_commit = 0
        self._used_before = self.disk_bytes()

    def _last_batch(self) -> int:
        with self.env.begin(db=self.dbs["txn_days"]) as txn:
            cursor = txn.cursor()
            return max((int.from_bytes(k[4:], "big") for k in cursor.iternext(values=False)), default=0)

    def close(self) -> None:
        self.env.sync(True)
        with self._mapping, self._copying:
            self.env.close()

    @contextmanager
    def _reading(self, **options: Any) -> Iterator[lmdb.Transaction]:
        """A read transaction that may run beside the writer's thread."""
        with self._mapping, self.env.begin(**options) as txn:
            yield txn

    # -- reading ---------------------------------------------------------------------

    def members(self) -> Iterator[Member]:
        with self.env.begin(buffers=True) as txn:
            for _, value in self.member_table.items(txn):
                yield member_of(value)

    def member_ids(self) -> Iterator[str]:
        """Every stored member's id, in id order, without decoding a member."""
        with self.env.begin(db=self.dbs["members"]) as txn:
            for key in txn.cursor().iternext(values=False):
                yield key.decode()

    def member(self, member_id: str) -> Member | None:
        key = member_id.encode()
        if not 0 < len(key) <= self.env.max_key_size():
            return None  # no such key can have been written
        with self._reading() as txn:
            raw = self.member_table.get(txn, key)
        return member_of(raw) if raw is not None else None

    def committed(self, member_id: str) -> tuple[Member | None, str, Day]:
        """One snapshot of the last commit: the member, the rules document in force and the
        business day, so a read sees all of a commit or none of it (the members in memory
        change while a batch is scored, before its commit)."""
        key = member_id.encode()
        meta = self.dbs["meta"]
        with self._reading() as txn:
            raw = self.member_table.get(txn, key) if 0 < len(key) <= self.env.max_key_size() else None
            rules, day = txn.get(b"rules_text", db=meta), txn.get(b"business_day", db=meta)
        return (member_of(raw) if raw is not None else None, msgspec.msgpack.decode(rules),
                msgspec.msgpack.decode(day) if day is not None else 0)

    def ledger(self, member_id: str, after_seq: int = 0, limit: int = 0) -> list[LedgerEntry]:
        """The member's entries after `after_seq`, oldest first, at most `limit` (0: all)."""
        positions = self.ledger_positions(member_id, after_seq)
        return self.entries_at(positions[:limit] if limit > 0 else positions)

    def ledger_positions(self, member_id: str, after_seq: int = 0) -> list[int]:
        """Where the member's entries after `after_seq` are, oldest first: one walk back from the
        newest, reading only each entry's link and sequence. A statement is read as one walk,
        then pages of `entries_at`, so a long history costs no more per page."""
        key = member_id.encode()
        if not 0 < len(key) <= self.env.max_key_size():
            return []
        positions: list[int] = []
        with self._reading(buffers=True) as txn:
            raw = self.member_table.get(txn, key)
            position = linked_position(raw) if raw is not None else 0
            while position:
                record = txn.get(position_key(position), db=self.dbs["ledger"])
                if record is None:
                    raise RuntimeError(f"shard store {self.path} is damaged: member {member_id}'s ledger leads to "
                                       f"position {position}, which is missing; restore a checkpoint")
                if seq_of(record) <= after_seq:
                    break
                positions.append(position)
                position = linked_position(record)
        positions.reverse()
        return positions

    def entries_at(self, positions: list[int]) -> list[LedgerEntry]:
        """The entries at these positions, leaving out positions that hold none (their member's
        virtual shard moved away since they were found: a reader asks the new owner)."""
        with self._reading(db=self.dbs["ledger"], buffers=True) as txn:
            found = (txn.get(position_key(position)) for position in positions)
            return [entry_of(raw) for raw in found if raw is not None]

    def records_by_id(self) -> Iterator[tuple[str, TxnRecord]]:
        """Every transaction the index remembers, each with its id."""
        with self.env.begin(db=self.dbs["txn_index"], buffers=True) as txn:
            for key, value in txn.cursor():
                yield txn_id_of(key), decode_txn(value)

    def transactions_by_member(self, day: Day, counts: Callable[[TxnRecord], bool]) -> dict[str, list[str]]:
        """The ids of one local day's transactions whose record `counts`, per member, in the order
        they were first indexed: one range of the day index, then a lookup per id. (A record
        written again, a purchase a refund reached, is in the day index again.)"""
        by_member: dict[str, list[str]] = {}
        seen: set[tuple[str, str]] = set()
        with self.env.begin() as txn:
            for pair in self._indexed_on(txn, day):
                if pair in seen:
                    continue
                seen.add(pair)
                raw = txn.get(txn_key(*pair), db=self.dbs["txn_index"])
                record = decode_txn(raw) if raw is not None else None
                if record is not None and counts(record):
                    by_member.setdefault(pair[0], []).append(pair[1])
        return by_member

    def id_digests(self, day: Day) -> bytes:
        """The transaction ids of one local day as sorted 8-byte digests, one for each member an
        id was indexed for, concatenated: what the coordinator compares to find an id used by
        more than one member (its digest comes twice, from one shard or from two), 8 bytes an id
        instead of the id."""
        with self.env.begin() as txn:
            return b"".join(sorted([id_digest(txn_id) for _, txn_id in self._indexed_on(txn, day)]))

    def members_by_id(self, day: Day, digests: frozenset[bytes] = frozenset()) -> dict[str, list[str]]:
        """The members each transaction id of one local day whose digest is in `digests` was
        indexed for (none asked for: none read)."""
        members: dict[str, list[str]] = {}
        if not digests:
            return members
        with self.env.begin() as txn:
            for member_id, txn_id in self._indexed_on(txn, day):
                if id_digest(txn_id) in digests:
                    seen = members.setdefault(txn_id, [])
                    if member_id not in seen:
                        seen.append(member_id)
        return members

    def _indexed_on(self, txn: lmdb.Transaction, day: Day) -> Iterator[tuple[str, str]]:
        """(member, transaction id) of one local day, in the order they were indexed."""
        prefix = day_key(day, 0)[:4]
        cursor = txn.cursor(db=self.dbs["txn_days"])
        if not cursor.set_range(prefix):
            return
        for key, value in cursor:
            if not key.startswith(prefix):
                return
            yield from decode_keys(value)

    def rejections(self, batch_id: str) -> Rejected:
        """What a committed batch of this id had rejected on this shard: the reasons, by (member,
        transaction id). A resend of the batch is answered the same (actors/grouping.py)."""
        with self.env.begin(db=self.dbs["rejections"]) as txn:
            return rejected_in(txn.get(rejection_key(batch_id)))

    def anomalies(self, day: str) -> list[AnomalyRow]:
        prefix = day.encode() + b"\x00"
        rows = []
        with self.env.begin(db=self.dbs["anomalies"]) as txn:
            cursor = txn.cursor()
            if cursor.set_range(prefix):
                for key, value in cursor:
                    if not key.startswith(prefix):
                        break
                    rows.append(decode_row(value))
        return rows

    def events_bounds(self) -> tuple[int, int]:
        """(the last sequence pruned, the newest sequence): the events held are those between."""
        with self.env.begin() as txn:
            return _meta_int(txn, self.dbs["meta"], outbox.PRUNED_KEY), _newest_event(txn, self.dbs)

    def events_page(self, after: int, limit: int, max_bytes: int, kinds: frozenset[str]
                    ) -> tuple[outbox.Run, int, int, int]:
        """(events after sequence `after`, -1 for the oldest held; the newest sequence; the last
        pruned; the last pruned of `kinds`, outbox.pruned_of), read in one transaction. A page
        after a pruned sequence starts past the pruned: nothing is numbered between."""
        with self.env.begin() as txn:
            meta = self.dbs["meta"]
            pruned = _meta_int(txn, meta, outbox.PRUNED_KEY)
            asked = outbox.pruned_of(kinds, pruned, _pruned_kinds(txn, meta) if kinds else None)
            run = outbox.read_after(txn, self.dbs["events"], max(after, pruned), limit, max_bytes, kinds,
                                    _meta_int(txn, meta, outbox.FLOOR_KEY))
            return run, _newest_event(txn, self.dbs), pruned, asked

    def raise_event_floor(self, at_least: int) -> int:
        """New events number after `at_least` (patron restore: past every position given before);
        returns the floor now. Written only when it rises: a write moves LMDB's last transaction past
        the member totals' stamp (`stamped_meta`), and every bounded start of a restored folder read
        every member again (an outside probe)."""
        with self.env.begin() as txn:
            floor = _meta_int(txn, self.dbs["meta"], outbox.FLOOR_KEY)
        if at_least <= floor:
            return floor
        with self.env.begin(write=True) as txn:
            floor = max(at_least, _meta_int(txn, self.dbs["meta"], outbox.FLOOR_KEY))
            txn.put(outbox.FLOOR_KEY.encode(), encode(floor), db=self.dbs["meta"])
        return floor

    def woken_by(self, run: Day) -> tuple[list[Day], list[str]]:
        """The wake-up index up to `run`: the days it has entries for, and the members woken on
        any of them, sorted by id, each once (see `BatchWriter.put_wakeups`). Each day's members
        come in id order: merged as sorted runs, not hashed into a set and sorted afresh."""
        days: list[Day] = []
        woken: list[bytes] = []
        end = wakeup_key(run + 1)
        at, prefix = len(end), b""
        with self.env.begin(db=self.dbs["wakeups"]) as txn:
            for key in txn.cursor().iternext(values=False):
                if key >= end:
                    break
                if key[:at] != prefix:
                    prefix = key[:at]
                    days.append(wakeup_of(key)[0])
                woken.append(key[at:])
        if len(days) > 1:  # one sorted run a day: the sort merges them, and a member woken twice is kept once
            woken.sort()
            woken = list(dict.fromkeys(woken))
        return days, [member_id.decode() for member_id in woken]

    def stamped_meta(self, key: str) -> Any:
        """What `BatchWriter.put_stamped_meta` wrote, if no commit came after the one that wrote it
        (by this patron or any other, in any mode); else None."""
        stamped = self.meta(key)
        if stamped is None or stamped[0] != self.env.info()["last_txnid"]:
            return None
        return stamped[1]

    def meta(self, key: str, default: Any = None) -> Any:
        with self.env.begin() as txn:
            raw = txn.get(key.encode(), db=self.dbs["meta"])
        return msgspec.msgpack.decode(raw) if raw is not None else default

    def count(self, database: str) -> int:
        with self.env.begin() as txn:
            return txn.stat(self.dbs[database])["entries"]

    def disk_bytes(self) -> int:
        """Bytes LMDB uses (its file is sparse and sized to the map, so not the file size)."""
        info, stat = self.env.info(), self.env.stat()
        return (info["last_pgno"] + 1) * stat["psize"]

    def bytes_of(self, *databases: str) -> int:
        """Bytes of the pages these databases use."""
        with self.env.begin() as txn:
            stats = [txn.stat(self.dbs[database]) for database in databases]
        return sum((s["branch_pages"] + s["leaf_pages"] + s["overflow_pages"]) * s["psize"] for s in stats)

    def member_bytes(self) -> int:
        """Bytes of the pages that hold members' records: the member table and its logs."""
        return self.bytes_of("members", *(name.decode() for name in MEMBER_DATABASES))

    def copy_to(self, path: Path) -> int:
        """A consistent, compacted copy of the environment (one read transaction, the last
        commit): it may run beside the writer's thread, like the reads marked so."""
        path.mkdir(parents=True, exist_ok=True)
        try:
            with self._copying:
                self.env.copy(str(path), compact=True)
        except lmdb.Error as error:
            if "No space left" in str(error) or "Disk quota" in str(error):
                raise StorageFullError(f"the disk is full: {error}") from error
            raise
        return (path / "data.mdb").stat().st_size

    # -- writing ---------------------------------------------------------------------

    def forget_heads(self, member_ids: Iterable[str]) -> None:
        """Members leaving memory; those the open write gives a head are not kept at its commit
        either (a midnight step's parts leave memory before the step commits)."""
        heads, left = self.heads, self._left_in_write
        for member_id in member_ids:
            heads.pop(member_id, None)
            left.add(member_id)

    def writer(self) -> "BatchWriter":
        self._grow_if_needed()
        self._drop_mapped_over_budget()
        self._left_in_write = set()
        return BatchWriter(self)

    def _drop_mapped_over_budget(self) -> None:
        """On the writer's thread, between commits, where the map is resized: it cannot move
        meanwhile; `_mapping` is held as a resize holds it, so the address found stays the map's
        until the drop ends even if a resize ever ran elsewhere. Reads beside it fault pages back."""
        if self.mapped_budget and file_resident_bytes() > self.mapped_budget:
            try:
                with self._mapping:
                    drop_mapping(self.path / "data.mdb")
            except OSError as error:
                # Memory, not data: a batch must not fail because the kernel refused to unmap.
                # The refusal would repeat at every batch, so the store stops trying and says so.
                log.warning("%s; mapped pages are no longer given back (memory grows with reads)", error)
                self.mapped_budget = 0
                return
            self.mapping_drops += 1

    def map_bytes(self) -> int:
        return self.env.info()["map_size"]

    def grow(self) -> bool:
        """Double the map after a write found it full; False at the ceiling."""
        size = self.map_bytes()
        if size >= self.max_map_bytes:
            return False
        with self._mapping, self._copying:
            self.env.set_mapsize(min(size * 2, self.max_map_bytes))
        return True

    def _grow_if_needed(self) -> None:
        """Grow the map before it fills: when the next commit, as large as the largest so far
        (twice over), might not fit. No write transaction is open here (the shard is the only
        writer) and reads on other threads are waited for. Never past the configured ceiling."""
        size, used = self.map_bytes(), self.disk_bytes()
        self.largest_commit = max(self.largest_commit, used - self._used_before)
        self._used_before = used
        if used + 2 * self.largest_commit > GROW_AT * size and size < self.max_map_bytes:
            with self._mapping, self._copying:
                self.env.set_mapsize(min(max(size * 2, (used + 2 * self.largest_commit) * 2), self.max_map_bytes))

    def next_batch(self) -> int:
        """A number for each commit, so index entries of one day never overwrite each other."""
        self._batches += 1
        return self._batches


def _no_space(error: Exception, writer: "BatchWriter") -> bool:
    """ENOSPC, or the I/O error LMDB reports for a short write, on a filesystem that is
    indeed nearly full (anything else is a real I/O error and is not hidden)."""
    if getattr(error, "errno", None) == errno.ENOSPC or "No space left" in str(error):
        return True
    if "Input/output error" not in str(error):
        return False
    stat = os.statvfs(writer.store.path)
    return stat.f_bavail * stat.f_frsize < 2 * writer.store.largest_commit + (1 << 20)


def _full_is_storage_full(method: Callable[..., T]) -> Callable[..., T]:
    """A full map or disk, wherever in a write it shows, is StorageFullError."""
    @functools.wraps(method)
    def guarded(writer: "BatchWriter", *args: Any, **kwargs: Any) -> T:
        try:
            return method(writer, *args, **kwargs)
        except lmdb.MapFullError as error:
            raise StorageFullError(f"the shard's map is full: {error}") from error
        except (lmdb.Error, OSError) as error:
            if _no_space(error, writer):
                raise StorageFullError(f"the disk is full: {error}") from error
            raise
    return guarded


class BatchWriter:
    """One LMDB write transaction: reads see this batch's own writes; `commit` makes the
    whole batch durable at once, or raises and leaves nothing of it behind."""

    def __init__(self, store: ShardStore) -> None:
        self.store = store
        self.dbs = store.dbs
        self.txn = store.env.begin(write=True)
        self._max_key = store.env.max_key_size()
        self._members: dict[str, bytes] = {}
        """Members to write at commit, encoded when put (without their newest ledger position,
        known at commit): a midnight step's members may leave memory before it commits."""
        self._entries: list[LedgerEntry] = []
        self._heads = store.heads
        """Newest ledger positions as last committed (`ShardStore.heads`); the members read here add
        theirs, for `commit` not to read them again."""
        self._written: dict[str, int] = {}
        """Newest positions this write gives members, for `heads` once it is committed."""
        self.disk_write_seconds = 0.0
        """How long LMDB's own commit took: its pages written and, strict, the disk's sync; the
        rows' encoding and puts before it are not in it (an operator asks whether the disk is slow)."""
        self._members_stored = store.member_table.reader(self.txn)
        self._find_member = self._members_stored.get
        """A stored member's newest record by key, through cursors kept for the write (the member
        logs' indexes, then the table: storage/member_table.py)."""
        self._find_head = self._members_stored.stored
        """As `_find_member`, the table asked first: what the commit asks of members whose head
        it does not know, most of them new (one lookup each, not three)."""
        self._absent: set[str] = set()
        """Members this write found not stored (none is stored before the commit): the commit
        writes them to the member table without looking them up again."""
        txns = self.txn.cursor(self.dbs["txn_index"])
        self.index = IndexLookups(txns.get, txns.key() if txns.last() else b"")
        """The transaction index as the engine's Book uses it (engine/book.py `TxnIndex`): the
        shard hands the Book this, not the writer, so each lookup runs no Python frame, and a
        key past the index's last is not looked for (storage/commit_rows.py). Index rows are put
        only by `commit`, its last write."""

    def member(self, member_id: str) -> Member | None:
        """A member as last committed (this transaction writes members only at `commit`), read
        in this transaction: no read transaction of its own; or, once put in this write, as put
        (a midnight step's member may leave memory before the step commits)."""
        pending = self._members.get(member_id)
        if pending is not None:
            return decode_member(pending)
        key = member_id.encode()
        if not 0 < len(key) <= self._max_key:
            return None  # no such key can have been written
        raw = self._find_member(key)
        if raw is None:
            self._absent.add(member_id)
            return None
        self._heads[member_id] = linked_position(raw)
        return member_of(raw)

    def members(self, member_ids: Iterable[str], ordered: bool = False) -> list[Member]:
        """`member` for many, read in key order in one call: each next key is found from the
        page of the last one instead of from the root. Those not stored are left out. `ordered`:
        the ids are sorted and each there once already (a job's chunk), so not sorted again."""
        pending = self._members
        if pending:  # put in this write already: as put, not as stored (see `member`)
            ids = list(member_ids)
            found = [decode_member(pending[m]) for m in ids if m in pending]
            return found + self._stored_members([m for m in ids if m not in pending], ordered)
        return self._stored_members(member_ids, ordered)

    def _stored_members(self, member_ids: Iterable[str], ordered: bool) -> list[Member]:
        max_key, heads = self._max_key, self._heads
        if ordered:
            keys = [key for key in (m.encode() for m in member_ids) if 0 < len(key) <= max_key]
        else:
            keys = sorted(key for key in {m.encode() for m in member_ids} if 0 < len(key) <= max_key)
        found = []
        for key, raw in self._members_stored.getmulti(keys):
            heads[key.decode()] = linked_position(raw)
            found.append(member_of(raw))
        return found

    # the transaction index, keyed by (member, transaction id): `index`'s
    def get(self, key: tuple[str, str], default: TxnRecord | None = None) -> TxnRecord | None:
        return self.index.get(key, default)

    def __setitem__(self, key: tuple[str, str], record: TxnRecord) -> None:
        self.index[key] = record

    @_full_is_storage_full
    def put_anomalies(self, rows: list[AnomalyRow]) -> None:
        for row in rows:
            self.txn.put(anomaly_key(row.day, row.member_id), encode(row), db=self.dbs["anomalies"])

    @_full_is_storage_full
    def forget_before(self, day: Day) -> int:
        """Drop index entries of transactions that occurred before `day`: one range scan."""
        txns, days = self.dbs["txn_index"], self.dbs["txn_days"]
        cursor = self.txn.cursor(db=days)
        cursor.first()
        end, dropped = day_key(day, 0), 0
        while (key := cursor.key()) and key < end:
            for member_id, txn_id in decode_keys(cursor.value()):
                dropped += self.txn.delete(txn_key(member_id, txn_id), db=txns)
            cursor.delete()  # and on to the next entry
        return dropped

    @_full_is_storage_full
    def put_rejections(self, by_batch: dict[str, Rejected], day: Day) -> None:
        """Remember what each batch had rejected, with what an earlier commit of the same batch
        id had (a resend whose recalled rejections were not scored again)."""
        db = self.dbs["rejections"]
        for batch_id, rejected in by_batch.items():
            key = rejection_key(batch_id)
            kept = rejected_in(self.txn.get(key, db=db))
            kept.update(rejected)
            self.txn.put(key, encode_rejections(day, kept), db=db)

    def forget_rejections_before(self, day: Day) -> int:
        """Drop the rejections of batches committed before `day` (a resend comes within minutes)."""
        cursor, dropped = self.txn.cursor(db=self.dbs["rejections"]), 0
        cursor.first()
        while cursor.key():
            if rejections_day(cursor.value()) < day:
                cursor.delete()  # and on to the next entry
                dropped += 1
            elif not cursor.next():
                break
        return dropped

    @_full_is_storage_full
    def put_events(self, notices: list[Notice], written: Day, at_ms: int) -> int:
        """Append to the outbox in this transaction; returns the newest event sequence."""
        return outbox.append(self.txn, self.dbs["events"], notices, written, at_ms, _numbered_after(self.txn, self.dbs))

    @_full_is_storage_full
    def prune_events(self, before: Day, through: int | None = None) -> int:
        """Remove events committed on business days before `before` (and numbered up to `through`,
        when given); returns how many."""
        removed, last, kinds = outbox.prune(self.txn, self.dbs["events"], before, through)
        if last:
            meta = self.dbs["meta"]
            pruned = _meta_int(self.txn, meta, outbox.PRUNED_KEY)
            self.put_meta(outbox.PRUNED_KINDS_KEY, outbox.pruned_kinds(_pruned_kinds(self.txn, meta), pruned, kinds))
            self.put_meta(outbox.PRUNED_KEY, last)
        return removed

    def put_members(self, members: Iterable[Member]) -> None:
        """Written at commit, together with the positions of their newest ledger entries; as
        they are now (encoded here)."""
        encoded_members(members, self._members)

    def put_ledger(self, entries: list[LedgerEntry]) -> None:
        """Written at commit, at the end of the ledger, in the order given."""
        self._entries.extend(entries)

    @_full_is_storage_full
    def put_meta(self, key: str, value: Any) -> None:
        self.txn.put(key.encode(), encode(value), db=self.dbs["meta"])

    def delete_meta(self, key: str) -> None:
        self.txn.delete(key.encode(), db=self.dbs["meta"])

    def put_stamped_meta(self, key: str, value: Any) -> None:
        """Metadata that holds only while nothing else is committed after this transaction: it
        carries this transaction's id, and `ShardStore.stamped_meta` reads it only while that is
        the environment's last."""
        self.put_meta(key, (self.txn.id(), value))

    @_full_is_storage_full
    def put_wakeups(self, wakeups: Iterable[tuple[Day, str]]) -> None:
        """Members a midnight run must visit: the run of that date or any later one (day 0: the
        next run). Keyed by day, then member, so a run finds its members in one range."""
        self.txn.cursor(self.dbs["wakeups"]).putmulti([(wakeup_key(day, m), b"") for day, m in wakeups])

    @_full_is_storage_full
    def drop_wakeups(self, days: Iterable[Day], member_ids: Iterable[str]) -> None:
        """The members' entries on these days: a run visited them. One walk per day over the
        entries between the first and the last member's, deleting those of these members: no
        lookup of an entry that is not there, each next one found from the page of the last."""
        days = list(days)
        if not days:
            return
        cursor, keys = self.txn.cursor(self.dbs["wakeups"]), {m.encode() for m in member_ids}
        if not keys:
            return
        first, last = min(keys), max(keys)
        for day in days:
            prefix = wakeup_key(day)
            at, end = len(prefix), prefix + last
            found = cursor.set_range(prefix + first)
            while found and (key := cursor.key()) <= end:
                found = cursor.delete() if key[at:] in keys else cursor.next()

    def clear_wakeups(self) -> None:
        self.txn.drop(self.dbs["wakeups"], delete=False)

    def _write_ledger_and_members(self) -> None:
        """Append the entries, each chained to the member's entry before it, then write the
        members with their newest positions; a member with new entries but no new record only
        has the position in its stored record moved. Positions continue from the last one in the
        ledger itself, read in this transaction, so nothing cached can fall behind it."""
        cursor = self.txn.cursor(self.dbs["ledger"])
        rows, newest = chained_ledger_rows(self._entries, int.from_bytes(cursor.key(), "big") if cursor.last() else 0,
                                           self._heads, self._find_head, self._absent, release=True)
        if cursor.putmulti(rows, append=True)[1] != len(rows):  # append skips a key it finds, silently
            raise RuntimeError(f"shard store {self.store.path}: ledger positions after {rows[0][0].hex()} are taken")
        self._written = dict(newest)
        # which members are in the member table is known here (`heads` and this write's lookups)
        records, fresh = member_rows(self._members, newest, self._heads, self._find_head, self._absent)
        for member_id, head in newest.items():  # entries but no new record: the stored one moved on
            key = member_id.encode()
            raw = self._find_member(key)
            if raw is None:
                raise ValueError(f"ledger entries for member {member_id}, who is not stored")
            records.append((key, with_newest(raw, head)))
        self.store.member_table.put(self.txn, records, fresh)

    @_full_is_storage_full
    def commit(self) -> None:
        # The only put of index rows, and then the write ends: IndexLookups skips LMDB for a key
        # past the index's last at the write's start, which a put before this would make wrong.
        self._write_ledger_and_members()
        rows, by_day = index_rows(self.index.index, self.index.keys, release=True)
        self.txn.cursor(self.dbs["txn_index"]).putmulti(rows)
        batch = self.store.next_batch()
        self.txn.cursor(self.dbs["txn_days"]).putmulti(
            [(day_key(day, batch), encode(ids)) for day, ids in by_day.items()])
        began = time.perf_counter()
        self.txn.commit()
        self.disk_write_seconds = time.perf_counter() - began
        self._heads.update(self._written)  # committed: now what LMDB holds
        if left := self.store._left_in_write:  # members that left memory during this write: not kept
            for member_id in left & self._written.keys():  # (a head read again since is behind this commit)
                del self._heads[member_id]

    def forget_heads(self) -> None:
        """This write deletes members or ledger entries: no head known so far is kept."""
        self._heads.clear()

    def abort(self) -> None:
        self.txn.abort()


def _numbered_after(txn: lmdb.Transaction, dbs: dict[str, Any]) -> int:
    """What the outbox's next event numbers after when it holds none past it: the last one
    pruned, or the floor a restore set (storage/outbox.py `FLOOR_KEY`)."""
    return max(_meta_int(txn, dbs["meta"], outbox.PRUNED_KEY), _meta_int(txn, dbs["meta"], outbox.FLOOR_KEY))


def _newest_event(txn: lmdb.Transaction, dbs: dict[str, Any]) -> int:
    return outbox.newest(txn, dbs["events"], _numbered_after(txn, dbs))


def _pruned_kinds(txn: lmdb.Transaction, meta: Any) -> dict[str, int] | None:
    raw = txn.get(outbox.PRUNED_KINDS_KEY.encode(), db=meta)
    return msgspec.msgpack.decode(raw) if raw is not None else None


def _meta_int(txn: lmdb.Transaction, meta: Any, key: str) -> int:
    raw = txn.get(key.encode(), db=meta)
    return msgspec.msgpack.decode(raw) if raw is not None else 0


def newest_event(path: Path) -> int | None:
    """A shard's newest event sequence, read without opening it as a shard (no upgrade, no
    write): None when its store cannot be read (damaged, or not a shard's)."""
    try:
        env = lmdb.open(str(path), readonly=True, lock=False, max_dbs=len(_DATABASES) + _RETIRED)
    except lmdb.Error:
        return None
    try:
        with env.begin() as txn:
            dbs = {name: env.open_db(name.encode(), txn=txn, create=False) for name in ("events", "meta")}
            return _newest_event(txn, dbs)
    except (lmdb.Error, ValueError, msgspec.DecodeError):
        return None
    finally:
        env.close()
