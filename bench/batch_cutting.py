"""The gateway's cut of batches into shards' parts, alone: a stream in batches of `--batch`
(serialised TransactionBatches, as clients send them), each transaction's shard found as the
gateway finds it (two shards), then each batch cut `--repeat` times by the compiled cutter
(actors/batch_cutter.pyx) or the pure one. Prints the CPU time per transaction; under
callgrind, `--cutter none` makes the batches and cuts nothing (the start-up to take off):

    valgrind --tool=callgrind .venv/bin/python bench/batch_cutting.py STREAM --cutter compiled|pure|none
"""

import time

from actors.batch_wire import _indices, cut_pure, split_entries
from actors.routing import even_layout, shards_of
from bench.gateway_route import arguments, stream_batches

SHARDS = 2


def main() -> None:
    args = arguments(__doc__.splitlines()[0], "cutter")
    layout = even_layout(SHARDS)
    batches = [(data, shards_of(layout, [t.member_id for t in chunk])) for data, chunk in stream_batches(args)]
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
    print(f"{args.cutter}: {args.transactions} transactions x {args.repeat}: "
          f"{seconds / (args.transactions * args.repeat) * 1e6:.3f} µs CPU a transaction")


def _unusual(part: list[int]) -> bytes:
    raise AssertionError("a batch this bench made needed encoding again")


if __name__ == "__main__":
    main()
