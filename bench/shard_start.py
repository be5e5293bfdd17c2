"""A shard's start with N members, in one process without Ray: bounded (the totals record valid),
with every member in memory, bounded after that (one pass rewrites the index), bounded again.

    .venv/bin/python -m bench.shard_start 500000 [--work DIR]

Members are enrolled with a birthday and given one purchase each, 10,000 per commit."""

import argparse
import tempfile
import time

from actors.shard import Shard, ShardConfig
from bench.settings import EXAMPLE_RULES
from engine.calendar import parse_day
from engine.operators import Enrollment
from engine.transactions import LineItem, Transaction

DAY = "2026-11-17"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.shard_start")
    parser.add_argument("members", type=int)
    parser.add_argument("--work", help="where the scratch shard goes (default: the system's temp)")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="patron-shard-start-", dir=args.work)
    rules = EXAMPLE_RULES.read_text()

    def opened(hot: int) -> Shard:
        return Shard(ShardConfig(0, folder, rules, start_day=parse_day(DAY), durability="relaxed", hot_members=hot))

    _fill(opened(1000), args.members)
    for label, hot in (("bounded, totals record valid", 1000), ("every member in memory", 0),
                       ("bounded after that (one pass)", 1000), ("bounded again", 1000)):
        wall, cpu = time.monotonic(), time.process_time()
        shard = opened(hot)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        print(f"{label:32} CPU {cpu:8.3f} s  wall {wall:8.2f} s  members {shard.status().members:,}, "
              f"in memory {shard.members.held():,}", flush=True)
        shard.close()
    print(f"scratch shard: {folder}")


def _fill(shard: Shard, members: int) -> None:
    at = int(time.mktime(time.strptime(f"{DAY} 10:00", "%Y-%m-%d %H:%M")) * 1000)
    for start in range(0, members, 10_000):
        ids = [f"E{n:08d}" for n in range(start, min(members, start + 10_000))]
        shard.enroll_many([Enrollment(member_id=m, birthday=f"{1 + n % 12:02d}-{1 + n % 28:02d}")
                           for n, m in enumerate(ids, start)])
        shard.apply([Transaction(f"t-{m}", m, at, "purchase", lines=[LineItem(sku="S", paid_minor=2900 + n % 5000)])
                     for n, m in enumerate(ids, start)])
    shard.close()


if __name__ == "__main__":
    main()
