"""Where a shard's memory per held member goes, in one process without Ray, on the shape of
`patron bench members`: N members imported as `bench members` imports them, then a Zipf stream over
them into a shard whose hot set holds H, then every member read once so the hot set is full.
Prints Python's heap per held member (tracemalloc), the largest allocation sites, and the bytes of
the held members' own objects by type (sys.getsizeof over each member's parts).

    .venv/bin/python -m bench.shard_memory 200000 --hot 100000 --transactions 40000
"""

import argparse
import gc
import logging
import shutil
import sys
import tempfile
import tracemalloc
from collections import Counter
from pathlib import Path

import msgspec

from actors.object_memory import prepare_to_hold_members
from actors.opening_wire import encode_rows
from actors.shard import Shard
from bench.shard_hot import DAY, _apply, _open, _stream
from engine.opening import Opening


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.shard_memory")
    parser.add_argument("members", type=int)
    parser.add_argument("--hot", type=int, default=100_000)
    parser.add_argument("--transactions", type=int, default=40_000)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    prepare_to_hold_members(logging.getLogger("bench"))  # as a shard actor
    folder = Path(tempfile.mkdtemp(prefix="patron-shard-memory-", dir=args.work))
    try:
        _imported(folder, args.members)
        shard = _open(folder, args.hot)
        gc.collect()
        tracemalloc.start(1)
        before = tracemalloc.take_snapshot()
        base = tracemalloc.get_traced_memory()[0]
        _apply(shard, _stream(args.members, args.transactions))
        shard.members.passing = False
        for n in range(args.members):  # fill the hot set: the most recently read stay
            shard.members.get(f"E{n:08d}")
        shard.members.settle()
        gc.collect()
        held = shard.members.held()
        traced = tracemalloc.get_traced_memory()[0] - base
        after = tracemalloc.take_snapshot()
        print(f"{held:,} members held: {traced / held:,.0f} bytes of Python heap each ({traced / 2**20:,.1f} MiB)")
        for stat in after.compare_to(before, "lineno")[:args.top]:
            print(f"  {stat.size_diff / held:8,.1f} B/member  {stat.count_diff / held:6.2f} objects  "
                  f"{stat.traceback[0].filename.split('/work/')[-1]}:{stat.traceback[0].lineno}")
        tracemalloc.stop()
        print("the held members' own objects, bytes per member by type:")
        for kind, size in _by_type(shard).most_common():
            print(f"  {size / held:8,.1f}  {kind}")
        shard.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _imported(folder: Path, members: int) -> None:
    """The members `bench members` imports (bench/streams.py write_enrollees), by the import path."""
    shard = _open(folder, 1000)
    for start in range(0, members, 2000):
        rows = [Opening(member_id=f"E{n:08d}", channel=("app", "pos", "web")[n % 3],
                        birthday=f"{1 + n % 12:02d}-{1 + n % 28:02d}", source="bench", campaign=f"spring-{n % 7}")
                for n in range(start, min(members, start + 2000))]
        shard.import_members("bench", encode_rows(rows))
    shard.close()


def _by_type(shard: Shard) -> Counter:
    """sys.getsizeof of every object a held member reaches, by type (shared objects counted once)."""
    seen: set[int] = set()
    sizes: Counter = Counter()
    hot = shard.members._hot
    for member_id, member in hot.items():
        _walk(member_id, sizes, seen, "key")
        _walk(member, sizes, seen, "")
    return sizes


def _walk(value: object, sizes: Counter, seen: set[int], label: str) -> None:
    if id(value) in seen or value is None or isinstance(value, bool):
        return
    seen.add(id(value))
    name = label or type(value).__name__
    sizes[name] += sys.getsizeof(value)
    if isinstance(value, msgspec.Struct):
        for field in value.__struct_fields__:
            _walk(getattr(value, field), sizes, seen, "")
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(key, sizes, seen, "")
            _walk(item, sizes, seen, "")
    elif isinstance(value, list | tuple):
        for item in value:
            _walk(item, sizes, seen, "")


if __name__ == "__main__":
    assert DAY
    main()
