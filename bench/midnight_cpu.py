"""The midnights' CPU alone in bench/scoring.py's pass: every `advance_to` the stream's days cause
(expiry, reminders, tiers, tags, anomaly rows), timed inside the pass. For comparing two trees back
to back: put the other tree first on PYTHONPATH and run this file by its path.

    python bench/midnight_cpu.py --rules R --transactions T.jsonl [--repeat N]

Prints one JSON line: the midnights' CPU seconds in each repeat (a fresh book each time), the best."""

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import msgspec

from bench.scoring import score
from engine import replay
from engine.book import Book
from engine.programme import Programme
from engine.transactions import Transaction
from engine.types import Day
from engine.validation import load_rules_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=Path, required=True)
    parser.add_argument("--transactions", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    gc.set_threshold(200_000, 50, 1_000)  # as patron's processes run (actors.logs.collect_rarely)
    spent, calls = [0.0], [0]
    advance_to = replay.advance_to

    def timed(book: Book, day: Day) -> list:
        start = time.process_time()
        calls[0] += 1
        try:
            return advance_to(book, day)
        finally:
            spent[0] += time.process_time() - start

    replay.advance_to = timed  # replay_stream finds it among the module's names, compiled or not
    txns = msgspec.json.Decoder(Transaction).decode_lines(args.transactions.read_bytes())
    rules = load_rules_file(args.rules)
    runs = []
    for _ in range(args.repeat):
        spent[0] = 0.0
        score(Programme(rules), txns)
        runs.append(round(spent[0], 4))
    if not calls[0]:  # replay_stream no longer finds advance_to by name: nothing was timed
        sys.exit("midnight_cpu: advance_to was never called through engine.replay's name; this bench needs updating")
    print(json.dumps({"transactions": len(txns), "midnight_cpu_seconds": runs, "best": min(runs)}))


if __name__ == "__main__":
    main()
