"""The gateway's cut of batches into shards' parts, alone: a stream in batches of `--batch`
(serialised TransactionBatches, as clients send them), each transaction's shard found as the
gateway finds it (two shards), then each batch cut `--repeat` times by the compiled cutter
(actors/batch_cutter.pyx) or the pure one. Prints the CPU time per transaction; under
callgrind, `--cutter none` makes the batches and cuts nothing (the start-up to take off):

    valgrind --tool=callgrind .venv/bin/python bench/batch_cutting.py STREAM --cutter compiled|pure|none
"""

import argparse
import time
from pathlib import Path

from actors.batch_wire import _indices, cut_pure, split_entries
from actors.routing import even_layout, shards_of
from cli.replay import decode_line
from client import transaction_message
from proto import patron_pb2 as pb

SHARDS = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stream", type=Path)
    parser.add_argument("--transactions", type=int, default=24_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cutter", choices=["compiled", "pure", "none"], default="compiled")
    args = parser.parse_args()
    with args.stream.open("rb") as lines:
        txns = [decode_line(line) for _, line in zip(range(args.transactions), lines, strict=False)]
    layout = even_layout(SHARDS)
    batches = []
    for start in range(0, len(txns), args.batch):
        chunk = txns[start:start + args.batch]
        data = pb.TransactionBatch(batch_id=f"B{start}", transactions=[transaction_message(t) for t in chunk]
                                   ).SerializeToString()
        batches.append((data, shards_of(layout, [t.member_id for t in chunk])))
    if args.cutter == "none":
        return
    started = time.process_time()
    for _ in range(args.repeat):
        for data, shards in batches:
            if args.cutter == "compiled":
                split_entries(data, shards, _unusual)
            else:
                cut_pure(data, _indices(shards), len(shards), _unusual)
    seconds = time.process_time() - started
    print(f"{args.cutter}: {len(txns)} transactions x {args.repeat}: "
          f"{seconds / (len(txns) * args.repeat) * 1e6:.3f} µs CPU a transaction")


def _unusual(part: list[int]) -> bytes:
    raise AssertionError("a batch this bench made needed encoding again")


if __name__ == "__main__":
    main()
