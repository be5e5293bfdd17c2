"""Open loop: batches sent on a fixed schedule whatever the answers; acknowledgement latency
percentiles, each batch timed from its scheduled send to its acknowledgement."""


from bench.harness import Harness
from bench.report import Chart, Result, common_rows
from bench.settings import Settings
from bench.timeline import Timeline, percentile

__all__ = ["run"]

POOL = 200_000
"""Transactions prepared at most; the schedule reuses them with new ids (a renamed prefix)."""


def run(settings: Settings) -> Result:
    rate = settings.pick(settings.rate, 100_000.0, 2_000.0)
    seconds = settings.pick(settings.seconds, 30.0, 20.0)
    batch_size = settings.batch_size or min(1000, max(10, int(rate // 20)))
    members = settings.pick(settings.members, 100_000, 10_000)
    offered = int(rate * seconds)
    pool = min(offered, POOL)
    with Harness(settings) as bench:
        server = bench.serve()
        stream = bench.day_stream(pool, members, "latency")
        client = server.client()
        jobs = bench.stream_jobs(server.address, stream, batch_size, rate=rate / settings.clients, seconds=seconds)
        reports, start, cpu = bench.drive(server, jobs, f"latency at {rate:,.0f}/s", offered)
        timeline = Timeline.of(reports, start)
        common = bench.common(client, cpu, timeline.transactions)
    latencies = timeline.latencies()
    p50, p95, p99 = (round(percentile(latencies, q), 4) for q in (0.50, 0.95, 0.99))
    achieved = timeline.transactions / max(seconds, timeline.seconds)  # answers late past the schedule: lower
    fields = {"p50_seconds": p50, "p95_seconds": p95, "p99_seconds": p99,
              "max_seconds": round(latencies[-1], 4) if latencies else None,
              "offered_per_second": rate, "achieved_per_second": round(achieved, 1),
              "transactions": timeline.transactions, "batches": len(latencies), "batch_size": batch_size,
              "elapsed_seconds": round(timeline.seconds, 3), **common,
              "throughput_per_second": [n for _, n in timeline.per_second()]}
    rows = [("offered", f"{rate:,.0f} transactions/s for {seconds:.0f} s in batches of {batch_size} "
                        f"({settings.clients} clients)"),
            ("achieved", f"{achieved:,.0f} transactions/s ({timeline.transactions:,} answered in "
                         f"{timeline.seconds:.1f} s)"),
            ("latency", f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
                        f"(from the scheduled send)"),
            *common_rows(common, "transactions")]
    parameters = settings.parameters(rate=rate, seconds=seconds, batch_size=batch_size, members=members,
                                     pool_transactions=pool)
    chart = Chart(f"latency: open loop at {rate:,.0f} transactions/s, batches of {batch_size}", timeline)
    return Result("latency", fields, parameters, rows, chart)
