# cython: language_level=3
"""Python's small objects on huge pages: an arena allocator for pymalloc.

pymalloc takes its memory a 1 MiB arena at a time, each its own `mmap` of 4 KiB pages. A shard
holds 100,000 members as millions of small objects spread over hundreds of such arenas, and
scoring a transaction reaches a dozen of them for one member: on a virtual machine most of those
reads first walk the page tables, because a core's TLB holds a few thousand 4 KiB pages and the
arenas span hundreds of megabytes. Here arenas are cut from 64 MiB regions aligned to 2 MiB and
advised `MADV_HUGEPAGE`, so the kernel backs them with transparent huge pages where it can (512
times fewer TLB entries for the same memory) and with ordinary pages where it cannot: nothing
fails for want of huge pages, unlike `MAP_HUGETLB`'s reserved pool.

An arena pymalloc gives back is emptied (`MADV_DONTNEED`: its memory returns to the system as
before) and its address kept for the next arena. Arenas taken before `install` are returned to
the allocator that made them. Only the process's own mappings are advised; the machine's settings
are not touched (docs/decisions.md, "Python's objects on huge pages")."""

from libc.stdint cimport uintptr_t
from libc.stdlib cimport realloc

__all__ = ["counts", "install", "installed"]


cdef extern from "Python.h":
    ctypedef struct PyObjectArenaAllocator:
        void *ctx
        void *(*alloc)(void *ctx, size_t size) noexcept nogil
        void (*free)(void *ctx, void *ptr, size_t size) noexcept nogil
    void PyObject_GetArenaAllocator(PyObjectArenaAllocator *allocator)
    void PyObject_SetArenaAllocator(PyObjectArenaAllocator *allocator)


cdef extern from "sys/mman.h" nogil:
    void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset)
    int munmap(void *addr, size_t length)
    int madvise(void *addr, size_t length, int advice)
    int PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE, MADV_HUGEPAGE, MADV_DONTNEED
    void *MAP_FAILED


cdef enum:
    HUGE_PAGE = 2 * 1024 * 1024
    REGION = 64 * 1024 * 1024  # address space reserved at a time; memory comes as arenas are touched
    # pymalloc's arena on 64-bit CPython 3.10 and later; any other size goes to the allocator
    # before, so a Python with other arenas runs as if this were not installed
    ARENA = 1024 * 1024


cdef PyObjectArenaAllocator _before
cdef bint _installed = False
cdef uintptr_t *_regions = NULL     # start of each region reserved
cdef size_t _region_count = 0
cdef uintptr_t _next = 0             # the next arena never handed out, in the newest region
cdef uintptr_t _end = 0
cdef void **_spare = NULL            # arenas given back, emptied, handed out again first
cdef size_t _spare_count = 0
cdef size_t _spare_room = 0
cdef size_t _in_use = 0


cdef bint _ours(void *arena) noexcept nogil:
    cdef uintptr_t at = <uintptr_t>arena
    cdef size_t i
    for i in range(_region_count):
        if _regions[i] <= at < _regions[i] + REGION:
            return True
    return False


cdef bint _reserve_region() noexcept nogil:
    """A new region of REGION bytes starting on a huge page's boundary, advised for huge pages."""
    global _regions, _region_count, _next, _end
    cdef uintptr_t *grown = <uintptr_t *>realloc(_regions, (_region_count + 1) * sizeof(uintptr_t))
    if grown == NULL:
        return False
    _regions = grown
    cdef void *raw = mmap(NULL, REGION + HUGE_PAGE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
    if raw == MAP_FAILED:
        return False
    cdef uintptr_t start = (<uintptr_t>raw + HUGE_PAGE - 1) & ~(<uintptr_t>HUGE_PAGE - 1)
    if start != <uintptr_t>raw:
        munmap(raw, start - <uintptr_t>raw)
    cdef uintptr_t after = <uintptr_t>raw + REGION + HUGE_PAGE - (start + REGION)
    if after:
        munmap(<void *>(start + REGION), after)
    madvise(<void *>start, REGION, MADV_HUGEPAGE)  # refused (no THP in this kernel): ordinary pages
    _regions[_region_count] = start
    _region_count += 1
    _next, _end = start, start + REGION
    return True


cdef void *_alloc(void *ctx, size_t size) noexcept nogil:
    global _next, _spare_count, _in_use
    cdef void *arena
    if size != ARENA:
        return _before.alloc(_before.ctx, size)
    if _spare_count:
        _spare_count -= 1
        _in_use += 1
        return _spare[_spare_count]
    if _next == _end and not _reserve_region():
        return _before.alloc(_before.ctx, size)
    arena = <void *>_next
    _next += ARENA
    _in_use += 1
    return arena


cdef void _free(void *ctx, void *arena, size_t size) noexcept nogil:
    global _spare, _spare_count, _spare_room, _in_use
    cdef void **grown
    if size != ARENA or not _ours(arena):
        _before.free(_before.ctx, arena, size)
        return
    madvise(arena, ARENA, MADV_DONTNEED)  # the memory goes back to the system, as munmap gave it
    _in_use -= 1
    if _spare_count == _spare_room:
        grown = <void **>realloc(_spare, (_spare_room * 2 + 64) * sizeof(void *))
        if grown == NULL:  # its address is lost, not its memory: emptied above
            return
        _spare, _spare_room = grown, _spare_room * 2 + 64
    _spare[_spare_count] = arena
    _spare_count += 1


def install() -> None:
    """From now on pymalloc's new arenas come from huge-page regions (once per process)."""
    global _installed
    cdef PyObjectArenaAllocator mine
    if _installed:
        return
    PyObject_GetArenaAllocator(&_before)
    mine.ctx = NULL
    mine.alloc = _alloc
    mine.free = _free
    PyObject_SetArenaAllocator(&mine)
    _installed = True


def installed() -> bool:
    return _installed


def counts() -> tuple[int, int, int]:
    """Regions reserved, arenas in use from them, and arenas given back and kept for reuse."""
    return _region_count, _in_use, _spare_count
