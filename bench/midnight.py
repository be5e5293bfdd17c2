"""The midnight job over N members while a client keeps ingesting: the job's seconds, and ingest
throughput during the job against before it."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.clients import Job
from bench.harness import Harness
from bench.ingest import ingest_file
from bench.machine import CpuMeter
from bench.progress import Progress
from bench.report import Chart, Result, common_rows
from bench.settings import Settings
from bench.streams import next_day, write_member_load, write_workload
from bench.timeline import Timeline
from bench.workload import Workload
from client import PatronClient
from proto import patron_pb2 as pb

__all__ = ["run"]


@dataclass
class _Job:
    """RunMidnight on a thread, so the main one can show progress meanwhile."""

    client: PatronClient
    date: str
    answer: pb.RunMidnightResponse | None = None
    error: BaseException | None = None
    started: float = 0.0
    ended: float = 0.0

    def run(self) -> None:
        self.started = time.monotonic()
        try:
            self.answer = self.client.run_midnight(self.date, allow_future=True)  # a bench is a test system
        except BaseException as error:
            self.error = error
        self.ended = time.monotonic()


def run(settings: Settings) -> Result:
    members = settings.pick(settings.members, 1_000_000, 20_000)
    pool = settings.pick(settings.transactions, 100_000, 20_000)
    before_seconds, after_seconds = (5.0, 2.0) if settings.quick else (15.0, 5.0)
    batch_size = settings.batch_size or 1000
    day, job_date = settings.start_date, next_day(settings.start_date)
    with Harness(settings) as bench:
        server = bench.serve(hot_members=settings.hot_members)
        load, background = bench.path("load.jsonl"), bench.path("background.jsonl")
        write_member_load(load, members, day)
        others = max(1_000, min(members // 10, 100_000))
        write_workload(background, Workload(transactions=pool, members=others, days=1,
                                            seed=settings.seed, start=job_date), "midnight: generate")
        client = server.client(timeout=36000)
        loaded = ingest_file(bench, server, load, members, batch_size, f"midnight: load {members:,} members on {day}")
        ingesting = bench.clients([Job(server.address, source=background, batch_size=batch_size,
                                       window=settings.window, rounds=0)])
        ingesting.wait_ready()
        start = ingesting.start()
        progress = Progress(f"midnight: ingesting {job_date} transactions, then RunMidnight {job_date}", 0)
        _wait(before_seconds, lambda: progress.update(ingesting.done, "before the job"))
        job = _Job(client, job_date)
        meter = CpuMeter([server.pid]).start()
        thread = threading.Thread(target=job.run, name="run-midnight")
        thread.start()
        while thread.is_alive():
            thread.join(0.5)
            progress.update(ingesting.done, f"job running {time.monotonic() - job.started:.0f} s")
        job_cpu = meter.stop()
        _wait(after_seconds, lambda: progress.update(ingesting.done, "after the job"))
        ingesting.stop()
        reports = ingesting.finish(tick=lambda: progress.update(ingesting.done, "stopping"))
        progress.close()
        if job.error is not None or job.answer is None:
            raise RuntimeError(f"midnight: RunMidnight failed: {job.error}\n{server.tail()}")
        errors = [r.error for r in reports if r.error]
        if errors:
            raise RuntimeError(f"midnight: the ingesting client failed: {errors[0]}\n{server.tail()}")
        common = bench.common(client, loaded.cpu_seconds, members)  # CPU: the load; memory and disk: now
    timeline = Timeline.of(reports, start)
    seconds = job.ended - job.started
    before = timeline.rate_between(job.started - before_seconds + 1.0, job.started)  # the first second warms up
    during = timeline.rate_between(job.started, job.ended)
    fields = {"seconds": round(seconds, 3), "server_seconds": round(job.answer.seconds, 3),
              "members_processed": job.answer.members_processed, "dates": list(job.answer.dates),
              "members_loaded": members, "load_transactions_per_second": round(loaded.timeline.rate(), 1),
              "ingest_before_per_second": round(before, 1), "ingest_during_per_second": round(during, 1),
              "ingest_during_vs_before": round(during / before, 3) if before else None,
              "job_cpu_seconds": round(job_cpu, 3),
              "job_cpu_seconds_per_1000_members": round(1000 * job_cpu / members, 4), **common,
              "throughput_per_second": [n for _, n in timeline.per_second()]}
    rows = [("load", f"{members:,} members (one purchase each on {day}) at {loaded.timeline.rate():,.0f}/s"),
            ("midnight job", f"{seconds:.1f} s for {job_date} ({job.answer.members_processed:,} members processed; "
                             f"server says {job.answer.seconds:.1f} s)"),
            ("ingest before", f"{before:,.0f} transactions/s"),
            ("ingest during", f"{during:,.0f} transactions/s ({fields['ingest_during_vs_before']} of before)"),
            ("job CPU", f"{job_cpu:.1f} s ({fields['job_cpu_seconds_per_1000_members']} s per 1,000 members, "
                        f"ingestion included)"),
            *common_rows(common, "transactions (the load)")]
    parameters = settings.parameters(members=members, background_pool=pool, background_members=others,
                                     batch_size=batch_size, before_seconds=before_seconds,
                                     after_seconds=after_seconds, job_date=job_date)
    chart = Chart(f"midnight over {members:,} members while ingesting (1 client)", timeline,
                  spans=[(job.started - start, job.ended - start, "midnight job")])
    return Result("midnight", fields, parameters, rows, chart)


def _wait(seconds: float, tick: Callable[[], None]) -> None:
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        time.sleep(min(0.5, max(0.0, until - time.monotonic())))
        tick()

