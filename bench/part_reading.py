"""Reading a shard's part, alone: the first `--transactions` of a stream as one TransactionBatch
(the bytes a gateway forwards), read `--repeat` times into engine records by the compiled reader
(actors/part_reader.pyx) or the pure one (protobuf's parse, then field by field). Prints the CPU
time per transaction; under callgrind, `--reader none` makes the bytes and reads nothing (the
start-up to take off):

    valgrind --tool=callgrind .venv/bin/python bench/part_reading.py STREAM --reader compiled|pure|none
"""

import argparse
import time
from pathlib import Path

from actors.batch_wire import read_part_pure
from cli.replay import decode_line
from client import transaction_message
from proto import patron_pb2 as pb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stream", type=Path)
    parser.add_argument("--transactions", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reader", choices=["compiled", "pure", "none"], default="compiled")
    parser.add_argument("--check", action="store_true", help="first check both readers give the same records")
    args = parser.parse_args()
    with args.stream.open("rb") as lines:
        txns = [decode_line(line) for _, line in zip(range(args.transactions), lines, strict=False)]
    data = pb.TransactionBatch(transactions=[transaction_message(txn) for txn in txns]).SerializeToString()
    if args.reader == "none":
        return
    if args.reader == "compiled":
        from actors.part_reader import read_part as read
    else:
        read = read_part_pure
    if args.check:  # the same records, or the numbers mean nothing (tests/test_compiled_wire.py checks more)
        assert read(data) == read_part_pure(data)
    started = time.process_time()
    for _ in range(args.repeat):
        read(data)
    seconds = time.process_time() - started
    print(f"{args.reader}: {len(txns)} transactions x {args.repeat}: "
          f"{seconds / (len(txns) * args.repeat) * 1e6:.3f} µs CPU a transaction")


if __name__ == "__main__":
    main()
