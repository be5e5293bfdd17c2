"""Bulk enrollment: N members through EnrollBatch calls (1,000 each) from several concurrent client processes."""

import sys

from bench.clients import Job
from bench.harness import Harness
from bench.machine import CpuMeter
from bench.progress import Progress
from bench.report import Chart, Result, common_rows
from bench.settings import Settings
from bench.timeline import Timeline, percentile

__all__ = ["run"]

WINDOW = 4
"""EnrollBatch calls each client keeps unanswered."""


def run(settings: Settings) -> Result:
    members = settings.pick(settings.members, 100_000, 5_000)
    parts = settings.clients
    with Harness(settings) as bench:
        server = bench.serve()
        client = server.client()
        clients = bench.clients([Job(server.address, kind="enroll", members=members, part=k, parts=parts,
                                     window=WINDOW) for k in range(parts)])
        print(f"import: {parts} clients prepare their EnrollBatch requests", file=sys.stderr, flush=True)
        clients.wait_ready()
        meter = CpuMeter([server.pid]).start()
        start = clients.start()
        progress = Progress("import", members, unit="members")
        reports = clients.finish(tick=lambda: progress.update(clients.done))
        cpu = meter.stop()
        progress.close()
        failed = sum(r.failed for r in reports)
        errors = sorted({r.error for r in reports if r.error})
        common = bench.common(client, cpu, members, unit="members")
    timeline = Timeline.of(reports, start)
    seconds = timeline.seconds
    latencies = timeline.latencies()
    fields = {"seconds": round(seconds, 3), "members_per_second": round(members / seconds, 1) if seconds else None,
              "members_enrolled": timeline.transactions, "failed": failed, "errors": errors, "clients": parts,
              "calls_in_flight_per_client": WINDOW, "call_p50_seconds": round(percentile(latencies, 0.5), 4),
              "call_p99_seconds": round(percentile(latencies, 0.99), 4), **common,
              "members_per_second_over_time": [n for _, n in timeline.per_second()]}
    rows = [("import", f"{timeline.transactions:,} members in {seconds:.1f} s ({fields['members_per_second']:,.0f}/s) "
                       f"by {parts} clients × {WINDOW} calls in flight"),
            ("EnrollBatch latency", f"p50 {fields['call_p50_seconds'] * 1000:.1f} ms, "
                               f"p99 {fields['call_p99_seconds'] * 1000:.1f} ms"),
            ("failed", f"{failed:,}" + (f" ({errors[0]})" if errors else "")),
            *common_rows(common, "members")]
    parameters = settings.parameters(members=members, calls_in_flight_per_client=WINDOW)
    chart = Chart(f"enroll: {members:,} members by EnrollBatch ({parts} clients × {WINDOW} in flight)", timeline,
                  unit="members/s", latency_label="EnrollBatch call latency (ms)")
    return Result("enroll", fields, parameters, rows, chart, ok=failed == 0)
