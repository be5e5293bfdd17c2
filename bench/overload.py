"""Overload: more SubmitBatch calls in flight than the shards' queues hold, without let-up. How
soon a refused batch hears RESOURCE_EXHAUSTED (goal: p99 under 50 ms), what the acknowledged
batches take meanwhile, and what the gateway and the clients spend and wait for."""


from bench.clients import Job
from bench.harness import Harness
from bench.machine import run_queue_seconds
from bench.report import Chart, Result, common_rows
from bench.settings import Settings
from bench.timeline import Timeline, percentile

__all__ = ["run"]

CALLS_PER_CLIENT = 100
"""Unanswered calls per client process unless --window says otherwise: with two clients, 200
batches in flight against two shards that queue 64 each."""
PAUSE_AFTER_REFUSAL = 0.1
"""What PatronClient waits on average before its first retry of a refused batch: each caller's
first call leaves within it, and refused batches are sent again after PatronClient's back-off."""
GOAL_P99_SECONDS = 0.050


def _gateway(pid: int) -> tuple[float, float]:
    """Run-queue seconds of the serve process so far: of its main thread (the event loop that
    takes every call) and of all its threads (gRPC's among them)."""
    return run_queue_seconds(pid, pid), run_queue_seconds(pid)


def _refusals_sent(reports: list) -> list[tuple[float, float]]:
    """Every refusal as (sent, latency) in seconds, sent counted from the run's start, in order of sending."""
    return sorted((sent, latency) for report in reports
                  for sent, latency in zip(report.refusals_sent, report.refusals, strict=True))


def _first_second(pairs: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Refusal latencies of calls sent in the run's first second (the burst meeting empty queues)
    and after it, each sorted."""
    return (sorted(latency for sent, latency in pairs if sent < 1.0),
            sorted(latency for sent, latency in pairs if sent >= 1.0))


def run(settings: Settings) -> Result:
    seconds = settings.pick(settings.seconds, 30.0, 10.0)
    batch_size = settings.batch_size or 1000
    window = settings.window if settings.window != Settings.window else CALLS_PER_CLIENT
    members = settings.pick(settings.members, 100_000, 10_000)
    pool = settings.pick(settings.transactions, 200_000, 40_000)
    with Harness(settings) as bench:
        server = bench.serve()
        stream = bench.day_stream(pool, members, "overload")
        client = server.client()
        jobs = [Job(server.address, kind="submit", source=stream, part=k, parts=settings.clients,
                    batch_size=batch_size, window=window, seconds=seconds, pause=PAUSE_AFTER_REFUSAL,
                    ahead_of_server=True)
                for k in range(settings.clients)]
        label = f"overload: {settings.clients} × {window} calls in flight for {seconds:.0f} s"
        before = _gateway(server.pid)
        reports, start, cpu = bench.drive(server, jobs, label)
        gateway = [b - a for a, b in zip(before, _gateway(server.pid), strict=True)]
        gateway_cpu = bench.cpu_by_role.get("gateway", 0.0)
        timeline = Timeline.of(reports, start)
        common = bench.common(client, cpu, timeline.transactions)
    refusals = sorted(latency for report in reports for latency in report.refusals)
    sent = _refusals_sent(reports)
    first, later = _first_second(sent)
    acked = timeline.latencies()
    client_cpu = sum(report.cpu_seconds for report in reports)
    calls = len(refusals) + len(acked)
    refused = [round(percentile(refusals, q), 4) for q in (0.50, 0.99)]
    paused = sum(report.paused_seconds for report in reports) / max(len(refusals), 1)
    answered = [round(percentile(acked, q), 4) for q in (0.50, 0.99)]
    met = bool(refusals) and refused[1] < GOAL_P99_SECONDS
    fields = {"refused_batches": len(refusals), "refusal_p50_seconds": refused[0],
              "refusal_p99_seconds": refused[1], "refusal_max_seconds": round(refusals[-1], 4) if refusals else None,
              "refused_first_second": len(first), "refusal_first_second_p99_seconds": round(percentile(first, 0.99), 4),
              "refusal_after_first_second_p99_seconds": round(percentile(later, 0.99), 4),
              "acknowledged_batches": len(acked), "ack_p50_seconds": answered[0], "ack_p99_seconds": answered[1],
              "transactions": timeline.transactions, "achieved_per_second": round(timeline.transactions / seconds, 1),
              "client_cpu_seconds_per_call": round(client_cpu / max(calls, 1), 6),
              "client_loop_cpu_wait_share": round(sum(r.cpu_wait_seconds for r in reports)
                                                  / max(sum(r.seconds for r in reports), 1e-9), 3),
              "gateway_cpu_seconds_per_call": round(gateway_cpu / max(calls, 1), 6),
              "gateway_loop_cpu_wait_share": round(gateway[0] / seconds, 3),
              "gateway_threads_cpu_wait_seconds": round(gateway[1], 2),
              "mean_pause_after_refusal_seconds": round(paused, 4),
              "calls_in_flight": settings.clients * window, "batch_size": batch_size, "goal_met": met, **common}
    # when each refusal of the first second was sent and how long it took: where the slow ones fall
    fields["first_second_refusals"] = [(round(at, 4), round(latency, 4)) for at, latency in sent if at < 1.0]
    fields["clients_ahead_of_server"] = all(report.ahead_of_server for report in reports)
    ahead = (" (each in a scheduling group ahead of the server's, as tills with CPUs of their own)"
             if fields["clients_ahead_of_server"] else "")
    rows = [("offered", f"{settings.clients} clients × {window} SubmitBatch calls in flight for {seconds:.0f} s, "
                        f"batches of {batch_size}; a refused batch is sent again after PatronClient's back-off "
                        f"(0.1 s on average, doubling with each refusal of the batch, or the refusal's "
                        f"patron-retry-after-ms when longer; on average {paused * 1000:.0f} ms)"),
            ("refused", f"{len(refusals):,} batches: p50 {refused[0] * 1000:.1f} ms, p99 {refused[1] * 1000:.1f} ms, "
                        f"max {fields['refusal_max_seconds'] or 0:.3f} s from send to RESOURCE_EXHAUSTED "
                        f"(goal p99 under {GOAL_P99_SECONDS * 1000:.0f} ms: {'met' if met else 'missed'}); "
                        f"the {len(first):,} sent in the first second p99 "
                        f"{fields['refusal_first_second_p99_seconds'] * 1000:.1f} ms, those after "
                        f"{fields['refusal_after_first_second_p99_seconds'] * 1000:.1f} ms"),
            ("acknowledged", f"{len(acked):,} batches, {timeline.transactions:,} transactions "
                             f"({fields['achieved_per_second']:,.0f}/s): p50 {answered[0] * 1000:.1f} ms, "
                             f"p99 {answered[1] * 1000:.1f} ms"),
            ("gateway", f"{fields['gateway_cpu_seconds_per_call'] * 1e6:.0f} µs of CPU per call; its event loop "
                        f"waited for a CPU {fields['gateway_loop_cpu_wait_share']:.0%} of the run, its threads "
                        f"{fields['gateway_threads_cpu_wait_seconds']:.1f} s in all"),
            ("clients' CPU", f"{client_cpu:.2f} s, {fields['client_cpu_seconds_per_call'] * 1e6:.0f} µs per call, "
                             f"on the same cores as the server{ahead}; their event loops waited for a CPU "
                             f"{fields['client_loop_cpu_wait_share']:.0%} of the run"),
            *common_rows(common, "transactions")]
    parameters = settings.parameters(seconds=seconds, batch_size=batch_size, window=window, members=members,
                                     pool_transactions=pool)
    chart = Chart(f"overload: {settings.clients * window} calls in flight, acknowledged batches", timeline)
    return Result("overload", fields, parameters, rows, chart, ok=met)
