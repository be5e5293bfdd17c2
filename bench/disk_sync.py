"""What a strict commit waits for on this disk: `fdatasync` after writing N pages of 4 KiB
scattered over a file (as an LMDB commit writes a page for nearly every member it touched)
against N pages side by side, each case 30 times; with `--watch S`, instead, 100 scattered pages
synced every 30 ms for S seconds, to see the disk's own stalls:

    .venv/bin/python bench/disk_sync.py DIR [--pages 100 300 700] [--file-mib 128] [--watch 60]

DIR should be on the disk that holds (or will hold) patron's data folder; a temporary file is
made there and removed."""

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

PAGE = 4096
ROUNDS = 30
_PAGE_BYTES = b"\2" * PAGE


def synced_after(fd: int, offsets: list[int]) -> float:
    """Seconds `fdatasync` takes after a page is written at each offset."""
    for offset in offsets:
        os.pwrite(fd, _PAGE_BYTES, offset)
    began = time.perf_counter()
    os.fdatasync(fd)
    return time.perf_counter() - began


def sync_times(fd: int, offsets_of_round: list[list[int]]) -> list[float]:
    return sorted(synced_after(fd, offsets) for offsets in offsets_of_round)


def watch(fd: int, pages_in_file: int, seconds: float) -> None:
    times, stalls = [], []
    start = time.perf_counter()
    while (began := time.perf_counter()) - start < seconds:
        synced = time.perf_counter() - start
        times.append(synced_after(fd, [PAGE * number for number in random.sample(range(pages_in_file), 100)]))
        if times[-1] > 0.03:
            stalls.append(f"{synced:.1f} s: {1000 * times[-1]:.1f} ms")
        time.sleep(max(0.0, 0.03 - (time.perf_counter() - began)))
    times.sort()
    print(f"{len(times)} syncs of 100 scattered pages: p50 {1000 * times[len(times) // 2]:.1f} ms, "
          f"p99 {1000 * times[len(times) * 99 // 100]:.1f} ms, max {1000 * times[-1]:.1f} ms")
    print("over 30 ms:", ", ".join(stalls) or "none")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--pages", type=int, nargs="+", default=[100, 300, 700])
    parser.add_argument("--file-mib", type=int, default=128)
    parser.add_argument("--watch", type=float, default=0.0, help="seconds of syncs every 30 ms instead")
    args = parser.parse_args()
    pages_in_file = args.file_mib * (1 << 20) // PAGE
    fd, name = tempfile.mkstemp(dir=args.folder, prefix="patron-disk-sync-")
    try:
        for mib in range(args.file_mib):  # written and synced first: no allocation in the timed part
            os.pwrite(fd, b"\1" * (1 << 20), mib << 20)
        os.fsync(fd)
        if args.watch:
            watch(fd, pages_in_file, args.watch)
            return
        for asked in args.pages:
            count = min(asked, pages_in_file // ROUNDS)  # the side-by-side rounds fit in the file
            scattered = [[PAGE * p for p in sorted(random.sample(range(pages_in_file), count))] for _ in range(ROUNDS)]
            together = [[PAGE * (r * count + p) for p in range(count)] for r in range(ROUNDS)]
            for label, rounds in (("scattered", scattered), ("side by side", together)):
                times = sync_times(fd, rounds)
                print(f"{count:5d} pages {label:12s}  fdatasync p50 {1000 * times[ROUNDS // 2]:6.1f} ms, "
                      f"max {1000 * times[-1]:6.1f} ms")
    finally:
        os.close(fd)
        os.unlink(name)


if __name__ == "__main__":
    main()
