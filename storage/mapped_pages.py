"""LMDB's pages a shard has read through its map, given back once they pass a budget.

LMDB reads through a read-only shared mapping of data.mdb (the store opens it without
`writemap`: writes go through `pwrite`, never through the map). Every page a read touches
stays mapped into the process, and the kernel maps up to 15 neighbours with it (fault-around,
whatever `readahead=False` says), so after an import that touches every page, or a stream over
random members of a 10-million-member store, the shard process shows gigabytes of file-backed
resident memory that is the kernel's page cache seen through the map.

`madvise(MADV_DONTNEED)` on that mapping removes the pages from the process's page tables and
nothing else: the map is read-only and shared, so no page holds a change of the process's own;
the bytes stay in the page cache (the same file, unchanged), and the next read of a page faults
it back in, from the page cache or from disk if the kernel has since reclaimed it. A read
transaction in progress keeps seeing the same bytes (LMDB never rewrites a page a reader may
see). The address of the map changes only when LMDB resizes it, which the store does on its
writer's thread under its `_mapping` lock; the drop runs under the same lock."""

import ctypes
import os
from pathlib import Path

__all__ = ["BUDGET_BYTES", "drop_mapping", "file_resident_bytes", "mapped_ranges"]

BUDGET_BYTES = 256 << 20
"""File-backed resident memory of a shard's process (its libraries, about 40–80 MiB, and LMDB's
pages) above which the store drops its mapped pages: a few seconds of a random stream over 10
million members, the B-tree's upper pages fault back in within a batch."""

_MADV_DONTNEED = 4  # linux/mman.h; the same on every Linux architecture
_libc = ctypes.CDLL(None, use_errno=True)
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.madvise.restype = ctypes.c_int


def file_resident_bytes() -> int:
    """This process's file-backed resident memory (RssFile): a counter the kernel keeps, one
    small read, so it can be checked before every write."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"RssFile:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass  # no /proc (not Linux): nothing to measure, nothing dropped, no batch failed for it
    return 0


def mapped_ranges(path: Path) -> list[tuple[int, int]]:
    """(start, end) of this process's mappings of the file `path`."""
    target = os.fsencode(path.resolve())
    ranges = []
    with open("/proc/self/maps", "rb") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].rstrip(b"\n") == target:
                start, end = fields[0].split(b"-")
                ranges.append((int(start, 16), int(end, 16)))
    return ranges


def drop_mapping(path: Path) -> int:
    """Unmap the resident pages of every mapping of `path` from this process (the mappings stay):
    the bytes of address space covered. Only for read-only shared mappings (see above)."""
    covered = 0
    for start, end in mapped_ranges(path):
        if _libc.madvise(start, end - start, _MADV_DONTNEED) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"madvise(MADV_DONTNEED) of {path}: {os.strerror(error)}")
        covered += end - start
    return covered
