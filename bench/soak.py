"""Soak: first fill the store and measure the sustained rate (closed loop), then an open loop at
70% of it for ten minutes; p99 latency per minute must stay flat and the heap may grow only with
the members (nothing grows without bound).
The store is filled first because writing costs more as LMDB's trees grow (a batch's inserts stop
sharing pages), until they are large; a rate measured on an empty folder is not sustained.
Resident memory also grows with LMDB's mapped pages (the data) and with members (hot state): both
are reported, and neither is a leak."""

import math
import sys
import time
from typing import NamedTuple

from bench.harness import Harness, every_shard
from bench.machine import CpuMeter, tree_rss_bytes
from bench.progress import Progress
from bench.report import Chart, Result, common_rows
from bench.settings import Settings
from bench.streams import write_workload
from bench.timeline import Timeline, percentile
from bench.workload import Workload

__all__ = ["run"]

SHARE = 0.7
FLAT_HEAP = 1.25
"""From the second minute to the last, the heap may grow at most this much faster than the
members do (hot state is kept per member; a leak grows whatever the members)."""
FLAT_P99 = 2.0
"""p99 of the last third of the whole minutes over p99 of the first third (after the warm-up)."""


def run(settings: Settings) -> Result:
    seconds = settings.pick(settings.seconds, 600.0, 40.0)
    probe = settings.pick(settings.transactions, 300_000, 20_000)
    rounds = 1 if settings.quick else 7  # 2.1M transactions: past where writing stops getting dearer
    members = settings.pick(settings.members, 100_000, 10_000)
    with Harness(settings) as bench:
        server = bench.serve()
        client = server.client()
        sustained = _sustained_rate(bench, server.address, probe, members, rounds)
        rate = settings.rate or SHARE * sustained
        batch_size = settings.batch_size or min(1000, max(10, int(rate // 20)))
        stream = bench.path("soak.jsonl")
        write_workload(stream, Workload(transactions=min(int(rate * seconds), 200_000), members=members, days=1,
                                        seed=settings.seed + 1, start=settings.start_date, id_prefix="S"),
                       "soak: generate")
        clients = bench.clients(bench.stream_jobs(server.address, stream, batch_size,
                                                  rate=rate / settings.clients, seconds=seconds))
        clients.wait_ready()
        meter = CpuMeter([server.pid]).start()
        start = clients.start()
        memory: list[Sample] = []
        progress = Progress(f"soak at {rate:,.0f}/s for {seconds:.0f} s", int(rate * seconds))

        def tick() -> None:
            progress.update(clients.done)
            if not memory or time.monotonic() - start - memory[-1].at >= 5:
                members = sum(shard.members for shard in every_shard(client))
                memory.append(Sample(time.monotonic() - start, tree_rss_bytes([server.pid]),
                                     tree_rss_bytes([server.pid], field="RssAnon"),
                                     tree_rss_bytes([server.pid], field="RssFile"), members))

        reports = clients.finish(tick=tick)
        cpu = meter.stop()
        progress.close()
        timeline = Timeline.of(reports, start)
        common = bench.common(client, cpu, timeline.transactions)
    return _result(settings, timeline, memory, common, sustained, rate, seconds, batch_size, probe * rounds)


def _sustained_rate(bench: Harness, address: str, transactions: int, members: int, rounds: int) -> float:
    stream = bench.path("probe.jsonl")
    write_workload(stream, Workload(transactions=transactions, members=members, days=1, seed=bench.settings.seed,
                                    start=bench.settings.start_date, id_prefix="P"), "soak: generate the probe")
    clients = bench.clients(bench.stream_jobs(address, stream, bench.settings.batch_size or 1000, rounds=rounds))
    clients.wait_ready()
    start = clients.start()
    timeline = Timeline.of(clients.finish(), start)
    # the rate once the store is full: the last round (or the second half of a single one)
    last = 1 / rounds if rounds > 1 else 0.5
    rate = timeline.rate_between(start + timeline.seconds * (1 - last), start + timeline.seconds + 1e-9)
    print(f"soak: sustained {rate:,.0f} transactions/s (closed loop, the last {last:.0%} of "
          f"{transactions * rounds:,})", file=sys.stderr, flush=True)
    return rate


class Sample(NamedTuple):
    at: float
    rss: int
    heap: int
    mapped: int
    members: int


def _per_minute(timeline: Timeline, memory: list[Sample]) -> list[dict]:
    minutes: dict[int, list[float]] = {}
    for at, _, latency in timeline.answers:
        minutes.setdefault(math.floor(at / 60), []).append(latency)
    rows = []
    for minute, values in sorted(minutes.items()):
        # the last sample taken by the minute's end (the draining tail may have none of its own)
        sample = next((s for s in reversed(memory) if s.at < (minute + 1) * 60), Sample(0, 0, 0, 0, 0))
        rows.append({"minute": minute, "p99_seconds": round(percentile(sorted(values), 0.99), 4),
                     "rss_bytes": sample.rss, "heap_bytes": sample.heap, "mapped_file_bytes": sample.mapped,
                     "members": sample.members,
                     "heap_bytes_per_member": round(sample.heap / sample.members) if sample.members else 0,
                     "batches": len(values)})
    return rows


def _result(settings: Settings, timeline: Timeline, memory: list[Sample], common: dict,
            sustained: float, rate: float, seconds: float, batch_size: int, filled: int) -> Result:
    minutes = _per_minute(timeline, memory)
    if not minutes:
        raise RuntimeError("soak: nothing was answered; see the serve log")
    whole = _whole_minutes(minutes, seconds)
    judged = len(whole) >= 3  # a quick run is a smoke test: one or two minutes show no trend
    first, last = (whole[0], whole[-1]) if judged else (minutes[0], minutes[-1])
    members_growth = last["members"] / first["members"] if first["members"] and last["members"] else 1.0
    heap_growth = (last["heap_bytes"] / first["heap_bytes"] / members_growth) if first["heap_bytes"] else 1.0
    rss_growth = last["rss_bytes"] / first["rss_bytes"] if first["rss_bytes"] else 1.0
    third = len(whole) // 3
    early, late = _p99_early_and_late(timeline, whole) if judged else (0.0, 0.0)
    p99_growth = late / early if early else 1.0
    flat = heap_growth <= FLAT_HEAP and p99_growth <= FLAT_P99 if judged else None
    latencies = timeline.latencies()
    p99 = round(percentile(latencies, 0.99), 4)
    fields = {"seconds": seconds, "sustained_per_second": round(sustained, 1), "offered_per_second": round(rate, 1),
              "achieved_per_second": round(timeline.transactions / max(seconds, timeline.seconds), 1),
              "p99_seconds": p99, "heap_growth_beyond_members": round(heap_growth, 3),
              "p99_early_seconds": round(early, 4), "p99_late_seconds": round(late, 4),
              "rss_growth": round(rss_growth, 3), "p99_growth": round(p99_growth, 3),
              "flat": flat, "minutes": minutes, **common}
    rows = [("sustained", f"{sustained:,.0f} transactions/s closed loop, the store filled with {filled:,}"),
            ("offered", f"{rate:,.0f} transactions/s ({rate / sustained:.0%}) for {seconds:.0f} s, "
                        f"batches of {batch_size}"),
            ("p99", f"{p99 * 1000:.1f} ms overall; per minute "
                    + ", ".join(f"{m['p99_seconds'] * 1000:.0f}" for m in minutes) + " ms"),
            ("resident", "per minute " + ", ".join(f"{m['rss_bytes'] / 2**20:.0f}" for m in minutes)
                         + " MiB (heap + LMDB's mapped pages)"),
            ("heap", "per minute " + ", ".join(f"{m['heap_bytes'] / 2**20:.0f}" for m in minutes) + " MiB; "
                     "per member " + ", ".join(f"{m['heap_bytes_per_member']:,}" for m in minutes) + " bytes"),
            ("members", "per minute " + ", ".join(f"{m['members']:,}" for m in minutes)),
            ("verdict", f"{_verdict(flat)}: heap x{heap_growth:.2f} beyond the members' growth; p99 of the last "
                        f"{third} whole minutes {late * 1000:.0f} ms, of the first {third} after the warm-up "
                        f"{early * 1000:.0f} ms: x{p99_growth:.2f} (resident x{rss_growth:.2f})"),
            *common_rows(common, "transactions")]
    parameters = settings.parameters(seconds=seconds, rate=rate, batch_size=batch_size, filled_with=filled)
    chart = Chart(f"soak: open loop at {rate:,.0f}/s ({rate / sustained:.0%} of sustained)", timeline)
    return Result("soak", fields, parameters, rows, chart, ok=flat is not False)


def _whole_minutes(minutes: list[dict], seconds: float) -> list[dict]:
    """The minutes a soak is judged on: whole minutes of the schedule after the first (which warms
    up); the tail that drains after the schedule ends is no minute."""
    return [m for m in minutes if m["minute"] >= 1 and (m["minute"] + 1) * 60 <= seconds]


def _p99_early_and_late(timeline: Timeline, whole: list[dict]) -> tuple[float, float]:
    """p99 of the batches answered in the first third of the whole minutes, and in the last."""
    third = len(whole) // 3 * 60
    start, end = whole[0]["minute"] * 60, (whole[-1]["minute"] + 1) * 60
    return _p99_between(timeline, start, start + third), _p99_between(timeline, end - third, end)


def _p99_between(timeline: Timeline, first: float, last: float) -> float:
    """p99 of the batches answered in [first, last) seconds after the start."""
    return percentile(sorted(latency for at, _, latency in timeline.answers if first <= at < last), 0.99)


def _verdict(flat: bool | None) -> str:
    return {True: "flat", False: "NOT flat", None: "too short to judge"}[flat]
