"""Closed-loop ingestion: several client processes, sustained transactions per second over time."""

import statistics
from dataclasses import dataclass
from pathlib import Path

from bench.harness import Harness, Settings
from bench.report import Chart, Result, common_rows
from bench.server import Serve
from bench.streams import write_workload
from bench.subscriber import Subscriber
from bench.timeline import Timeline, percentile
from bench.workload import Workload

__all__ = ["Ingested", "ingest_file", "run"]


@dataclass
class Ingested:
    timeline: Timeline
    cpu_seconds: float
    refused: int
    client_cpu_seconds: float
    """The client processes' own CPU: on the bench's machine they share the server's cores."""


def ingest_file(bench: Harness, server: Serve, source: Path, total: int, batch_size: int, label: str) -> Ingested:
    """Send the file once through the clients, closed loop; CPU of the server tree while they send."""
    reports, start, cpu = bench.drive(server, bench.stream_jobs(server.address, source, batch_size), label, total)
    return Ingested(Timeline.of(reports, start), cpu, sum(r.refused for r in reports),
                    sum(r.cpu_seconds for r in reports))


def steady_rate(timeline: Timeline) -> float:
    """The mean of the whole seconds, the first and the last (partial) left out when there are more.
    Not their median: a closed loop's answers come in waves of whole groups, and with 8 clients the
    seconds went 64,000, 96,000, 96,000, 64,000, ... where the median said 96,000/s of a run that
    answered 81,000/s (bench/RESULTS.md, "A fresh machine's quiet runs")."""
    counts = [n for _, n in timeline.per_second()]
    inner = counts[1:-1] if len(counts) > 2 else counts
    return float(statistics.fmean(inner)) if inner else 0.0


def run(settings: Settings) -> Result:
    total = settings.pick(settings.transactions, 1_000_000, 120_000)
    members = settings.pick(settings.members, 100_000, 10_000)
    batch_size = settings.batch_size or 1000
    with Harness(settings) as bench:
        stream = bench.path("stream.jsonl")
        server = bench.serve()
        write_workload(stream, Workload(transactions=total, members=members, days=1, seed=settings.seed,
                                        start=settings.start_date, spending_share=settings.spending),
                       "ingest: generate")
        client = server.client()
        subscriber = Subscriber(server.address) if settings.subscriber else None
        done = ingest_file(bench, server, stream, total, batch_size, "ingest")
        received = subscriber.stop() if subscriber is not None else None
        common = bench.common(client, done.cpu_seconds, total)
    timeline = done.timeline
    latencies = timeline.latencies()
    fields = {"transactions_per_second": round(timeline.rate(), 1),
              "steady_transactions_per_second": steady_rate(timeline), "transactions": timeline.transactions,
              "elapsed_seconds": round(timeline.seconds, 3), "clients": settings.clients,
              "batch_p50_seconds": round(percentile(latencies, 0.5), 4),
              "batch_p99_seconds": round(percentile(latencies, 0.99), 4), "refused_streams": done.refused,
              **common, "client_cpu_seconds_per_1000": round(1000 * done.client_cpu_seconds / total, 4),
              "throughput_per_second": [n for _, n in timeline.per_second()],
              "subscriber_events": received.events if received else None, "spending_share": settings.spending}
    rows = [("transactions", f"{timeline.transactions:,} in {timeline.seconds:.1f} s by {settings.clients} clients"),
            ("throughput", f"{timeline.rate():,.0f} transactions/s "
                           f"(steady {fields['steady_transactions_per_second']:,.0f}/s)"),
            ("batch latency", f"p50 {fields['batch_p50_seconds'] * 1000:.0f} ms, "
                              f"p99 {fields['batch_p99_seconds'] * 1000:.0f} ms "
                              f"(closed loop, window {settings.window})"),
            ("spending", f"{settings.spending:.0%} of the stream"),
            *common_rows(common, "transactions"),
            ("clients' CPU", f"{fields['client_cpu_seconds_per_1000']} s per 1,000 transactions "
                             f"({done.client_cpu_seconds:.1f} s, on the same cores)")]
    if received is not None:
        rows.append(("subscriber", f"one live subscriber received {received.events:,} events {received.error}"))
    parameters = settings.parameters(transactions=total, members=members, batch_size=batch_size)
    chart = Chart(f"ingest: {settings.clients} clients, closed loop, batches of {batch_size}", timeline)
    return Result("ingest", fields, parameters, rows, chart)

