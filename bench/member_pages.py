"""What a commit writes for the members it touches, in raw LMDB, by layout: each member's record
put in place in a table keyed by member (`in-place`, as shards stored members before layout 5);
appended to a log with an index of the newest record of each member in it, placed in the table
whole every `--place-every` commits and dropped (`one-log`: the bound of what a log can save); or
storage/member_table.py's two logs (`two-logs`: one open to the commits, the other placed a slice
a commit and dropped whole after `SLICES` commits, then they swap).

A probe for issue 15's next step, not a model of the shard: the records are random bytes of a
stored member's size, and each commit also appends what a shard's does besides (a ledger row and
an index row a transaction, both appended: keyed by ledger position and by transaction id). The
members touched are the stream's own, in its order, those of one shard of two (`crc32` of the id
picks it; the server routes by virtual shard, which spreads members as evenly). Every member of
the stream is stored before the clock starts: the steady state of a long-running shard, where
the bench's `ingest` also enrolls them as it goes.

    .venv/bin/python -m bench.member_pages STREAM --layout in-place|one-log|two-logs [--lines N] [--commit N]

CPU is the process's (user and system), `sync` the time spent in LMDB's commits (its page writes
and `fdatasync`), `written` the bytes the process sent to the disk (`/proc/self/io`)."""

import argparse
import os
import random
import shutil
import tempfile
import time
import zlib
from pathlib import Path

import lmdb
import msgspec

from bench.machine import bytes_written
from storage.member_table import SLICES

__all__ = ["main"]


class _Line(msgspec.Struct):
    member_id: str


def member_sequence(stream: Path, lines: int, shard: int, shards: int) -> list[bytes]:
    """The member ids of the stream's first `lines` transactions that fall to `shard`, in order."""
    decode = msgspec.json.Decoder(_Line).decode
    ids = []
    with open(stream, "rb") as source:
        for count, line in enumerate(source):
            if count == lines:
                break
            key = decode(line).member_id.encode()
            if zlib.crc32(key) % shards == shard:
                ids.append(key)
    return ids


class Store:
    def __init__(self, folder: Path, record_bytes: int, seed: int) -> None:
        self.env = lmdb.open(str(folder), map_size=1 << 36, max_dbs=7, sync=True, metasync=True, readahead=False)
        names = (b"members", b"ledger", b"txn_index")
        self.members, self.ledger, self.index = (self.env.open_db(name) for name in names)
        self.logs = [(self.env.open_db(b"log%d" % n), self.env.open_db(b"logged%d" % n)) for n in (0, 1)]
        self.random = random.Random(seed)
        self.record_bytes = record_bytes
        self.position = self.txn_number = self.log_position = 0
        self.open_log = self.open_for = 0
        self.sync_seconds = 0.0

    def record(self) -> bytes:
        size = self.record_bytes + self.random.randint(-self.record_bytes // 4, self.record_bytes // 4)
        return self.random.randbytes(size)

    def preload(self, ids: set[bytes]) -> None:
        with self.env.begin(write=True) as txn:
            txn.cursor(self.members).putmulti(sorted((key, self.record()) for key in ids))

    def commit(self, touched: list[bytes], layout: str, place: bool) -> None:
        txn = self.env.begin(write=True)
        ledger, index = [], []
        for key in touched:  # a ledger row and an index row a transaction, appended
            self.position += 1
            self.txn_number += 1
            ledger.append((self.position.to_bytes(8, "big"), self.random.randbytes(70)))
            index.append((b"T%012d\x00" % self.txn_number + key, self.random.randbytes(40)))
        txn.cursor(self.ledger).putmulti(ledger, append=True)
        txn.cursor(self.index).putmulti(index, append=True)
        members = {key: self.record() for key in touched}  # a member's newest record, once a commit
        if layout == "in-place":
            txn.cursor(self.members).putmulti(list(members.items()))
        else:
            self._log(txn, members)
            if layout == "two-logs":
                self._place_closed(txn)
            elif place:
                self._place_whole(txn)
        began = time.perf_counter()
        txn.commit()
        self.sync_seconds += time.perf_counter() - began

    def _log(self, txn: lmdb.Transaction, members: dict[bytes, bytes]) -> None:
        rows, newest = [], []
        for key, record in members.items():
            self.log_position += 1
            at = self.log_position.to_bytes(8, "big")
            rows.append((at, record))
            newest.append((key, at))
        log, logged = self.logs[self.open_log]
        txn.cursor(log).putmulti(rows, append=True)
        txn.cursor(logged).putmulti(newest)

    def _place_whole(self, txn: lmdb.Transaction) -> None:
        """Each logged member's newest record into the member table, in key order; the log dropped."""
        log, logged = self.logs[0]
        reading = txn.cursor(log)
        txn.cursor(self.members).putmulti([(key, reading.get(at)) for key, at in txn.cursor(logged).iternext()])
        txn.drop(log, delete=False)
        txn.drop(logged, delete=False)

    def _place_closed(self, txn: lmdb.Transaction) -> None:
        """storage/member_table.py's placement: the closed log's share of what is left, in key
        order; after SLICES commits it is dropped whole and the logs swap."""
        log, logged = self.logs[1 - self.open_log]
        index, reading = txn.cursor(logged), txn.cursor(log)
        quota = -(-txn.stat(logged)["entries"] // (SLICES - self.open_for))
        placed = []
        found = index.first()
        while found and len(placed) < quota:
            key, at = index.item()
            placed.append((key, reading.get(at)))
            found = index.delete() and bool(index.key())
        txn.cursor(self.members).putmulti(placed)
        self.open_for += 1
        if self.open_for == SLICES:
            txn.drop(log, delete=False)
            txn.drop(logged, delete=False)
            self.open_log, self.open_for = 1 - self.open_log, 0

    def held(self) -> int:
        with self.env.begin() as txn:
            return sum(txn.stat(log)["entries"] for log, _ in self.logs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stream", type=Path)
    parser.add_argument("--layout", choices=("in-place", "one-log", "two-logs"), required=True)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--commit", type=int, default=4_000, help="transactions a commit (ingest: about 4,000)")
    parser.add_argument("--place-every", type=int, default=20, help="commits between placements (one-log)")
    parser.add_argument("--record-bytes", type=int, default=409, help="a stored member's size (ingest: 409)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    ids = member_sequence(args.stream, args.lines, 0, 2)
    folder = Path(tempfile.mkdtemp(prefix="member-pages-", dir="/var/tmp"))
    try:
        store = Store(folder, args.record_bytes, args.seed)
        store.preload(set(ids))
        os.sync()
        written, cpu, began = bytes_written(), os.times(), time.perf_counter()
        commits = [ids[at:at + args.commit] for at in range(0, len(ids), args.commit)]
        for number, touched in enumerate(commits, 1):
            store.commit(touched, args.layout, place=number % args.place_every == 0 or number == len(commits))
        seconds, after = time.perf_counter() - began, os.times()
        used = after.user - cpu.user + after.system - cpu.system
        per = 1000 / len(ids)
        print(f"{args.layout}: {len(ids):,} transactions, {len(set(ids)):,} members, {len(commits)} commits; "
              f"CPU {used * per:.4f} s per 1,000 (system {(after.system - cpu.system) * per:.4f}), "
              f"sync {store.sync_seconds * per:.4f} s per 1,000, wall {seconds * per:.4f} s per 1,000, "
              f"written {(bytes_written() - written) / len(ids):,.0f} bytes a transaction; "
              f"{store.held():,} records logged at the end")
        store.env.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
