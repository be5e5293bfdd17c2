"""The engine's CPU on a stream, in this process: scoring (as replay does) and encoding the
ledger entries (as a shard stores them), with JSON decoding left out. For comparing two trees
back to back: put the other tree first on PYTHONPATH and run this file by its path.

    python bench/scoring.py --rules R --transactions T.jsonl [--repeat N] [--limit N]

Prints one JSON line: CPU seconds of each repeat (a fresh book each time) and the best."""

import argparse
import gc
import json
import time
from pathlib import Path

import msgspec

from engine.book import Book
from engine.programme import Programme
from engine.replay import replay_stream
from engine.transactions import Transaction
from engine.validation import load_rules_file

_CHUNK = 1000


def score(programme: Programme, txns: list[Transaction]) -> float:
    """CPU seconds to score `txns` on a fresh book and encode each chunk's ledger entries."""
    encode = msgspec.msgpack.Encoder().encode
    book = Book(programme)
    cpu = time.process_time()
    for start in range(0, len(txns), _CHUNK):
        for _ in replay_stream(book, txns[start:start + _CHUNK]):
            pass
        entries, _ = book.take_changes()
        book.take_notices()
        for entry in entries:
            encode(entry)
    return time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=Path, required=True)
    parser.add_argument("--transactions", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="score only the first N transactions (0: all)")
    args = parser.parse_args()
    gc.set_threshold(200_000, 50, 1_000)  # as patron's processes run (actors.logs.collect_rarely)
    lines = args.transactions.read_bytes().splitlines(keepends=True)
    txns = msgspec.json.Decoder(Transaction).decode_lines(b"".join(lines[:args.limit] if args.limit else lines))
    rules = load_rules_file(args.rules)
    runs = [round(score(Programme(rules), txns), 4) for _ in range(args.repeat)]
    print(json.dumps({"transactions": len(txns), "cpu_seconds": runs, "best": min(runs)}))


if __name__ == "__main__":
    main()
