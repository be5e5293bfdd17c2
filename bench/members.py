"""Members beyond memory: enroll N members (EnrollBatch) into shards that keep a hot set, stream a
Zipf workload over them, kill -9 and time the recovery, then serve the same folder with every
member in memory and stream a second Zipf workload: throughput, CPU and peak RSS of each, RSS
over time, and bytes on disk per member."""

import os
import sys
import time
from pathlib import Path

from bench.clients import Job
from bench.harness import Harness
from bench.ingest import Ingested, ingest_file
from bench.progress import Progress
from bench.recovery import wait_serving
from bench.report import Chart, Result
from bench.server import Serve
from bench.settings import Settings
from bench.streams import write_workload
from bench.workload import Workload

__all__ = ["run"]

ENROLL_WINDOW = 4
ALL_IN_MEMORY_MAX = 2_000_000
"""Above this many members the run with every member in memory is left out: at about 2.2 KB of
RSS a member it needs more memory than a 24 GiB machine shared with other work can give (10
million: ~22 GB, more while loading); compare throughput at a scale where it fits."""


def run(settings: Settings) -> Result:
    members = settings.pick(settings.members, 1_000_000, 20_000)
    total = settings.pick(settings.transactions, 200_000, 20_000)
    shards = settings.shards or os.cpu_count() or 1
    hot = settings.hot_members or max(1, members // 10 // shards)
    batch_size = settings.batch_size or 1000
    compare = members <= ALL_IN_MEMORY_MAX
    phases: dict[str, tuple[float, float]] = {}
    load = [os.getloadavg()]
    with Harness(settings) as bench:
        streams = {name: bench.path(f"{name}.jsonl") for name in ("hot", "all")[:2 if compare else 1]}
        for seed, (name, path) in enumerate(streams.items()):
            write_workload(path, Workload(transactions=total, members=members, days=1, seed=settings.seed + seed,
                                          start=settings.start_date, member_prefix="E", member_space=1,
                                          id_prefix=name.upper()), f"members: generate the {name} stream")
        origin = time.monotonic()
        bounded = bench.serve(hot_members=hot)
        client = bounded.client(timeout=36000)
        enroll_seconds = _enroll(bench, bounded.address, members, phases)
        hot_run = _stream(bench, bounded, streams["hot"], total, batch_size, "hot set", phases)
        client.close()
        killed = time.monotonic()
        bounded.crash()
        bounded.kill_group()
        again = bench.serve(hot_members=hot)
        recovery = wait_serving(again) - killed
        if compare:
            again.stop()
            every_start, all_run, shards_now = _every_member(bench, streams["all"], total, batch_size, phases)
        else:
            client = again.client(timeout=36000)
            every_start, all_run, shards_now = 0.0, None, client.status().shards
            client.close()
    load.append(os.getloadavg())
    disk = sum(s.disk_bytes for s in shards_now)
    peaks = {name: _peak(bench.rss.samples, *span) for name, span in phases.items()}
    rates = {"hot": hot_run.timeline.rate(), "all": all_run.timeline.rate() if all_run else 0.0}
    cpu = {"hot": 1000 * hot_run.cpu_seconds / total, "all": 1000 * all_run.cpu_seconds / total if all_run else 0.0}
    fields = {
        "members": members, "hot_members_per_shard": hot, "shards": shards, "transactions_per_stream": total,
        "enroll_seconds": round(enroll_seconds, 1), "members_enrolled_per_second": round(members / enroll_seconds),
        "hot_transactions_per_second": round(rates["hot"], 1), "all_transactions_per_second": round(rates["all"], 1),
        "hot_over_all_throughput": round(rates["hot"] / rates["all"], 3) if rates["all"] else None,
        "hot_over_all_by_cpu": round(cpu["all"] / cpu["hot"], 3) if cpu["all"] else None,
        "every_member_in_memory": "measured" if compare else f"left out above {ALL_IN_MEMORY_MAX:,} members",
        "hot_cpu_seconds_per_1000": round(cpu["hot"], 4), "all_cpu_seconds_per_1000": round(cpu["all"], 4),
        "peak_rss_bytes": peaks, "recovery_seconds": round(recovery, 2),
        "start_seconds_every_member_in_memory": round(every_start, 2),
        "disk_bytes": disk, "disk_bytes_per_member": round(disk / members, 1),
        "load_average_before": [round(x, 2) for x in load[0]], "load_average_after": [round(x, 2) for x in load[1]],
        "rss_over_time": [(round(at - origin, 1), size) for at, size in bench.rss.samples if at >= origin],
    }
    mib = {name: peak / 2**20 for name, peak in peaks.items()}
    rows = [("members", f"{members:,} enrolled in {enroll_seconds:,.0f} s; {shards} shards; hot set {hot:,} "
                        f"per shard"),
            ("hot set", f"{rates['hot']:,.0f} transactions/s, {cpu['hot']:.3f} CPU s per 1,000; "
                        f"peak RSS {mib.get('hot set', 0):,.0f} MiB"),
            ("every member", f"{rates['all']:,.0f} transactions/s, {cpu['all']:.3f} CPU s per 1,000; "
                             f"peak RSS {mib.get('every member in memory', 0):,.0f} MiB" if compare
                             else fields["every_member_in_memory"]),
            ("recovery", f"{recovery:.2f} s from kill -9 to SERVING with the hot set"
                         + (f" (every member in memory: {every_start:.2f} s to start)" if compare else "")),
            ("load average", f"{load[0][0]:.1f} before, {load[1][0]:.1f} after (1 minute)"),
            ("disk", f"{disk / members:,.0f} bytes per member ({disk / 2**20:,.0f} MiB)")]
    parameters = settings.parameters(members=members, transactions=total, hot_members=hot, batch_size=batch_size)
    title = f"members: {members:,}, hot set {hot:,} per shard" + (" vs every member in memory" if compare else "")
    chart = Chart(title,
                  lines={"serve tree RSS (MiB)": [(at - origin, size / 2**20) for at, size in bench.rss.samples
                                                  if at >= origin]},
                  spans=[(first - origin, last - origin, name) for name, (first, last) in phases.items()],
                  unit="MiB")
    return Result("members", fields, parameters, rows, chart)


def _every_member(bench: Harness, path: Path, total: int, batch_size: int, phases: dict
                  ) -> tuple[float, Ingested, list]:
    """The same folder served with every member in memory: its start, and a Zipf stream."""
    started = time.monotonic()
    every = bench.serve()
    every_start = wait_serving(every, timeout=36000) - started
    client = every.client(timeout=36000)
    run = _stream(bench, every, path, total, batch_size, "every member in memory", phases)
    shards = client.status().shards
    client.close()
    return every_start, run, shards


def _enroll(bench: Harness, address: str, members: int, phases: dict) -> float:
    parts = bench.settings.clients
    clients = bench.clients([Job(address, kind="enroll", members=members, part=k, parts=parts,
                                 window=ENROLL_WINDOW) for k in range(parts)])
    print(f"members: {parts} clients prepare their EnrollBatch requests", file=sys.stderr, flush=True)
    clients.wait_ready()
    start = clients.start()
    progress = Progress("members: enroll", members, unit="members")
    reports = clients.finish(tick=lambda: progress.update(clients.done))
    progress.close()
    errors = [r.error for r in reports if r.error]
    if errors:
        raise RuntimeError(f"members: enrollment failed: {errors[0]}")
    phases["enroll"] = (start, time.monotonic())
    return time.monotonic() - start


def _stream(bench: Harness, server: Serve, path: Path, total: int, batch_size: int, name: str,
            phases: dict) -> Ingested:
    started = time.monotonic()
    run = ingest_file(bench, server, path, total, batch_size, f"members: Zipf stream, {name}")
    phases[name] = (started, time.monotonic())
    return run


def _peak(samples: list[tuple[float, int]], first: float, last: float) -> int:
    return max((size for at, size in samples if first <= at <= last), default=0)
