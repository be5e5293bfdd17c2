"""Core speed: the single-process replay on a stream, per core, against an end-to-end ingest run of
the same stream; efficiency = end-to-end ÷ (cores × core speed)."""

import logging
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

from bench.harness import Harness
from bench.ingest import ingest_file
from bench.report import Chart, Result, common_rows
from bench.settings import Settings
from bench.streams import write_workload
from bench.workload import Workload

__all__ = ["run"]


def _replay(rules: Path, stream: Path, folder: Path, answers: "mp.Queue") -> None:
    """In its own process, as `patron replay` runs: (transactions, seconds, CPU seconds, max RSS)."""
    from actors.object_memory import prepare_to_replay
    from cli.replay import ReplayFiles, replay_files

    prepare_to_replay(logging.getLogger("bench"))  # as `patron replay` runs
    cpu = time.process_time()
    stats = replay_files(ReplayFiles(rules=rules, transactions=stream, members_out=folder / "replay-members.jsonl",
                                     results_out=folder / "replay-results.jsonl"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    answers.put((stats.transactions, stats.seconds, time.process_time() - cpu, peak))


def replay_speed(rules: Path, stream: Path, folder: Path) -> tuple[int, float, float, int]:
    context = mp.get_context("spawn")
    answers = context.Queue()
    process = context.Process(target=_replay, args=(rules, stream, folder, answers), name="bench-replay")
    process.start()
    try:
        return answers.get(timeout=36000)
    finally:
        process.join(timeout=60)


def run(settings: Settings) -> Result:
    return measure(settings, "core", settings.spending)


def measure(settings: Settings, name: str, spending: float) -> Result:
    """Replay then serve one stream with `spending` of it spending transactions; `name` the result."""
    total = settings.pick(settings.transactions, 1_000_000, 120_000)
    members = settings.pick(settings.members, 100_000, 10_000)
    batch_size = settings.batch_size or 1000
    cores = os.cpu_count() or 1
    with Harness(settings) as bench:
        stream = bench.path("stream.jsonl")
        write_workload(stream, Workload(transactions=total, members=members, days=1, seed=settings.seed,
                                        start=settings.start_date, spending_share=spending), f"{name}: generate")
        print(f"{name}: replaying the stream in one process (nothing else of ours running)", file=sys.stderr,
              flush=True)
        replayed, replay_seconds, replay_cpu, replay_rss = replay_speed(settings.rules, stream, bench.root)
        core_speed = replayed / replay_seconds
        print(f"{name}: replay {replayed:,} transactions in {replay_seconds:.1f} s ({core_speed:,.0f}/s)",
              file=sys.stderr, flush=True)
        server = bench.serve()
        client = server.client()
        done = ingest_file(bench, server, stream, total, batch_size, f"{name}: end to end")
        common = bench.common(client, done.cpu_seconds, total)
    end_to_end = done.timeline.rate()
    efficiency = end_to_end / (cores * core_speed)
    fields = {"transactions_per_second": round(core_speed, 1), "core_transactions_per_second": round(core_speed, 1),
              "end_to_end_transactions_per_second": round(end_to_end, 1), "cores": cores,
              "efficiency": round(efficiency, 4), "transactions": total, "replay_seconds": round(replay_seconds, 3),
              "replay_cpu_seconds_per_1000": round(1000 * replay_cpu / replayed, 4),
              "replay_peak_rss_bytes": replay_rss, "end_to_end_seconds": round(done.timeline.seconds, 3),
              "spending_share": spending, **common}
    rows = [("core speed", f"{core_speed:,.0f} transactions/s (replay, one process, {replayed:,} transactions)"),
            ("end to end", f"{end_to_end:,.0f} transactions/s (serve, {settings.clients} clients, same stream)"),
            ("efficiency", f"{efficiency:.3f} = end to end ÷ ({cores} cores × core speed)"),
            ("replay CPU", f"{fields['replay_cpu_seconds_per_1000']} s per 1,000 transactions"),
            ("spending", f"{spending:.0%} of the stream (redeems, recharges, payments, coupons issued and used)"),
            *common_rows(common, "transactions")]
    parameters = settings.parameters(transactions=total, members=members, batch_size=batch_size, spending=spending)
    chart = Chart(f"{name}: replay per core vs end to end ({total:,} transactions)", unit="transactions/s",
                  bars=[("core speed\n(replay, 1 process)", core_speed), (f"{cores} × core speed", cores * core_speed),
                        (f"end to end\n(efficiency {efficiency:.2f})", end_to_end)])
    return Result(name, fields, parameters, rows, chart)
