"""The gateway's routing of batches, alone: a stream in batches of `--batch` (serialised
TransactionBatches, as clients send them), each routed `--repeat` times as `IngestService._route`
routes it with two shards: the batch read (protobuf's parse, which refuses a malformed batch),
each transaction's shard found by its member id, the batch cut into the shards' parts and each
part encoded as the `BatchPart` a shard is sent. No lanes, no Ray, no gRPC.

`--route compiled` is the gateway's way now (`actors/batch_wire.py` `route_of`: the compiled
reading of actors/batch_cutter.pyx, the pure one for what it does not expect); `--route pure`
is the specification, step by step as the gateway did it before the compiled reading (it runs on
older trees too); `--route none` makes the batches and routes nothing (the start-up to take off
under callgrind). Prints the CPU time per transaction:

    valgrind --tool=callgrind .venv/bin/python bench/gateway_route.py STREAM --route compiled|pure|none
"""

import argparse
import time
from pathlib import Path

import msgspec

from actors import batch_wire
from actors.batch_order import BatchPart
from actors.batch_wire import split
from actors.routing import even_layout, shards_of
from cli.replay import decode_line
from client import transaction_message
from engine.transactions import Transaction
from proto import patron_pb2 as pb
from storage.folder import Layout

SHARDS = 2
_encode = msgspec.msgpack.Encoder().encode


def main() -> None:
    args = arguments(__doc__.splitlines()[0], "route")
    batches = [data for data, _ in stream_batches(args)]
    if args.route == "none":
        return
    route = route_compiled if args.route == "compiled" else route_pure
    layout = even_layout(SHARDS)
    started = time.process_time()
    for _ in range(args.repeat):
        for data in batches:
            route(data, layout)
    seconds = time.process_time() - started
    print(f"{args.route}: {args.transactions} transactions x {args.repeat}: "
          f"{seconds / (args.transactions * args.repeat) * 1e6:.3f} µs CPU a transaction")


def arguments(description: str, choice: str) -> argparse.Namespace:
    """The stream, how much of it, in batches of what size, how often, and `--CHOICE compiled|pure|none`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("stream", type=Path)
    parser.add_argument("--transactions", type=int, default=24_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(f"--{choice}", choices=["compiled", "pure", "none"], default="compiled")
    return parser.parse_args()


def stream_batches(args: argparse.Namespace) -> list[tuple[bytes, list[Transaction]]]:
    """The stream's first `--transactions` in batches of `--batch`, serialised as clients send them."""
    with args.stream.open("rb") as lines:
        txns = [decode_line(line) for _, line in zip(range(args.transactions), lines, strict=False)]
    args.transactions = len(txns)
    chunks = {start: txns[start:start + args.batch] for start in range(0, len(txns), args.batch)}
    return [(pb.TransactionBatch(batch_id=f"B{start}", transactions=[transaction_message(t) for t in chunk]
                                 ).SerializeToString(), chunk) for start, chunk in chunks.items()]


def route_pure(data: bytes, layout: Layout) -> list[bytes]:
    batch = pb.TransactionBatch.FromString(data)
    shards = shards_of(layout, [message.member_id for message in batch.transactions])
    return [_encode(BatchPart(part)) for _, part in split(data, batch, shards).values()]


def route_compiled(data: bytes, layout: Layout) -> list[bytes]:
    route = batch_wire.route_of(data)  # not in trees before it: --route pure runs there too
    return [_encode(BatchPart(part)) for _, part in route.parts(route.shards(layout)).values()]


if __name__ == "__main__":
    main()
