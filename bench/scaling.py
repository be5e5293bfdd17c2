"""Scaling on a local two-node Ray cluster (bench/cluster.py): the same closed-loop stream into
1, 2 and 4 shards (spread over both nodes) through 1 gateway, and through 2 (one per node),
each on a new data folder. Throughput is also given as a ratio to one shard through one gateway,
and per CPU-second of every process of the cluster (serve, both nodes' raylets, shard actors and
node gateways): the efficiency per core, steadier than throughput on a shared machine."""

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.clients import Job, Report
from bench.cluster import LocalCluster
from bench.harness import Harness, Settings
from bench.ingest import steady_rate
from bench.machine import TICKS_PER_SECOND, command, tree_cpu_ticks
from bench.report import Chart, Result
from bench.server import Serve
from bench.streams import write_workload
from bench.timeline import Timeline
from bench.workload import Workload

__all__ = ["run"]

SETUPS = ((1, 1), (2, 1), (4, 1), (1, 2), (2, 2), (4, 2))
"""(shards, gateways)."""
_NODE_GATEWAY = re.compile(r"node b: gateway (127\.0\.0\.1:\d+)")


@dataclass
class Measured:
    shards: int
    gateways: int
    rate: float
    steady: float
    cpu: dict[str, float]
    """CPU seconds by role: gateway (serve's process), node gateway, shards, ray."""
    elapsed: float

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu.values())

    @property
    def cores_busy(self) -> float:
        return self.cpu_seconds / self.elapsed if self.elapsed else 0.0

    @property
    def per_cpu_second(self) -> float:
        return self.rate * self.elapsed / self.cpu_seconds if self.cpu_seconds else 0.0


def run(settings: Settings) -> Result:
    total = settings.pick(settings.transactions, 200_000, 30_000)
    members = settings.pick(settings.members, 50_000, 5_000)
    batch_size = settings.batch_size or 1000
    clients = max(settings.clients, 2)
    with Harness(settings) as bench:
        stream = bench.path("stream.jsonl")
        write_workload(stream, Workload(transactions=total, members=members, days=1, seed=settings.seed,
                                        start=settings.start_date), "scaling: generate")
        print("scaling: starting a two-node Ray cluster", file=sys.stderr, flush=True)
        cluster = LocalCluster(bench.path("cluster"), cpus=2)
        try:
            measured = [_measure(bench, cluster, stream, batch_size, clients, shards, gateways)
                        for shards, gateways in SETUPS]
        finally:
            cluster.stop()
    return _result(settings, measured, total, members, batch_size, clients)


def _measure(bench: Harness, cluster: LocalCluster, stream: Path, batch_size: int, clients: int,
             shards: int, gateways: int) -> Measured:
    label = f"scaling: {shards} shards, {gateways} gateways"
    extra = ("--ray-address", cluster.address, "--gateway-per-node") if gateways > 1 else (
        "--ray-address", cluster.address)
    s = bench.settings
    server = Serve(bench.path(f"data-{shards}-{gateways}"), bench.path(f"serve-{shards}-{gateways}.log"),
                   rules=s.rules, shards=shards, durability=s.durability, start_date=s.start_date, extra=extra,
                   env=cluster.env)
    bench.servers.append(server)
    try:
        server.client().close()
        addresses = [server.address]
        if gateways > 1:
            found = _NODE_GATEWAY.search(server.log.read_text(errors="replace"))
            if found is None:
                raise RuntimeError(f"{label}: node b's gateway is not in the banner:\n{server.tail()}")
            addresses.append(found.group(1))
        jobs = [Job(addresses[k % len(addresses)], source=stream, part=k, parts=clients, batch_size=batch_size,
                    window=s.window) for k in range(clients)]
        roots = [server.pid, *(node.process.pid for node in cluster.nodes.values())]
        reports, start, cpu = _drive(bench, jobs, roots, label)
    finally:
        server.stop()
    timeline = Timeline.of(reports, start)
    return Measured(shards, gateways, timeline.rate(), steady_rate(timeline), cpu, timeline.seconds)


def _drive(bench: Harness, jobs: list[Job], roots: list[int], label: str
           ) -> tuple[list[Report], float, dict[str, float]]:
    """As bench.drive does, with the CPU of the whole cluster (shard actors are not serve's children)."""
    clients = bench.clients(jobs)
    print(f"{label}: {len(jobs)} clients prepare their batches", file=sys.stderr, flush=True)
    clients.wait_ready()
    before = tree_cpu_ticks(roots)
    start = clients.start()
    reports = clients.finish()
    cpu = _by_role(before, tree_cpu_ticks(roots), roots[0])
    errors = [report.error for report in reports if report.error]
    if errors:
        raise RuntimeError(f"{label}: a client failed: {errors[0]}")
    return reports, start, cpu


def _by_role(before: dict[tuple[int, int], int], after: dict[tuple[int, int], int], serve: int) -> dict[str, float]:
    """CPU seconds of the cluster's processes between the two readings, by what they are."""
    seconds: dict[str, float] = {}
    for key, ticks in after.items():
        name = command(key[0])
        kind = ("gateway" if key[0] == serve else "node gateway" if name.startswith("ray::NodeGateway")
                else "shards" if name.startswith("ray::ShardActor") else "ray")
        seconds[kind] = seconds.get(kind, 0.0) + (ticks - before.get(key, 0)) / TICKS_PER_SECOND
    return seconds


def _result(settings: Settings, measured: list[Measured], total: int, members: int, batch_size: int,
            clients: int) -> Result:
    base = measured[0]
    rows, setups = [], []
    for m in measured:
        ratio = m.rate / base.rate if base.rate else 0.0
        efficiency = m.per_cpu_second / base.per_cpu_second if base.per_cpu_second else 0.0
        per_1000 = {role: round(1000 * seconds / total, 4) for role, seconds in sorted(m.cpu.items())}
        setups.append({"shards": m.shards, "gateways": m.gateways, "transactions_per_second": round(m.rate, 1),
                       "steady_transactions_per_second": m.steady, "ratio_to_one_shard": round(ratio, 3),
                       "cpu_seconds": round(m.cpu_seconds, 3), "cores_busy": round(m.cores_busy, 2),
                       "transactions_per_cpu_second": round(m.per_cpu_second, 1),
                       "efficiency_to_one_shard": round(efficiency, 3), "elapsed_seconds": round(m.elapsed, 3),
                       "cpu_seconds_per_1000_by_role": per_1000})
        roles = ", ".join(f"{k} {v:.3f}" for k, v in per_1000.items())
        rows.append((f"{m.shards} shards, {m.gateways} gateway{'s' if m.gateways > 1 else ''}",
                     f"{m.rate:,.0f} tx/s (×{ratio:.2f}), {m.cores_busy:.2f} cores busy, "
                     f"{m.per_cpu_second:,.0f} tx per CPU-second (×{efficiency:.2f}); "
                     f"CPU s per 1,000: {roles}"))
    fields = {"setups": setups, "transactions": total, "clients": clients}
    parameters = settings.parameters(transactions=total, members=members, batch_size=batch_size, clients=clients)
    chart = Chart(f"scaling: {total:,} transactions, {clients} clients, closed loop, two local nodes",
                  bars=[(f"{m.shards}s/{m.gateways}g", m.rate) for m in measured])
    return Result("scaling", fields, parameters, rows, chart)
