"""The machine, and the CPU seconds, resident memory and disk writes of processes, read from /proc."""

import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple

__all__ = ["RSS_KINDS", "CpuMeter", "ProcessInfo", "RssSampler", "bytes_written", "command", "machine", "processes",
           "role", "rss_kinds", "run_queue_seconds", "tree", "tree_cpu_ticks", "tree_rss_bytes"]

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


class ProcessInfo(NamedTuple):
    pid: int
    ppid: int
    session: int
    started: int
    """Start time in clock ticks after boot: with the pid, it names a process even if the pid is reused."""
    cpu_ticks: int
    """utime + stime."""
    state: str = ""
    """R, S, D, Z (ended, not yet reaped by its parent)..."""


def machine() -> dict:
    return {"cpu_count": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform(),
            "processor": platform.machine()}


def parse_stat(text: str) -> ProcessInfo:
    """One /proc/PID/stat line. The command name is in parentheses and may hold spaces."""
    pid = int(text[:text.index(" ")])
    fields = text[text.rindex(")") + 2:].split()  # fields[0] is field 3 (state) of proc(5)
    return ProcessInfo(pid=pid, ppid=int(fields[1]), session=int(fields[3]), started=int(fields[19]),
                       cpu_ticks=int(fields[11]) + int(fields[12]), state=fields[0])


def processes(proc: Path = PROC) -> dict[int, ProcessInfo]:
    found = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                info = parse_stat((entry / "stat").read_text())
            except (OSError, ValueError, IndexError):
                continue  # it ended while we looked
            found[info.pid] = info
    return found


def tree(root: int, table: dict[int, ProcessInfo]) -> list[ProcessInfo]:
    """The root, its descendants, and whatever still runs in the root's session (when the root
    leads one): Ray's agents outlive a killed parent and are re-parented to init."""
    children: dict[int, list[int]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    members, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in table and pid not in members:
            members.add(pid)
            todo.extend(children.get(pid, ()))
    members.update(info.pid for info in table.values() if info.session == root)
    return [table[pid] for pid in sorted(members)]


def tree_cpu_ticks(roots: list[int], proc: Path = PROC) -> dict[tuple[int, int], int]:
    """CPU ticks by (pid, start time) for every process of the trees."""
    table = processes(proc)
    return {(info.pid, info.started): info.cpu_ticks for root in roots for info in tree(root, table)}


def cpu_seconds_between(before: dict[tuple[int, int], int], after: dict[tuple[int, int], int]) -> float:
    """A process born in between counts whole; one that ended in between is lost after `before`."""
    return sum(ticks - before.get(key, 0) for key, ticks in after.items()) / TICKS_PER_SECOND


def command(pid: int, proc: Path = PROC) -> str:
    """The command line, as Ray's workers rename themselves (`ray::ShardActor...`); empty once ended."""
    try:
        return (proc / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def role(pid: int, roots: list[int], proc: Path = PROC) -> str:
    """What a process of a serve tree is: the serve process itself runs the gateway (gRPC, routing,
    acknowledgements) and the coordinator; shard actors are Ray workers; the rest is Ray's own."""
    if pid in roots:
        return "gateway"
    return "shards" if command(pid, proc).startswith("ray::ShardActor") else "ray"


def rss_bytes(pid: int, proc: Path = PROC, field: str = "VmRSS") -> int:
    """Resident memory of one process; `field` may be VmRSS, RssAnon (the heap: what a leak
    grows) or RssFile (mapped files: LMDB's pages, which the kernel may reclaim)."""
    try:
        for line in (proc / str(pid) / "status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0  # ended, or a kernel thread without it


RSS_KINDS = ("RssAnon", "RssFile", "RssShmem")
"""What VmRSS is made of: the heap (anonymous: not reclaimable, but for the huge pages a shard's
freed objects leave, which the kernel takes back when it needs them: `LazyFree`), mapped files
(LMDB's pages: the kernel reclaims them under pressure) and shared memory (Ray's object store)."""


def rss_kinds(pid: int, proc: Path = PROC) -> tuple[int, int, int]:
    """RSS_KINDS of one process, in bytes, from one read of its status; zeros once ended."""
    found = dict.fromkeys(RSS_KINDS, 0)
    try:
        for line in (proc / str(pid) / "status").read_text().splitlines():
            name = line.split(":", 1)[0]
            if name in found:
                found[name] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return found["RssAnon"], found["RssFile"], found["RssShmem"]


def tree_rss_bytes(roots: list[int], proc: Path = PROC, field: str = "VmRSS") -> int:
    """The sum over the trees (memory shared between processes, Ray's object store for one, counts
    once per process that maps it)."""
    table = processes(proc)
    return sum(rss_bytes(info.pid, proc, field) for root in roots for info in tree(root, table))


def bytes_written(proc: Path = PROC) -> int:
    """Bytes this process has handed to write calls (`/proc/self/io`'s `wchar`): for a store, the
    pages LMDB writes, which is what the device receives (within 1%, measured); 0 where the kernel
    does not say. Not `write_bytes`: on this machine's kernel (Linux 6.18, ext4) it counts every
    page-cache folio a write dirties whole, and LMDB's pages sit in large folios read through its
    map: 15-17 times the bytes written and the device's count (bench/RESULTS.md, "Bytes written,
    counted again")."""
    try:
        with open(proc / "self" / "io") as io:
            return next(int(line.split()[1]) for line in io if line.startswith("wchar:"))
    except (OSError, StopIteration):
        return 0


def run_queue_seconds(pid: int, thread: int | None = None, proc: Path = PROC) -> float:
    """Seconds one thread (by default every thread of the process) spent runnable but waiting for a
    CPU (schedstat's run delay): what a process loses to the others on its cores. 0 once ended."""
    tasks = [proc / str(pid) / "task" / str(thread)] if thread is not None else \
        list((proc / str(pid) / "task").glob("*")) if (proc / str(pid) / "task").exists() else []
    total = 0
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the thread ended while we looked
    return total / 1e9


class CpuMeter:
    """CPU seconds the trees used from `start()` to `stop()`."""

    def __init__(self, roots: list[int]) -> None:
        self.roots = roots
        self.before: dict[tuple[int, int], int] = {}
        self.seconds = 0.0
        self.by_role: dict[str, float] = {}
        """The same seconds by `role`: where the CPU goes, not only how much."""

    def start(self) -> "CpuMeter":
        self.before = tree_cpu_ticks(self.roots)
        return self

    def stop(self) -> float:
        after = tree_cpu_ticks(self.roots)
        self.seconds = cpu_seconds_between(self.before, after)
        self.by_role = {}
        for key, ticks in after.items():
            name = role(key[0], self.roots)
            self.by_role[name] = self.by_role.get(name, 0.0) + (ticks - self.before.get(key, 0)) / TICKS_PER_SECOND
        return self.seconds


class RssSampler:
    """Samples the trees' resident memory every `every` seconds on a thread; roots may be added later
    (a restarted server)."""

    def __init__(self, every: float = 0.5) -> None:
        self.every = every
        self.roots: list[int] = []
        self.peak = 0
        self.samples: list[tuple[float, int]] = []
        self.kinds: list[tuple[float, int, int, int, int, int]] = []
        """Per sample: its time, the trees' RSS_KINDS summed (anonymous, file-backed, shared), and
        the shard actors' alone: anonymous (where members are held) and file-backed (their
        libraries and LMDB's pages mapped, bounded by storage/mapped_pages.py)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def add(self, pid: int) -> None:
        self.roots.append(pid)
        if not self._thread.is_alive():
            self._thread.start()

    def sample(self) -> int:
        table = processes()
        pids = [info.pid for root in list(self.roots) for info in tree(root, table)]
        anon = file = shmem = shards = shard_files = 0
        for pid in pids:
            a, f, s = rss_kinds(pid)
            anon, file, shmem = anon + a, file + f, shmem + s
            if command(pid).startswith("ray::ShardActor"):
                shards, shard_files = shards + a, shard_files + f
        total = anon + file + shmem
        now = time.monotonic()
        self.samples.append((now, total))
        self.kinds.append((now, anon, file, shmem, shards, shard_files))
        self.peak = max(self.peak, total)
        return total

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()
