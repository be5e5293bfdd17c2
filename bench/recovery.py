"""Crash recovery: kill -9 of the serve process while it ingests, a restart on the same folder,
seconds from the kill to SERVING, and a check that nothing acknowledged was lost."""

import sys
import time

from bench.harness import Harness
from bench.machine import CpuMeter
from bench.progress import Progress
from bench.report import Chart, Result, common_rows
from bench.server import Serve
from bench.settings import Settings
from bench.streams import read_batches, write_workload
from bench.timeline import Timeline
from bench.workload import Workload
from client import PatronClient
from proto import patron_pb2 as pb

__all__ = ["run"]


def wait_serving(server: Serve, timeout: float = 300.0) -> float:
    """The monotonic time the restarted server first answered SERVING (polled every 20 ms)."""
    server.wait_for_port(timeout)
    probe = PatronClient(server.address, timeout=2, retries=0)
    deadline = time.monotonic() + timeout
    try:
        while not probe.serving():
            if time.monotonic() > deadline:
                raise TimeoutError(f"not SERVING within {timeout:.0f} s\n{server.tail()}")
            time.sleep(0.02)
        return time.monotonic()
    finally:
        probe.close()


def resubmit(client: PatronClient, stream_batches: dict[int, pb.TransactionBatch],
             accepted: dict[int, list[str]]) -> tuple[int, int]:
    """Send every acknowledged batch again: (transactions checked, formerly accepted ones not duplicate now)."""
    numbers = sorted(accepted)
    progress = Progress("recovery: resubmit acknowledged batches", sum(len(accepted[n]) for n in numbers))
    checked = lost = 0
    acks = client.stream((stream_batches[n] for n in numbers), window=8)
    for number, ack in zip(numbers, acks, strict=True):
        outcomes = {result.txn_id: result.outcome for result in ack.results}
        for txn_id in accepted[number]:
            checked += 1
            lost += outcomes.get(txn_id) != pb.OUTCOME_DUPLICATE
        progress.update(checked)
    progress.close()
    return checked, lost


def run(settings: Settings) -> Result:
    total = settings.pick(settings.transactions, 200_000, 60_000)
    members = settings.pick(settings.members, 50_000, 5_000)
    batch_size = settings.batch_size or 1000
    kill_at = total // 2
    with Harness(settings) as bench:
        first = bench.serve()
        stream = bench.path("stream.jsonl")
        write_workload(stream, Workload(transactions=total, members=members, days=1, seed=settings.seed,
                                        start=settings.start_date), "recovery: generate")
        first.client().close()
        clients = bench.clients(bench.stream_jobs(first.address, stream, batch_size, keep_results=True, retries=0))
        clients.wait_ready()
        meter = CpuMeter([first.pid]).start()
        start = clients.start()
        progress = Progress(f"recovery: ingest, kill -9 after {kill_at:,}", kill_at)
        while clients.done < kill_at and any(p.is_alive() for p in clients.processes):
            time.sleep(0.01)
            progress.update(clients.done)
        cpu, answered = meter.stop(), clients.done
        killed = time.monotonic()
        first.crash()
        progress.close()
        print(f"recovery: killed serve (pid {first.pid}) with {answered:,} transactions answered; restarting",
              file=sys.stderr, flush=True)
        reports = clients.finish()
        second = bench.serve()
        second.wait_for_port()
        listening = time.monotonic()
        serving = wait_serving(second)
        restart_cpu = CpuMeter([second.pid]).stop()  # everything the new tree used, from its birth
        first.kill_group()  # what a crash leaves behind (Ray's agents) goes now
        accepted = {number: ids for report in reports for number, ids in report.accepted.items()}
        parts = settings.clients
        batches = {b.number: pb.TransactionBatch.FromString(b.data)
                   for part in range(parts) for b in read_batches(stream, part, parts, batch_size)
                   if b.number in accepted}
        client = second.client(timeout=120)
        checked, lost = resubmit(client, batches, accepted)
        common = bench.common(client, cpu, answered)
    timeline = Timeline.of(reports, start)
    seconds = serving - killed
    ok = lost == 0 and checked > 0
    fields = {"seconds": round(seconds, 3), "listening_seconds": round(listening - killed, 3),
              "restart_cpu_seconds": round(restart_cpu, 3), "acknowledged_batches": len(accepted),
              "acknowledged_transactions": answered, "accepted_checked": checked, "lost": lost,
              "ingest_transactions_per_second": round(timeline.rate(), 1),
              "client_errors": sorted({r.error.split(":")[0] for r in reports if r.error}), **common,
              "throughput_per_second": [n for _, n in timeline.per_second()]}
    rows = [("crash", f"kill -9 of serve after {answered:,} transactions answered ({len(accepted)} batches)"),
            ("recovery", f"{seconds:.2f} s from the kill to SERVING (gRPC listening after {listening - killed:.2f} s; "
                         f"restart used {restart_cpu:.1f} CPU s)"),
            ("acknowledged", f"{checked:,} accepted transactions resubmitted: {lost:,} not duplicate "
                             f"({'nothing lost' if ok else 'LOST'})"),
            *common_rows(common, "transactions (before the kill)")]
    parameters = settings.parameters(transactions=total, members=members, batch_size=batch_size, kill_after=kill_at)
    chart = Chart(f"recovery: ingest, kill -9, SERVING again after {seconds:.1f} s", timeline,
                  marks=[(killed - start, "kill -9"), (serving - start, "SERVING again")])
    return Result("recovery", fields, parameters, rows, chart, ok=ok)
