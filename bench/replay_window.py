"""Replay's instructions a transaction in a stream's steady state, for callgrind. The first
`--skip` transactions are replayed uncounted (the members enrolled, their sums filled), then the
next `--count` (to the end of a read block) are counted, scored and their results encoded as
`patron replay` does, inside its clock. Nothing after: not the members' file, which replay
writes after its clock stops, and which a difference of two replays of a stream's first lines
counted (0.57 of a member a transaction in the first 44,000 lines of `ingest`'s stream, 0.1 in
the whole).

    bench/callgrind_window.sh OUT.cg bench.replay_window examples/rules.toml STREAM --skip 500000 --count 24000

It prints the transactions counted: the instructions ÷ that number is the cost of one."""

import argparse
import time
from pathlib import Path

from bench.callgrind_flags import signal
from cli.replay import ReplayStats, _chunks, _decode, _encoder, _replay_chunk
from engine.book import Book
from engine.programme import Programme
from engine.validation import load_rules_file


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replay_window")
    parser.add_argument("rules", type=Path)
    parser.add_argument("stream", type=Path)
    parser.add_argument("--skip", type=int, default=500_000)
    parser.add_argument("--count", type=int, default=24_000)
    parser.add_argument("--flags", type=Path, help="a folder to hand shakes with callgrind_control through")
    args = parser.parse_args()
    book = Book(Programme(load_rules_file(args.rules)), keep_outputs=False)
    stats = ReplayStats(0, 0.0, 0)
    counting_from: int | None = None  # the transactions replayed before the counted ones, once counting
    cpu = 0.0
    with open(args.stream, "rb") as source:
        for chunk in _chunks(source):
            if counting_from is None and stats.transactions >= args.skip:
                signal(args.flags, "ready", "go")
                counting_from, cpu = stats.transactions, time.process_time()
            txns, whole = _decode(chunk, stats.transactions)
            _encoder.encode_lines(_replay_chunk(book, txns, whole, stats, []))
            book.take_changes()
            book.take_notices()
            if counting_from is not None and stats.transactions - counting_from >= args.count:
                break
    if counting_from is None:
        parser.error(f"the stream has {stats.transactions:,} transactions, not more than --skip")
    counted = stats.transactions - counting_from
    cpu = time.process_time() - cpu
    signal(args.flags, "done", "off")
    print(f"{counted:,} transactions counted after {counting_from:,}: {cpu / counted * 1e6:.2f} µs CPU each")


if __name__ == "__main__":
    main()
