"""A shard's stored members: a table keyed by member, and two logs in front of it that commits append to.

Written in place, a member's record dirties the table's page that holds it, and a commit that
touches a few thousand of a shard's 50,000 members rewrote most of the table's pages: 3 KB
written and synced a transaction at the goal's size, scattered over the file
(`bench/member_pages.py`). Now a commit appends the records of members already in the table to
the open log (pages side by side), noting where each member's newest is in that log's index by
member. Meanwhile the other log, closed, is placed into the table a slice at a time, in member
order so that each slice's table pages lie together: after `SLICES` commits it is placed whole
and dropped in one step (its pages freed at once), and the logs swap. A member written many
times in those commits reaches the table once. A member not in the table yet is written there
directly: an enrollment is written in place once, so the table's keys are the members stored.

Every read of a member asks the open log's index, then the closed one's, then the table. One
write transaction holds it all: a reader sees a commit whole, as before."""

from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["COMPILED_LOGS", "DATABASES", "SLICES", "MemberTable", "Reader", "logged_or_fresh", "logged_or_fresh_pure",
           "logged_rows", "logged_rows_pure", "placed_records", "placed_records_pure"]

DATABASES = (b"member_log_0", b"member_logged_0", b"member_log_1", b"member_logged_1")
"""Two logs, each a log (position, 8 bytes big-endian -> a member's record) and its index
(member key -> the position of its newest record in that log)."""
SLICES = 20
"""Commits a log stays open, and commits its placement takes: a member's record stays logged for
twenty to forty commits."""
_STATE = b"member_logs"
"""In the meta database: which log is open (0 or 1), how many commits it has been open, then the
closed log's member key up to which it is placed (empty: from its first)."""


class MemberTable:
    """The member databases of one environment (the table, the two logs and their indexes, and
    the meta database where which log is open is kept)."""

    def __init__(self, table: Any, logs: list[Any], meta: Any) -> None:
        self.table, self.meta = table, meta
        self.logs = ((logs[0], logs[1]), (logs[2], logs[3]))

    def reader(self, txn: Any) -> "Reader":
        """Cursors kept for many reads in one transaction (a write's)."""
        return Reader(self, txn, _state(txn, self.meta)[0])

    def get(self, txn: Any, key: bytes) -> bytes | None:
        """One member's newest record, or None: a read outside a write."""
        open_ = _state(txn, self.meta)[0]
        for which in (open_, 1 - open_):
            log, logged = self.logs[which]
            at = txn.get(key, db=logged)
            if at is not None:
                return _logged(key, txn.get(at, db=log))
        return txn.get(key, db=self.table)

    def items(self, txn: Any, keep: Callable[[bytes], bool] | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Every stored member's key and newest record (of those whose key `keep` keeps), in key order."""
        # each log's index walked beside the table (its keys are some of the table's), not asked a key at a time
        open_ = _state(txn, self.meta)[0]
        walks = [_Walk(txn, *self.logs[which]) for which in (open_, 1 - open_)]
        for stored, raw in txn.cursor(db=self.table):
            if keep is None or keep(stored):
                key = bytes(stored)
                yield key, bytes(next((r for walk in walks if (r := walk.record(key)) is not None), raw))

    def put(self, txn: Any, records: Iterable[tuple[bytes, bytes]],
            fresh: list[tuple[bytes, bytes]] | None = None) -> None:
        """Members' records as they are now: in the open log for those in the table, in the table
        for the others; then a share of the closed log placed (see the module's text). Each of
        `records` is looked up in the table; or, `fresh` given, the caller knows: `records` are all
        in the table and `fresh` none (storage/shard_store.py's commit: no lookup a member)."""
        open_, commits, placed_to = _state(txn, self.meta)
        log, logged = (txn.cursor(db=db) for db in self.logs[open_])
        table = txn.cursor(db=self.table)
        position = int.from_bytes(log.key(), "big") if log.last() else 0
        if fresh is None:
            appended, newest, fresh = logged_or_fresh(records, table.set_key, position)
        else:
            appended, newest = logged_rows(records, position)
        if appended and log.putmulti(appended, append=True)[1] != len(appended):
            raise RuntimeError("the member log's positions after the last are taken")
        logged.putmulti(newest)
        table.putmulti(fresh)
        if commits + 1 < SLICES:
            placed_to = self._place(txn, 1 - open_, placed_to)
            txn.put(_STATE, bytes((open_, commits + 1)) + placed_to, db=self.meta)
        else:  # the closed log's last share: placed, then the log dropped and opened for the next commits
            # all that is left: a share is of the index as it is then, which deletes of placed members shrink
            self._place(txn, 1 - open_, placed_to, whole=True)
            for db in self.logs[1 - open_]:
                txn.drop(db, delete=False)
            txn.put(_STATE, bytes((1 - open_, 0)), db=self.meta)

    def _place(self, txn: Any, which: int, after: bytes, whole: bool = False) -> bytes:
        """The closed log's next members after the key `after` into the table, in key order: a
        twentieth of its index (its entries stay until the log is dropped: a read of them gives
        what the table now holds), or all that is left. Returns the last key placed."""
        log, logged = (txn.cursor(db=db) for db in self.logs[which])
        quota = -(-txn.stat(self.logs[which][1])["entries"] // SLICES)
        found = logged.set_range(after) if after else logged.first()
        if found and logged.key() == after:
            found = logged.next()
        placed = placed_records(logged, log.get, quota, whole) if found else []
        txn.cursor(db=self.table).putmulti(placed)
        return placed[-1][0] if placed else after

    def delete(self, txn: Any, key: bytes) -> None:
        """The member is no longer stored (its log records are dropped with their logs)."""
        for _, logged in self.logs:
            txn.delete(key, db=logged)
        txn.delete(key, db=self.table)


class Reader:
    """Members' newest records in one transaction: the open log's, the closed log's, else the table's."""

    def __init__(self, members: MemberTable, txn: Any, open_: int) -> None:
        self._table = txn.cursor(db=members.table)
        self._logs = [tuple(txn.cursor(db=db) for db in members.logs[which]) for which in (open_, 1 - open_)]

    def get(self, key: bytes) -> bytes | None:
        logged = self.logged_record(key)
        return logged if logged is not None else self._table.get(key)

    def stored(self, key: bytes) -> bytes | None:
        """`get`, asking the table first: every stored member is in it, so a member not stored
        costs one lookup instead of one in each log's index and the table's (a commit's new members)."""
        table = self._table
        if not table.set_key(key):
            return None
        logged = self.logged_record(key)
        return logged if logged is not None else table.value()

    def logged_record(self, key: bytes) -> bytes | None:
        for log, logged in self._logs:
            at = logged.get(key)
            if at is not None:
                return _logged(key, log.get(at))
        return None

    def getmulti(self, keys: list[bytes]) -> list[tuple[bytes, bytes]]:
        """(key, record) for those of `keys` stored, in the order of `keys`: the table's read in
        one call (keys sorted: each next one found from the page of the last)."""
        logged = {key: record for key in keys if (record := self.logged_record(key)) is not None}
        if not logged:
            return self._table.getmulti(keys)
        found = dict(self._table.getmulti([key for key in keys if key not in logged]))
        found.update(logged)
        return [(key, found[key]) for key in keys if key in found]


class _Walk:
    """One log's index read in key order beside the table's keys, each asked once, in order."""

    def __init__(self, txn: Any, log: Any, logged: Any) -> None:
        self._log, self._index = txn.cursor(db=log), txn.cursor(db=logged)
        self._next = bytes(self._index.key()) if self._index.first() else None

    def record(self, key: bytes) -> bytes | None:
        """The member's newest record in this log, or None; `key`s asked in increasing order."""
        while self._next is not None and self._next < key:
            self._next = bytes(self._index.key()) if self._index.next() else None
        if self._next != key:
            return None
        return _logged(key, self._log.get(self._index.value()))


def logged_or_fresh_pure(records: Iterable[tuple[bytes, bytes]], in_table: Callable[[bytes], bool], position: int
                         ) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """(the open log's rows from position `position` + 1 on, its index's rows, the table's rows):
    a member in the table (`in_table`: the table's cursor's `set_key`; every logged member is in
    the table, so one lookup decides) is logged, the others go to the table."""
    appended, newest, fresh = [], [], []
    for key, record in records:
        if in_table(key):
            position += 1
            at = position.to_bytes(8, "big")
            appended.append((at, record))
            newest.append((key, at))
        else:
            fresh.append((key, record))
    return appended, newest, fresh


def logged_rows_pure(records: Iterable[tuple[bytes, bytes]], position: int
                     ) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """`logged_or_fresh_pure` for records all in the table: (the open log's rows, its index's rows)."""
    appended, newest, _ = logged_or_fresh_pure(records, lambda key: True, position)
    return appended, newest


def placed_records_pure(logged: Any, get: Callable[[bytes], bytes | None], quota: int, whole: bool
                        ) -> list[tuple[bytes, bytes]]:
    """From the log index's cursor `logged` on (it is on an entry), up to `quota` of its members
    (all, `whole`) with their records from the log (`get`: its cursor's), the cursor moved on."""
    placed, found = [], True
    while found and (whole or len(placed) < quota):
        key, at = logged.item()
        placed.append((key, _logged(key, get(at))))
        found = logged.next()
    return placed


def _logged(key: bytes, record: bytes | None) -> bytes:
    if record is None:
        raise RuntimeError(f"the member log has lost member {key.decode(errors='replace')}'s newest record")
    return record


def _state(txn: Any, meta: Any) -> tuple[int, int, bytes]:
    """(the open log, commits it has been open, the closed log's last member placed)."""
    state = txn.get(_STATE, db=meta)
    return (state[0], state[1], bytes(state[2:])) if state is not None else (0, 0, b"")


try:  # the loops above compiled (storage/row_packer.pyx): a Python step a member was a third of what the logs cost
    from storage.row_packer import logged_or_fresh, logged_rows, placed_records
except ImportError:  # a start without the compiled code says so (storage/commit_rows.py's MISSING)
    logged_or_fresh, logged_rows, placed_records = logged_or_fresh_pure, logged_rows_pure, placed_records_pure
COMPILED_LOGS = logged_or_fresh is not logged_or_fresh_pure
