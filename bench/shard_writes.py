"""The shards' side of `serve` without Ray or gRPC, for instruction counts (callgrind) and CPU:
a stream routed to two shards in one process, each scoring it in writes as the gateway groups
batches (a first write of `--first` transactions, then writes of `--rest`), on real LMDB, with
the programme's coupon grant keeper in the process (LocalGrants) unless `--no-keeper`.

Runs against any tree put first on PYTHONPATH (the tree before spending has no keeper):

    PYTHONPATH=TREE python bench/shard_writes.py RULES STREAM [--first N] [--rest N] [--limit N]

`--limit 0` scores nothing: under callgrind, that run is the start-up to take off."""

import argparse
import shutil
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from actors.shard import Shard, ShardConfig
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rules", type=Path)
    parser.add_argument("stream", type=Path)
    parser.add_argument("--first", type=int, default=1000)
    parser.add_argument("--rest", type=int, default=4000)
    parser.add_argument("--limit", type=int, default=-1, help="score only the stream's first N transactions")
    parser.add_argument("--start-date", default="2026-11-17")
    parser.add_argument("--no-keeper", action="store_true", help="each shard owns the whole inventory")
    args = parser.parse_args()
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
        cpu = 0.0
        for number, mine in enumerate(routed):
            config = ShardConfig(shard=number, path=str(root / f"s{number}"), rules_text=rules_text,
                                 start_day=parse_day(args.start_date))
            shard = Shard(config, keeper) if keeper else Shard(config)
            start, size = 0, args.first
            while start < len(mine):
                began = time.process_time()
                shard.apply(mine[start:start + size])
                cpu += time.process_time() - began
                start, size = start + size, args.rest
            shard.close()
    finally:
        shutil.rmtree(root)
    print(f"{len(txns):,} transactions, {1000 * cpu / max(1, len(txns)):.4f} CPU s per 1,000 in the shards' writes")


if __name__ == "__main__":
    main()
