"""What a first touch of memory costs on this host, on huge pages and on ordinary ones: whether
patron's processes should put their objects on huge pages here (docs/decisions.md, "Python's
objects on huge pages").

    python -m bench.page_touch [--mib 512] [--rounds 3]

Each round maps `--mib` of anonymous memory, advised `MADV_HUGEPAGE` or not, writes a byte in
every 4 KiB page and unmaps it, alternating. The first huge round pays what the host charges for
2 MiB it no longer backs (a virtual machine whose free memory is reported back to its host); the
rounds after it reuse what was just freed, until the host is given it back again."""

import argparse
import mmap
import os
import time

PAGE = 4096


def touch(mib: int, huge: bool) -> tuple[float, float]:
    """Wall and system seconds to touch `mib` of fresh memory, page by page."""
    memory = mmap.mmap(-1, mib << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        if huge:
            memory.madvise(mmap.MADV_HUGEPAGE)
        began, system = time.perf_counter(), os.times().system
        for offset in range(0, mib << 20, PAGE):
            memory[offset] = 1
        return time.perf_counter() - began, os.times().system - system
    finally:
        memory.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for round_ in range(1, args.rounds + 1):
        for huge in (True, False):
            wall, system = touch(args.mib, huge)
            print(f"round {round_}: {args.mib} MiB on {'huge' if huge else 'ordinary'} pages: "
                  f"{wall:.2f} s, {system:.2f} s of it in the kernel", flush=True)


if __name__ == "__main__":
    main()
