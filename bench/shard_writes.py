"""The shards' side of `serve` without Ray or gRPC, for instruction counts (callgrind) and CPU:
a stream routed to two shards in one process, each scoring it in writes as the gateway groups
batches (a first write of `--first` transactions, then writes of `--rest`), on real LMDB, with
the programme's coupon grant keeper in the process (LocalGrants) unless `--no-keeper`.

Runs against any tree put first on PYTHONPATH (the tree before spending has no keeper):

    PYTHONPATH=TREE python bench/shard_writes.py RULES STREAM [--first N] [--rest N] [--limit N] [--wire]

`--limit 0` scores nothing: under callgrind, that run is the start-up to take off. `--wire`
sends each write as the gateway does, its transactions' protobuf bytes in a BatchPart through
`Shard.apply_encoded`, so reading them and encoding the results are counted too (the parts are
made before the clock; `--wire --no-apply` makes them and applies none: the start-up to take
off from a `--wire` run). It collects garbage as a shard actor does (`collect_rarely`, and the
start-up frozen), so the collector costs what it costs a shard. It prints the writes' CPU, their
time (LMDB's syncs included) and the bytes they sent to the disk, per transaction; `--count-after N`
counts only the writes after the stream's first N transactions (a warm store, most members known).
Their instructions alone, as `python -m bench.shard_writes` (bench/callgrind_flags.py):

    bench/callgrind_window.sh OUT.cg bench.shard_writes RULES STREAM --wire --count-after N"""

import argparse
import gc
import logging
import shutil
import tempfile
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

from actors.object_memory import prepare_to_hold_members
from actors.shard import Shard, ShardConfig
from bench.callgrind_flags import signal
from bench.machine import bytes_written
from cli.replay import decode_line
from engine.calendar import parse_day

SHARDS = 2


def _keeper(root: Path, rules_text: str) -> Any:
    from actors.coupon_grants import Grants, LocalGrants
    from engine.programme import Programme
    from engine.validation import load_rules
    from storage.grant_store import GrantStore

    inventory = {c.id: c.inventory for c in Programme(load_rules(rules_text)).coupons.limited}
    return LocalGrants(Grants(GrantStore(root / "stock"), SHARDS, inventory))


def _part(txns: list) -> bytes:
    """The BatchPart a gateway sends a shard for these transactions."""
    import msgspec

    from actors.batch_order import BatchPart
    from client import transaction_message
    from proto import patron_pb2 as pb

    data = pb.TransactionBatch(transactions=[transaction_message(txn) for txn in txns]).SerializeToString()
    if "batch_id" not in BatchPart.__struct_fields__:  # a tree before batches carried their id to shards
        return msgspec.msgpack.encode(BatchPart(data))
    return msgspec.msgpack.encode(BatchPart(data, batch_id=uuid.uuid4().hex))  # as PatronClient names them


def _apply(shard: Shard, writes: list[tuple[Any, int]], args: argparse.Namespace) -> tuple[float, float, int, int]:
    """Apply each write (its part or transactions, and how many): the CPU, time and bytes
    written of those counted (`--count-after`), and how many transactions they held."""
    cpu = wall = 0.0
    written = counted = done = 0
    counting = False
    for write, size in writes:
        done += size
        if not counting and done * SHARDS > args.count_after:
            counting = True
            signal(args.flags, "ready", "go")
        began, began_wall, began_bytes = time.process_time(), time.perf_counter(), bytes_written()
        if args.wire:
            shard.apply_encoded([write])
        else:
            shard.apply(write)
        if counting:
            cpu += time.process_time() - began
            wall += time.perf_counter() - began_wall
            written += bytes_written() - began_bytes
            counted += size
    if counting:
        signal(args.flags, "done", "off")
    return cpu, wall, written, counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rules", type=Path)
    parser.add_argument("stream", type=Path)
    parser.add_argument("--first", type=int, default=1000)
    parser.add_argument("--rest", type=int, default=4000)
    parser.add_argument("--limit", type=int, default=-1, help="score only the stream's first N transactions")
    parser.add_argument("--start-date", default="2026-11-17")
    parser.add_argument("--no-keeper", action="store_true", help="each shard owns the whole inventory")
    parser.add_argument("--wire", action="store_true", help="protobuf bytes in, BatchAck entries out")
    parser.add_argument("--no-apply", action="store_true", help="make the writes, apply none")
    parser.add_argument("--hot-members", type=int, default=0, help="at most this many members in memory per shard")
    parser.add_argument("--count-after", type=int, default=0,
                        help="count only the writes after this many of the stream's transactions (the store warm)")
    parser.add_argument("--flags", type=Path, help="a folder to hand shakes with callgrind_control through")
    args = parser.parse_args()
    # as a shard actor: at Python's default thresholds the collector was 3% of a write
    prepare_to_hold_members(logging.getLogger("bench"))
    rules_text = args.rules.read_text()
    with args.stream.open("rb") as lines:
        txns = [decode_line(line) for line in lines if line.strip()]
    txns = txns if args.limit < 0 else txns[:args.limit]
    routed: list[list] = [[] for _ in range(SHARDS)]
    for txn in txns:  # actors/routing.py's even layout
        routed[zlib.crc32(txn.member_id.encode()) % 1024 % SHARDS].append(txn)
    root = Path(tempfile.mkdtemp(prefix="shard-writes-"))
    try:
        keeper = None if args.no_keeper else _keeper(root, rules_text)
        cpu = wall = 0.0
        counted = written = 0
        for number, mine in enumerate(routed):
            config = ShardConfig(shard=number, path=str(root / f"s{number}"), rules_text=rules_text,
                                 start_day=parse_day(args.start_date), hot_members=args.hot_members)
            shard = Shard(config, keeper) if keeper else Shard(config)
            writes, sizes, start, size = [], [], 0, args.first
            while start < len(mine):
                writes.append(_part(mine[start:start + size]) if args.wire else mine[start:start + size])
                sizes.append(len(mine[start:start + size]))
                start, size = start + size, args.rest
            gc.freeze()  # as a shard actor does once its members are loaded
            measured = _apply(shard, [] if args.no_apply else list(zip(writes, sizes, strict=True)), args)
            cpu, wall, written, counted = (a + b for a, b in zip((cpu, wall, written, counted), measured, strict=True))
            shard.close()
    finally:
        shutil.rmtree(root)
    print(f"{counted:,} transactions counted, {1000 * cpu / max(1, counted):.4f} CPU s per 1,000 in the shards' "
          f"writes, {1000 * wall / max(1, counted):.4f} s per 1,000 of their time (syncs included), "
          f"{written / max(1, counted):,.0f} bytes written a transaction")



if __name__ == "__main__":
    main()
