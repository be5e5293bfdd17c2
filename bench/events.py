"""Events out: how fast one subscriber (its own process, parsing each event) receives events
from every shard's outbox, read back from LMDB from the oldest held."""

import sys

from bench.harness import Harness
from bench.machine import CpuMeter
from bench.report import Chart, Result
from bench.settings import Settings
from bench.subscriber import Subscriber

__all__ = ["run"]

BIG = 1_000_000
"""A purchase of 10,000.00: with the example rules an upgrade and an anomaly flag, two events."""
GOAL = 50_000


def purchases(members: int, day: str) -> list[dict]:
    from engine.calendar import LocalCalendar, parse_day

    noon = LocalCalendar("Asia/Shanghai").midnight_ms(parse_day(day)) + 12 * 3_600_000
    return [{"txn_id": f"e{n}", "member_id": f"E{n:07d}", "occurred_at_ms": noon + n, "kind": "purchase",
             "lines": [{"sku": "BIG", "paid_minor": BIG}]} for n in range(members)]


def run(settings: Settings) -> Result:
    members = settings.pick(settings.members, 150_000, 20_000)
    with Harness(settings) as bench:
        server = bench.serve()
        client = server.client()
        print(f"events: {members:,} upgrades, two events each", file=sys.stderr, flush=True)
        for _ in client.stream(client.batches(purchases(members, settings.start_date), 1000)):
            pass
        wanted = 2 * members
        meter = CpuMeter([server.pid]).start()
        received = Subscriber(server.address, count=wanted).wait(timeout=600)
        cpu = meter.stop()
    if received.error or received.events != wanted:
        raise RuntimeError(f"events: the subscriber got {received.events:,} of {wanted:,} {received.error}")
    rate = received.rate
    fields = {"events": received.events, "seconds": round(received.seconds, 3), "events_per_second": round(rate, 1),
              "goal_events_per_second": GOAL, "cpu_seconds": round(cpu, 3),
              "cpu_seconds_per_1000_events": round(1000 * cpu / received.events, 4),
              "subscriber_cpu_seconds_per_1000_events": round(1000 * received.cpu_seconds / received.events, 4)}
    rows = [("events", f"{received.events:,} read by one subscriber process in {received.seconds:.2f} s"),
            ("throughput", f"{rate:,.0f} events/s (goal {GOAL:,})"),
            ("CPU", f"{fields['cpu_seconds_per_1000_events']} s per 1,000 events (serve tree, {cpu:.1f} s); "
                    f"subscriber {fields['subscriber_cpu_seconds_per_1000_events']} s")]
    chart = Chart("events: one subscriber reading every shard's outbox", unit="events/s",
                  bars=[("received", rate), ("goal", GOAL)])
    return Result("events", fields, settings.parameters(members=members), rows, chart, ok=rate >= GOAL)
