"""Resident memory of every process of the `patron serve` trees on this machine, at each tree's
peak: anonymous, file-backed, and of that LMDB's data.mdb mapping (the page cache seen through
the map), with PSS (shared libraries counted once over the processes that map them). Run it
beside a bench, e.g. `patron bench members`, and stop it (Ctrl-C) or let it end once the trees
are gone:

    .venv/bin/python -m bench.process_memory --out /tmp/processes.json &
    .venv/bin/patron bench members --members 10000000 --hot-members 500000 --transactions 100000 \\
        --shards 2 --work /work/m10m --out OUT

Reading /proc/PID/smaps walks each mapping's pages: a few milliseconds a process every `--every`
seconds, more with gigabytes mapped; the bench's own sampler reads only /proc/PID/status."""

import argparse
import json
import signal
import time
from pathlib import Path

from bench.machine import command, processes, tree

__all__ = ["main"]

FIELDS = ("rss", "anon", "file", "data_mdb", "pss")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.process_memory")
    parser.add_argument("--out", type=Path, required=True, help="JSON: each tree's processes at its peak")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between samples")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    peaks: dict[int, dict] = {}
    seen_at = time.monotonic()
    try:
        while not peaks or time.monotonic() - seen_at < 30:
            for root, sample in _sample_trees().items():
                seen_at = time.monotonic()
                if sample["rss"] > peaks.get(root, {}).get("rss", 0):
                    peaks[root] = sample
            time.sleep(args.every)
    except KeyboardInterrupt:
        pass
    args.out.write_text(json.dumps(peaks, indent=1))
    for root, sample in peaks.items():
        print(_table(root, sample))


def _sample_trees() -> dict[int, dict]:
    table = processes()
    roots = [pid for pid in table if "cli.main serve" in command(pid)]
    trees = {}
    for root in roots:
        rows = [row for info in tree(root, table) if (row := _process(info.pid))]
        trees[root] = {"at": time.time(), "rss": sum(row["rss"] for row in rows),
                       "processes": sorted(rows, key=lambda row: -row["rss"])}
    return trees


def _process(pid: int) -> dict | None:
    """KiB by kind, from smaps_rollup and data.mdb's mappings in smaps; None once ended."""
    try:
        rollup = dict(_fields(Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]))
        mapped = _data_mdb_kib(Path(f"/proc/{pid}/smaps").read_text().splitlines())
    except (OSError, ValueError):
        return None
    return {"pid": pid, "name": _name(command(pid)), "rss": rollup.get("Rss", 0),
            "anon": rollup.get("Anonymous", 0), "file": rollup.get("Rss", 0) - rollup.get("Anonymous", 0),
            "data_mdb": mapped, "pss": rollup.get("Pss", 0)}


def _fields(lines: list[str]) -> list[tuple[str, int]]:
    return [(name, int(value.split()[0])) for name, value in (line.split(":", 1) for line in lines)]


def _data_mdb_kib(lines: list[str]) -> int:
    """Rss of the mappings of files named data.mdb (a mapping's header line names its file;
    the field lines after it start with a capitalised name and a colon)."""
    total, inside = 0, False
    for line in lines:
        head = line.split(None, 1)[0]
        if not head.endswith(":"):
            inside = line.rstrip().endswith("/data.mdb")
        elif inside and head == "Rss:":
            total += int(line.split()[1])
    return total


def _name(text: str) -> str:
    """What a process of the tree is: the gateway, a Ray actor (by its title), or Ray's own."""
    if "cli.main serve" in text:
        return "serve (gateway, coordinator)"
    if text.startswith("ray::"):
        return text.split(maxsplit=1)[0]
    for known in ("raylet", "gcs_server", "log_monitor", "monitor.py", "dashboard/dashboard.py",
                  "dashboard/agent.py", "runtime_env/agent", "default_worker"):
        if known in text:
            return known
    return text[:60]


def _table(root: int, sample: dict) -> str:
    lines = [f"serve tree {root} at its peak, {sample['rss'] / 1024:,.0f} MiB (MiB by kind):",
             f"{'process':34}" + "".join(f"{name:>10}" for name in FIELDS)]
    for row in sample["processes"]:
        lines.append(f"{row['name'][:34]:34}" + "".join(f"{row[name] / 1024:>10,.0f}" for name in FIELDS))
    lines.append(f"{'all':34}" + "".join(f"{sum(r[name] for r in sample['processes']) / 1024:>10,.0f}"
                                         for name in FIELDS))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
