"""Members beyond memory: import N new members (the bulk path, `patron import`) into shards that
keep a hot set, stream a Zipf workload over them, kill -9 and time the recovery, then serve the
same folder with every member in memory and stream a second Zipf workload: throughput, CPU and
peak RSS of each, RSS over time by kind (anonymous, file-backed: LMDB's pages, shared), and bytes
on disk per member."""

import os
import sys
import time
from pathlib import Path

from bench.harness import Harness, every_shard
from bench.ingest import Ingested, ingest_file
from bench.machine import CpuMeter
from bench.opening_import import import_file
from bench.recovery import wait_serving
from bench.report import Chart, Result
from bench.server import Serve
from bench.settings import Settings
from bench.streams import write_enrollees, write_workload
from bench.workload import Workload

__all__ = ["run"]

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
        source = bench.path("members.csv")
        write_enrollees(source, members)
        origin = time.monotonic()
        bounded = bench.serve(hot_members=hot)
        client = bounded.client(timeout=36000)
        enrolled = _import(bench, bounded.pid, bounded.address, source, members, phases)
        enroll_seconds = enrolled["seconds"]
        hot_run = _stream(bench, bounded, streams["hot"], total, batch_size, "hot set", phases)
        client.close()
        killed = time.monotonic()
        bounded.crash()
        bounded.kill_group()
        gone = time.monotonic()  # the RSS of the recovery is the new tree's alone from here
        again = bench.serve(hot_members=hot)
        recovery = wait_serving(again) - killed
        restart_cpu = CpuMeter([again.pid]).stop()  # everything the new tree used, from its birth
        phases["recovery"] = (gone, time.monotonic())
        if compare:
            again.stop()
            every_start, all_run, shards_now = _every_member(bench, streams["all"], total, batch_size, phases)
        else:
            client = again.client(timeout=36000)
            every_start, all_run, shards_now = 0.0, None, every_shard(client)
            client.close()
    load.append(os.getloadavg())
    disk = sum(s.disk_bytes for s in shards_now)
    peaks = {name: _peak(bench.rss.samples, *span) for name, span in phases.items()}
    kinds = {name: _kinds_at_peak(bench.rss.kinds, *span) for name, span in phases.items()}
    rates = {"hot": hot_run.timeline.rate(), "all": all_run.timeline.rate() if all_run else 0.0}
    cpu = {"hot": 1000 * hot_run.cpu_seconds / total, "all": 1000 * all_run.cpu_seconds / total if all_run else 0.0}
    fields = {
        "members": members, "hot_members_per_shard": hot, "shards": shards, "transactions_per_stream": total,
        "enroll_seconds": round(enroll_seconds, 1), "members_enrolled_per_second": round(members / enroll_seconds),
        "enrollment": enrolled, "recovery_cpu_seconds": round(restart_cpu, 2),
        "hot_transactions_per_second": round(rates["hot"], 1), "all_transactions_per_second": round(rates["all"], 1),
        "hot_over_all_throughput": round(rates["hot"] / rates["all"], 3) if rates["all"] else None,
        "hot_over_all_by_cpu": round(cpu["all"] / cpu["hot"], 3) if cpu["all"] else None,
        "every_member_in_memory": "measured" if compare else f"left out above {ALL_IN_MEMORY_MAX:,} members",
        "hot_cpu_seconds_per_1000": round(cpu["hot"], 4), "all_cpu_seconds_per_1000": round(cpu["all"], 4),
        "peak_rss_bytes": peaks, "rss_kinds_at_peak": kinds, "recovery_seconds": round(recovery, 2),
        "start_seconds_every_member_in_memory": round(every_start, 2),
        "disk_bytes": disk, "disk_bytes_per_member": round(disk / members, 1),
        "load_average_before": [round(x, 2) for x in load[0]], "load_average_after": [round(x, 2) for x in load[1]],
        "rss_over_time": [(round(at - origin, 1), size) for at, size in bench.rss.samples if at >= origin],
        "rss_kinds_over_time": {"columns": ["seconds", "anon", "file", "shmem", "shard_anon", "shard_file"], "rows": [
            (round(at - origin, 1), *sizes) for at, *sizes in bench.rss.kinds if at >= origin]},
    }
    mib = {name: peak / 2**20 for name, peak in peaks.items()}
    rows = [("members", f"{members:,} imported in {enroll_seconds:,.0f} s ({members / enroll_seconds:,.0f}/s, "
                        f"{enrolled['cpu_microseconds_per_member']} µs CPU a member); {shards} shards; "
                        f"hot set {hot:,} per shard"),
            ("hot set", f"{rates['hot']:,.0f} transactions/s, {cpu['hot']:.3f} CPU s per 1,000; "
                        f"peak RSS {mib.get('hot set', 0):,.0f} MiB"),
            ("every member", f"{rates['all']:,.0f} transactions/s, {cpu['all']:.3f} CPU s per 1,000; "
                             f"peak RSS {mib.get('every member in memory', 0):,.0f} MiB" if compare
                             else fields["every_member_in_memory"]),
            *[(f"RSS {name}", f"peak {peaks[name] / 2**20:,.0f} MiB: " + _kinds_row(kinds[name]))
              for name in phases],
            ("recovery", f"{recovery:.2f} s from kill -9 to SERVING with the hot set ({restart_cpu:.1f} CPU s)"
                         + (f" (every member in memory: {every_start:.2f} s to start)" if compare else "")),
            ("load average", f"{load[0][0]:.1f} before, {load[1][0]:.1f} after (1 minute)"),
            ("disk", f"{disk / members:,.0f} bytes per member ({disk / 2**20:,.0f} MiB)")]
    parameters = settings.parameters(members=members, transactions=total, hot_members=hot, batch_size=batch_size)
    title = f"members: {members:,}, hot set {hot:,} per shard" + (" vs every member in memory" if compare else "")
    kept = [(at - origin, *sizes) for at, *sizes in bench.rss.kinds if at >= origin]
    chart = Chart(title,
                  lines={"serve tree RSS (MiB)": [(at - origin, size / 2**20) for at, size in bench.rss.samples
                                                  if at >= origin],
                         **{f"{label} (MiB)": [(row[0], row[k] / 2**20) for row in kept]
                            for k, label in ((1, "anonymous"), (2, "file-backed (libraries, LMDB pages)"),
                                             (4, "anonymous, shards"), (5, "file-backed, shards"))}},
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
    shards = every_shard(client)
    client.close()
    return every_start, run, shards


def _import(bench: Harness, pid: int, address: str, source: Path, members: int, phases: dict) -> dict:
    """`patron import` of the members file: seconds and CPU per member, the client's and the serve tree's."""
    print(f"members: import {members:,} members from {source}", file=sys.stderr, flush=True)
    meter = CpuMeter([pid]).start()
    started = time.monotonic()
    seconds, client_cpu, summary, status = import_file(source, address)
    cpu = meter.stop()
    phases["import"] = (started, time.monotonic())
    if status != 0 or f"{members:,} imported" not in summary:
        raise RuntimeError(f"members: the import failed (exit {status}): {summary}")
    by_role = {"client": client_cpu, **meter.by_role}
    return {"seconds": round(seconds, 1), "summary": summary, "serve_cpu_seconds": round(cpu, 1),
            "client_cpu_seconds": round(client_cpu, 1),
            "cpu_microseconds_per_member": round(1e6 * (cpu + client_cpu) / members, 1),
            "cpu_microseconds_per_member_by_role": {k: round(1e6 * v / members, 1) for k, v in by_role.items()}}


def _stream(bench: Harness, server: Serve, path: Path, total: int, batch_size: int, name: str,
            phases: dict) -> Ingested:
    started = time.monotonic()
    run = ingest_file(bench, server, path, total, batch_size, f"members: Zipf stream, {name}")
    phases[name] = (started, time.monotonic())
    return run


def _peak(samples: list[tuple[float, int]], first: float, last: float) -> int:
    return max((size for at, size in samples if first <= at <= last), default=0)


def _kinds_at_peak(kinds: list[tuple[float, int, int, int, int, int]], first: float, last: float) -> dict[str, int]:
    """RSS by kind at the phase's peak sample, and the largest anonymous memory in the phase."""
    within = [row for row in kinds if first <= row[0] <= last]
    if not within:
        return {}
    _, anon, file, shmem, shards, shard_files = max(within, key=lambda row: row[1] + row[2] + row[3])
    return {"anon": anon, "file": file, "shmem": shmem, "shard_anon": shards, "shard_file": shard_files,
            "peak_anon": max(row[1] for row in within), "peak_shard_anon": max(row[4] for row in within),
            "peak_shard_file": max(row[5] for row in within)}


def _kinds_row(kinds: dict[str, int]) -> str:
    if not kinds:
        return "no sample"
    mib = {name: size / 2**20 for name, size in kinds.items()}
    return (f"anonymous {mib['anon']:,.0f} (shards {mib['shard_anon']:,.0f}), file-backed {mib['file']:,.0f} "
            f"(shards {mib['shard_file']:,.0f}), shared {mib['shmem']:,.0f}; anonymous at most "
            f"{mib['peak_anon']:,.0f} MiB, shards' file-backed at most {mib['peak_shard_file']:,.0f} MiB")
