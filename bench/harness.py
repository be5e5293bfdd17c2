"""What every scenario shares: a scratch folder, the servers it starts (killed at the
end whatever happens), their memory sampled throughout, and the fields every report carries."""

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

from actors.batch_wire import not_compiled
from bench.clients import Clients, Job, Report
from bench.machine import CpuMeter, RssSampler
from bench.progress import Progress
from bench.server import Serve
from bench.settings import Settings
from bench.streams import write_workload
from bench.workload import Workload
from client import PatronClient

__all__ = ["Driven", "Harness", "Settings"]


class Driven(NamedTuple):
    reports: list[Report]
    start: float
    """time.monotonic() of the clients' start."""
    cpu_seconds: float
    """Of the server tree while they ran."""


def every_shard(client: PatronClient) -> list:
    """Each shard's status; a bench's sums over shards are wrong with one down (GetStatus answers
    then, that shard not ready), so a shard that did not answer stops the bench, saying which."""
    shards = client.status().shards
    down = [f"shard {s.shard}: {s.down}" for s in shards if not s.ready]
    if down:
        raise RuntimeError(f"a shard does not answer: {'; '.join(down)}")
    return list(shards)


class Harness:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if settings.work is not None:
            settings.work.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="patron-bench-", dir=settings.work))
        self.rss = RssSampler()
        self.servers: list[Serve] = []
        self.client_sets: list[Clients] = []
        self.cpu_by_role: dict[str, float] = {}
        """Of the last `drive`: the serve tree's CPU seconds by process role (bench/machine.py)."""

    def path(self, name: str) -> Path:
        return self.root / name

    def serve(self, data: str = "data", start_date: str = "", hot_members: int = 0) -> Serve:
        s = self.settings
        server = Serve(self.path(data), self.path(f"serve-{len(self.servers)}.log"), rules=s.rules, shards=s.shards,
                       durability=s.durability, start_date=start_date or s.start_date, hot_members=hot_members)
        self.servers.append(server)
        self.rss.add(server.pid)
        print(f"serve: pid {server.pid}, data {self.path(data)}", file=sys.stderr, flush=True)
        return server

    def clients(self, jobs: list[Job]) -> Clients:
        clients = Clients(jobs)
        self.client_sets.append(clients)
        return clients

    def day_stream(self, transactions: int, members: int, label: str) -> Path:
        """The seeded workload on the start date, written to stream.jsonl in the scratch folder."""
        s, stream = self.settings, self.path("stream.jsonl")
        write_workload(stream, Workload(transactions=transactions, members=members, days=1, seed=s.seed,
                                        start=s.start_date), f"{label}: generate")
        return stream

    def drive(self, server: Serve, jobs: list[Job], label: str, total: int = 0) -> Driven:
        """Run client processes to their end, with progress on stderr; a client's error fails the run."""
        clients = self.clients(jobs)
        print(f"{label}: {len(jobs)} clients prepare their batches", file=sys.stderr, flush=True)
        clients.wait_ready()
        # What the set-up wrote (the stream, often 100 MB or more; Ray's and serve's start) is on the
        # disk before the measured part: left in the page cache, the kernel writes it back 30 s
        # later (vm.dirty_expire_centisecs), in the middle of the run, and on ext4 every shard's
        # fdatasync waits for it (bench/RESULTS.md, "The night's runs, 4 Dec").
        os.sync()
        meter = CpuMeter([server.pid]).start()
        start = clients.start()
        progress = Progress(label, total)
        reports = clients.finish(tick=lambda: progress.update(clients.done))
        cpu = meter.stop()
        self.cpu_by_role = meter.by_role
        progress.close()
        errors = [report.error for report in reports if report.error]
        if errors:
            raise RuntimeError(f"{label}: a client failed: {errors[0]}\n{server.tail()}")
        return Driven(reports, start, cpu)

    def stream_jobs(self, address: str, source: Path, batch_size: int, **options: Any) -> list[Job]:
        parts = self.settings.clients
        return [Job(address, source=source, part=k, parts=parts, batch_size=batch_size, window=self.settings.window,
                    **options) for k in range(parts)]

    def common(self, client: PatronClient, cpu_seconds: float, units: int, unit: str = "transactions") -> dict:
        """CPU per 1,000 units, peak RSS so far, LMDB bytes per member now."""
        self.rss.sample()
        shards = every_shard(client)
        disk, members = sum(s.disk_bytes for s in shards), sum(s.members for s in shards)
        records = sum(s.member_bytes for s in shards)
        by_role = {name: round(1000 * seconds / units, 4) for name, seconds in sorted(self.cpu_by_role.items())
                   } if units else {}
        return {"cpu_seconds": round(cpu_seconds, 3), "cpu_basis": f"serve process tree per 1,000 {unit}",
                "cpu_seconds_per_1000": round(1000 * cpu_seconds / units, 4) if units else None,
                "cpu_seconds_per_1000_by_role": by_role,
                "peak_rss_bytes": self.rss.peak, "disk_bytes": disk, "members": members,
                "disk_bytes_per_member": round(disk / members, 1) if members else None,
                "member_record_bytes_per_member": round(records / members, 1) if members else None,
                "not_compiled": not_compiled()}

    def close(self) -> None:
        for clients in self.client_sets:
            clients.close()
        self.rss.close()
        for server in self.servers:
            if self.settings.keep_data:
                server.stop()
            else:
                server.kill_group()
        if not self.settings.keep_data:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Harness":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
