"""The gateway's CPU per overload refusal, alone: serve's real gRPC server (actors/listener.py)
with the real IngestService in front of shards whose queues are full, so every SubmitBatch is
refused RESOURCE_EXHAUSTED, and a client process that keeps `--callers` calls of a 260 KB body
in flight (no pauses: only the server's cost per refusal is measured, not a scenario).

    .venv/bin/python -m bench.refusal_cost [--calls 6000] [--callers 100] [--bytes 260000]

Prints the serve process's CPU per refusal (user and system, from /proc) and the client's.
`--bare` puts a bare grpc.aio server in its place (its floor). `--serve` runs only the server
and `--drive` only the calls, for callgrind on the server's PID (bench/RESULTS.md, "overload:
the first wave")."""

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health

from actors.config import ServeConfig
from actors.gateway import RETRY_AFTER, IngestService
from actors.lanes import Lane
from actors.listener import WINDOWS, grpc_server
from actors.metrics import Metrics

SUBMIT_BATCH = "/patron.v1.Ingest/SubmitBatch"


class FullShards:
    """What IngestService asks of a coordinator on the refusal path: lanes, all full."""

    def __init__(self, shards: int) -> None:
        self.metrics = Metrics()
        self.lanes = [Lane(None, shard, queue_limit=0) for shard in range(shards)]
        for lane in self.lanes:
            lane.call_seconds = 0.3  # a hint is set, as in steady state


async def _refuse(requests: Any, context: grpc.aio.ServicerContext) -> bytes:
    """grpc.aio's least: refused on the metadata, nothing else."""
    context.set_code(grpc.StatusCode.RESOURCE_EXHAUSTED)
    context.set_details("full")
    context.set_trailing_metadata(((RETRY_AFTER, "300"),))
    return b""


async def serve(port: int, bare: bool = False) -> None:
    config = ServeConfig(data=Path("/nonexistent"))
    if bare:
        server = grpc.aio.server(options=WINDOWS)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "patron.v1.Ingest", {"SubmitBatch": grpc.stream_unary_rpc_method_handler(_refuse)}),))
    else:
        servicer = IngestService(FullShards(2), config.max_batch)  # type: ignore[arg-type]
        server = grpc_server(config, {}, {"Ingest": servicer}, health.aio.HealthServicer(), lambda: True)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


def _cpu(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


async def drive(port: int, calls: int, callers: int, body: bytes) -> int:
    refused = 0
    left = iter(range(calls))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        await channel.channel_ready()
        call = channel.unary_unary(SUBMIT_BATCH)

        async def caller() -> None:
            nonlocal refused
            for _ in left:
                try:
                    await call(body, timeout=30)
                except grpc.aio.AioRpcError as error:
                    refused += error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        await asyncio.gather(*(caller() for _ in range(callers)))
    return refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=6000)
    parser.add_argument("--callers", type=int, default=100)
    parser.add_argument("--bytes", type=int, default=260_000)
    parser.add_argument("--port", type=int, default=50391)
    parser.add_argument("--serve", action="store_true", help="only the server, until killed")
    parser.add_argument("--drive", action="store_true", help="only the calls, to a server on --port")
    parser.add_argument("--bare", action="store_true", help="a bare grpc.aio server that only refuses")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.port, args.bare))
        return
    if args.drive:
        print(asyncio.run(drive(args.port, args.calls, args.callers, os.urandom(args.bytes))), "refused")
        return
    server = subprocess.Popen([sys.executable, "-m", "bench.refusal_cost", "--serve", "--port", str(args.port),
                               *(["--bare"] if args.bare else [])], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        body = os.urandom(args.bytes)
        asyncio.run(drive(args.port, min(args.calls, 500), args.callers, body))  # warm up both sides
        time.sleep(0.3)
        before, mine, began = _cpu(server.pid), time.process_time(), time.monotonic()
        refused = asyncio.run(drive(args.port, args.calls, args.callers, body))
        after, mine, wall = _cpu(server.pid), time.process_time() - mine, time.monotonic() - began
    finally:
        server.terminate()
        server.wait()
    user, system = (b - a for a, b in zip(before, after, strict=True))
    print(f"{refused:,} of {args.calls:,} refused in {wall:.2f} s; server CPU per refusal "
          f"{(user + system) / args.calls * 1e6:.0f} µs (user {user / args.calls * 1e6:.0f}, "
          f"system {system / args.calls * 1e6:.0f}); client {mine / args.calls * 1e6:.0f} µs per call; "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
