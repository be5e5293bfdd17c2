"""What a shard stores, as digests, to compare two trees byte for byte: one `Shard` (no Ray,
relaxed durability) fed a generated stream in batches of up to 500 that never span a day, every
midnight run in steps of --step as the days turn (and 20 more after the stream), then a digest
of every key and value of every database after each run and at the end (an event row without
its wall-clock `at_ms`), and one of every answer and anomaly day.

    patron generate --out a.jsonl --transactions 20000 --members 2000 --days 40 --spending 0.2 \\
        --seed 11 --start 2026-11-10
    PYTHONPATH=TREE .venv/bin/python bench/store_digest.py a.jsonl examples/rules.toml --hot 40 --out A.json

Run it against each tree (PYTHONPATH: the tree whose shard is run; this file may come from
another) with the same stream, rules and options, and compare the JSON files: equal files mean
equal answers and equal stored bytes after every midnight. `--part` sets the tree's
`ShardConfig.midnight_part` where it has one. `--wire` sends each batch as the gateway does (its
protobuf bytes in a BatchPart through `Shard.apply_encoded`) and digests the answers' bytes (each
part's results entries, sizes and batch statistics but their timings)."""

import argparse
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import msgspec

from actors.member_index import TOTALS_KEY
from actors.shard import Shard, ShardConfig
from engine.calendar import parse_day
from engine.transactions import Transaction

_AT_MS = slice(5, 13)
"""Where an event row keeps its wall-clock time (storage/outbox.py `_HEAD`: form, day, at_ms)."""
_HOW_STORED = (b"member_logs", b"storage_layout")
"""Meta keys that say how, not what, a tree stores: storage/member_table.py's state (which log is
open, how far it is placed) and the layout's number."""
_STAMPED = TOTALS_KEY.encode()
"""Written with the number of its LMDB transaction (`put_stamped_meta`), which differs between
trees that open different databases: digested without it."""


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.store_digest")
    parser.add_argument("stream", type=Path)
    parser.add_argument("rules", type=Path)
    parser.add_argument("--hot", type=int, default=0, help="hot_members (0: every member in memory)")
    parser.add_argument("--step", type=int, default=300, help="members per midnight step")
    parser.add_argument("--part", type=int, default=0, help="midnight_part, where the tree has it (0: its default)")
    parser.add_argument("--start", default="2026-11-10")
    parser.add_argument("--wire", action="store_true", help="batches in and answers out as protobuf bytes")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="patron-store-digest-"))
    extra = {"midnight_part": args.part} if args.part and "midnight_part" in ShardConfig.__struct_fields__ else {}
    shard = Shard(ShardConfig(0, str(folder), args.rules.read_text(), durability="relaxed",
                              start_day=parse_day(args.start), hot_members=args.hot, **extra))
    try:
        answers, digests = _run(shard, args.stream, args.step, _wire_apply(shard) if args.wire else shard.apply)
    finally:
        shard.close()
        shutil.rmtree(folder)
    args.out.write_text(json.dumps({"answers": answers, "digests": digests}))
    print(f"{args.out}: answers {answers[:12]}, {len(digests) - 1} midnights, last store {digests[-1][:12]}")


def _wire_apply(shard: Shard) -> Callable[[list[Transaction]], bytes]:
    """A batch through the gateway's path: its answer's bytes without the commit's timings."""
    from actors.batch_order import BatchPart
    from actors.batch_wire import PartAnswer
    from client import transaction_message
    from proto import patron_pb2 as pb

    def apply(batch: list[Transaction]) -> bytes:
        data = pb.TransactionBatch(transactions=[transaction_message(txn) for txn in batch]).SerializeToString()
        answer = shard.apply_encoded([msgspec.msgpack.encode(BatchPart(data))])[0]
        if isinstance(answer, Exception):
            raise answer
        part = msgspec.msgpack.decode(answer, type=PartAnswer)
        part.stats.apply_seconds = part.stats.commit_seconds = part.stats.disk_write_seconds = 0.0
        return msgspec.msgpack.encode(part)
    return apply


def _run(shard: Shard, stream: Path, step: int, apply: Callable[[list[Transaction]], object]
         ) -> tuple[str, list[str]]:
    answers, digests = hashlib.sha256(), []
    day_of = shard.book.programme.calendar.day_of
    decode = msgspec.json.Decoder(Transaction).decode
    batch: list[Transaction] = []
    with stream.open("rb") as lines:
        for txn in [decode(line) for line in lines]:
            day = day_of(txn.occurred_at_ms)
            if batch and (day != day_of(batch[0].occurred_at_ms) or len(batch) == 500):
                answers.update(msgspec.json.encode(apply(batch)))
                batch = []
            while shard.book.today < day:
                digests.append(_midnight(shard, step, answers))
            batch.append(txn)
    if batch:
        answers.update(msgspec.json.encode(apply(batch)))
    digests += [_midnight(shard, step, answers) for _ in range(20)]
    digests.append(_stored(shard))
    return answers.hexdigest(), digests


def _midnight(shard: Shard, step: int, answers: "hashlib._Hash") -> str:
    shard.midnight_begin(shard.book.today + 1)
    finished = False
    while not finished:
        _, days, finished = shard.midnight_step(step)
        answers.update(json.dumps(days).encode())
    return _stored(shard)


def _stored(shard: Shard) -> str:
    """Members as read (their newest records, wherever a tree keeps them: storage/member_table.py's
    logs are where, not what, and depend on how writes fell into commits), every other database
    as stored but for `_HOW_STORED`: so trees of different layouts compare by what they store."""
    digest = hashlib.sha256()
    table = getattr(shard.store, "member_table", None)
    with shard.store.env.begin() as txn:
        for name, db in sorted(shard.store.dbs.items()):
            if name.startswith("member_log"):
                continue
            digest.update(name.encode())
            rows = table.items(txn) if name == "members" and table is not None else txn.cursor(db=db)
            for key, stored in rows:
                if name == "meta" and key in _HOW_STORED:
                    continue
                value = stored[:_AT_MS.start] + stored[_AT_MS.stop:] if name == "events" else stored
                if name == "meta" and key == _STAMPED:  # its stamp is an LMDB transaction's number
                    value = msgspec.msgpack.encode(msgspec.msgpack.decode(stored)[1])
                digest.update(len(key).to_bytes(4, "big") + key + len(value).to_bytes(4, "big") + value)
    return digest.hexdigest()


if __name__ == "__main__":
    main()
