"""What every scenario shares: a scratch folder, the servers it starts (killed at the
end whatever happens), their memory sampled throughout, and the fields every report carries."""

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.clients import Clients, Job
from bench.machine import RssSampler
from bench.server import Serve
from bench.settings import Settings
from client import PatronClient

__all__ = ["Harness", "Settings"]


class Harness:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if settings.work is not None:
            settings.work.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="patron-bench-", dir=settings.work))
        self.rss = RssSampler()
        self.servers: list[Serve] = []
        self.client_sets: list[Clients] = []

    def path(self, name: str) -> Path:
        return self.root / name

    def serve(self, data: str = "data", start_date: str = "") -> Serve:
        s = self.settings
        server = Serve(self.path(data), self.path(f"serve-{len(self.servers)}.log"), rules=s.rules, shards=s.shards,
                       durability=s.durability, start_date=start_date or s.start_date)
        self.servers.append(server)
        self.rss.add(server.pid)
        print(f"serve: pid {server.pid}, data {self.path(data)}", file=sys.stderr, flush=True)
        return server

    def clients(self, jobs: list[Job]) -> Clients:
        clients = Clients(jobs)
        self.client_sets.append(clients)
        return clients

    def stream_jobs(self, address: str, source: Path, batch_size: int, **options: Any) -> list[Job]:
        parts = self.settings.clients
        return [Job(address, source=source, part=k, parts=parts, batch_size=batch_size, window=self.settings.window,
                    **options) for k in range(parts)]

    def common(self, client: PatronClient, cpu_seconds: float, units: int, unit: str = "transactions") -> dict:
        """CPU per 1,000 units, peak RSS so far, LMDB bytes per member now."""
        self.rss.sample()
        shards = client.status().shards
        disk, members = sum(s.disk_bytes for s in shards), sum(s.members for s in shards)
        records = sum(s.member_bytes for s in shards)
        return {"cpu_seconds": round(cpu_seconds, 3), "cpu_basis": f"serve process tree per 1,000 {unit}",
                "cpu_seconds_per_1000": round(1000 * cpu_seconds / units, 4) if units else None,
                "peak_rss_bytes": self.rss.peak, "disk_bytes": disk, "members": members,
                "disk_bytes_per_member": round(disk / members, 1) if members else None,
                "member_record_bytes_per_member": round(records / members, 1) if members else None}

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
