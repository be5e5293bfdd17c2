"""A shard's CPU with a bounded hot set against every member in memory, in one process without
Ray, on the shape of `patron bench members`: N members enrolled, then either a Zipf stream over
exactly them (`apply`, 1,000 transactions a batch) or the midnight run after each bought once
(`midnight`). GC as in a shard actor (actors/logs.py `collect_rarely`, frozen after the start).

    .venv/bin/python -m bench.shard_hot apply 200000 --hot 20000,0 --transactions 40000
    .venv/bin/python -m bench.shard_hot midnight 200000 --hot 20000,0
    .venv/bin/python -m bench.shard_hot apply 1500000 --hot 150000 --transactions 40000 --mapped-budget 0
    .venv/bin/python -m bench.shard_hot midnight 520000 --hot 100000 --chunk 15000 --durability strict

(the last as one shard of `patron bench midnight --hot-members 100000`: its steps and durability).

The filled shard is kept in --work and copied for every run. For instruction counts of the
measured part only (bench/callgrind_flags.py):

    bench/callgrind_window.sh OUT.cg bench.shard_hot apply 200000 --hot 20000 --transactions 40000"""

import argparse
import gc
import logging
import resource
import shutil
import tempfile
import time
from pathlib import Path

import msgspec

from actors.object_memory import prepare_to_hold_members
from actors.shard import Shard, ShardConfig
from bench.callgrind_flags import signal
from bench.settings import EXAMPLE_RULES
from bench.workload import Workload, generate
from engine.calendar import parse_day
from engine.operators import Enrollment
from engine.transactions import LineItem, Transaction

DAY = "2026-11-17"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.shard_hot")
    parser.add_argument("what", choices=["apply", "midnight"])
    parser.add_argument("members", type=int)
    parser.add_argument("--hot", default="0", help="hot sets to compare, comma-separated (0: every member)")
    parser.add_argument("--transactions", type=int, default=40_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--flags", type=Path, help="a folder to hand shakes with callgrind_control through")
    parser.add_argument("--chunk", type=int, default=2_000, help="members per midnight step (a server: 15,000)")
    parser.add_argument("--durability", default="relaxed", choices=["relaxed", "strict"])
    parser.add_argument("--mapped-budget", type=int, metavar="MiB",
                        help="the store's budget of mapped LMDB pages (storage/mapped_pages.py; 0: never dropped)")
    args = parser.parse_args()
    prepare_to_hold_members(logging.getLogger("bench"))  # as a shard actor
    filled = _filled(args.work / f"patron-shard-hot-{args.what}-{args.members}", args.members, args.what)
    txns = _stream(args.members, args.transactions) if args.what == "apply" else []
    for _ in range(args.runs):
        for hot in (int(h) for h in args.hot.split(",")):
            folder = Path(tempfile.mkdtemp(prefix="patron-shard-hot-", dir=args.work))
            shutil.copytree(filled, folder, dirs_exist_ok=True)
            shard = _open(folder, hot, args.durability)
            if args.mapped_budget is not None:
                shard.store.mapped_budget = args.mapped_budget << 20
            gc.freeze()  # as a shard actor does after its start
            signal(args.flags, "ready", "go")
            before = resource.getrusage(resource.RUSAGE_SELF)
            cpu = time.process_time()
            count = _apply(shard, txns) if args.what == "apply" else _midnight(shard, args.chunk)
            cpu = time.process_time() - cpu
            after = resource.getrusage(resource.RUSAGE_SELF)
            signal(args.flags, "done", "off")
            print(f"{args.what} hot={hot}: {count:,} {'transactions' if args.what == 'apply' else 'members visited'}, "
                  f"CPU {cpu:.2f} s, {1e6 * cpu / max(count, 1):.1f} µs each "
                  f"(system {after.ru_stime - before.ru_stime:.2f} s, page faults "
                  f"{after.ru_minflt - before.ru_minflt:,}), read from LMDB {shard.members.loads:,}",
                  flush=True)
            shard.close()
            shutil.rmtree(folder)


def _open(folder: Path, hot: int, durability: str = "relaxed") -> Shard:
    return Shard(ShardConfig(0, str(folder), EXAMPLE_RULES.read_text(), start_day=parse_day(DAY),
                             durability=durability, hot_members=hot))


def _filled(folder: Path, members: int, what: str) -> Path:
    """Members E00000000… enrolled as `patron bench members` does; for `midnight` each bought once."""
    if folder.exists():
        return folder
    shard = _open(folder, 1000)
    at = int(time.mktime(time.strptime(f"{DAY} 10:00", "%Y-%m-%d %H:%M")) * 1000)
    for start in range(0, members, 5000):
        ids = range(start, min(members, start + 5000))
        shard.enroll_many([Enrollment(member_id=f"E{n:08d}", birthday=f"{1 + n % 12:02d}-{1 + n % 28:02d}")
                           for n in ids])
        if what == "midnight":
            shard.apply([Transaction(f"t-{n}", f"E{n:08d}", at, "purchase",
                                     lines=[LineItem(sku="S", paid_minor=2900 + n % 5000)]) for n in ids])
    shard.close()
    return folder


def _stream(members: int, transactions: int) -> list[Transaction]:
    return [msgspec.convert(t, Transaction) for t in generate(Workload(
        transactions=transactions, members=members, days=1, seed=3, start=DAY, member_prefix="E", member_space=1))]


def _apply(shard: Shard, txns: list[Transaction]) -> int:
    for start in range(0, len(txns), 1000):
        shard.apply(txns[start:start + 1000])
    return len(txns)


def _midnight(shard: Shard, chunk: int = 2_000) -> int:
    visited = shard.midnight_begin(parse_day(DAY) + 1)
    while not shard.midnight_step(chunk)[2]:
        pass
    return visited


if __name__ == "__main__":
    main()
