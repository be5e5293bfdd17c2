"""A commit's members encoded (storage/row_packer.pyx `encoded_members`) as a shard holds them:
scattered over a heap that a whole day's replay built, on huge pages as a shard's are. Each round
encodes `--groups` random groups of `--group` distinct members (about what one shard's commit
touches in `patron bench ingest`) and prints the CPU a member; then the same with a small set of
members encoded again and again, their memory in the cache (what the encoding itself costs).

    PYTHONPATH=TREE python -m bench.member_encoding RULES STREAM [--group 7000] [--rounds 5]

Compare trees by running it against each, alternated: its figures move with the host's load."""

import argparse
import logging
import random
import time
from pathlib import Path

from actors.object_memory import prepare_to_hold_members
from cli.replay import ReplayStats, _chunks, _decode, _replay_chunk
from engine.book import Book
from engine.members import Member
from engine.programme import Programme
from engine.validation import load_rules_file
from storage.row_packer import encoded_members

HOT_MEMBERS = 700
"""Few enough that their objects stay in the caches between rounds."""


def book_members(rules: Path, stream: Path) -> list[Member]:
    """Every member a replay of `stream` leaves, in the book's order (the order they came)."""
    book = Book(Programme(load_rules_file(rules)), keep_outputs=False)
    stats = ReplayStats(0, 0.0, 0)
    with open(stream, "rb") as source:
        for chunk in _chunks(source):
            txns, whole = _decode(chunk, stats.transactions)
            _replay_chunk(book, txns, whole, stats, [])
            book.take_changes()
            book.take_notices()
    return list(book.members.values())


def cpu_a_member(groups: list[list[Member]]) -> float:
    """CPU microseconds a member, encoding each group into a write's dict of its own."""
    spent = counted = 0
    for group in groups:
        into: dict[str, bytes] = {}
        started = time.process_time_ns()
        encoded_members(group, into)
        spent += time.process_time_ns() - started
        counted += len(group)
    return spent / counted / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rules", type=Path)
    parser.add_argument("stream", type=Path, help="a JSONL stream (patron generate)")
    parser.add_argument("--group", type=int, default=7000, help="members a group, each encoded once")
    parser.add_argument("--groups", type=int, default=40, help="groups a round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    prepare_to_hold_members(logging.getLogger("bench"))
    members = book_members(args.rules, args.stream)
    pick = random.Random(args.seed)
    size = min(args.group, len(members))
    scattered = [cpu_a_member([pick.sample(members, size) for _ in range(args.groups)]) for _ in range(args.rounds)]
    hot = pick.sample(members, min(HOT_MEMBERS, len(members)))
    cached = [cpu_a_member([hot] * max(1, size // len(hot))) for _ in range(args.rounds)]
    print(f"{len(members):,} members held; groups of {size:,}")
    print(_figures("scattered", scattered))
    print(_figures("cached", cached))


def _figures(label: str, values: list[float]) -> str:
    listed = " ".join(f"{value:.3f}" for value in values)
    return f"{label + ':':<11}µs a member {listed}; median {sorted(values)[len(values) // 2]:.3f}"

if __name__ == "__main__":
    main()
