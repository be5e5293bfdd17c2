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

Arenas pymalloc gives back are emptied a huge page at a time, once both halves are unused, with
`MADV_FREE`: the kernel takes the memory back when it needs it, and until then a page handed out
again is still mapped, neither faulted in nor cleared anew. A shard's batch makes and frees tens of
megabytes of objects, so with `MADV_DONTNEED` the kernel faulted in and cleared each emptied 2 MiB
page again at the next batch's first write to it (about 2% of a shard's CPU; bench/RESULTS.md,
"Emptied huge pages freed lazily"). One whose other half is in use stays resident and is the
first handed out again. Arenas taken before `install` are returned to the allocator that made them.
Only the process's own mappings are advised; the machine's settings are not touched
(docs/decisions.md, "Python's objects on huge pages")."""

from libc.stdint cimport uintptr_t
from libc.stdlib cimport realloc
from libc.string cimport memset

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
    int PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE, MADV_HUGEPAGE, MADV_DONTNEED, MADV_FREE
    void *MAP_FAILED


cdef enum:
    HUGE_PAGE = 2 * 1024 * 1024
    # pymalloc's arena on 64-bit CPython 3.10 and later; any other size goes to the allocator
    # before, so a Python with other arenas runs as if this were not installed
    ARENA = 1024 * 1024
    PER_REGION = 64
    REGION = PER_REGION * ARENA  # address space reserved at a time; memory comes as arenas are touched


cdef enum:
    FREE = 0  # never handed out, or emptied with its partner: no memory the kernel cannot take back
    USED = 1  # pymalloc's
    KEPT = 2  # given back while its partner (the other half of its huge page) is used: resident


cdef PyObjectArenaAllocator _before
cdef bint _installed = False
cdef uintptr_t *_regions = NULL       # start of each region reserved
cdef unsigned char *_states = NULL    # each arena's state, region by region
cdef size_t _region_count = 0
cdef size_t _in_use = 0
cdef size_t _kept = 0


cdef Py_ssize_t _slot(void *arena) noexcept nogil:
    """The arena's index in `_states`, or -1 when it is not from a region (made before install)."""
    cdef uintptr_t at = <uintptr_t>arena
    cdef size_t i
    for i in range(_region_count):
        if _regions[i] <= at < _regions[i] + REGION:
            return i * PER_REGION + (at - _regions[i]) // ARENA
    return -1


cdef void *_address(size_t slot) noexcept nogil:
    return <void *>(_regions[slot // PER_REGION] + (slot % PER_REGION) * ARENA)


cdef Py_ssize_t _reserve_region() noexcept nogil:
    """A new region of REGION bytes starting on a huge page's boundary, advised for huge pages:
    the index of its first arena, or -1."""
    global _regions, _states, _region_count
    cdef uintptr_t *regions = <uintptr_t *>realloc(_regions, (_region_count + 1) * sizeof(uintptr_t))
    if regions == NULL:
        return -1
    _regions = regions
    cdef unsigned char *states = <unsigned char *>realloc(_states, (_region_count + 1) * PER_REGION)
    if states == NULL:
        return -1
    _states = states
    cdef void *raw = mmap(NULL, REGION + HUGE_PAGE, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
    if raw == MAP_FAILED:
        return -1
    cdef uintptr_t start = (<uintptr_t>raw + HUGE_PAGE - 1) & ~(<uintptr_t>HUGE_PAGE - 1)
    if start != <uintptr_t>raw:
        munmap(raw, start - <uintptr_t>raw)
    cdef uintptr_t after = <uintptr_t>raw + REGION + HUGE_PAGE - (start + REGION)
    if after:
        munmap(<void *>(start + REGION), after)
    madvise(<void *>start, REGION, MADV_HUGEPAGE)  # refused (no THP in this kernel): ordinary pages
    _regions[_region_count] = start
    memset(_states + _region_count * PER_REGION, FREE, PER_REGION)
    _region_count += 1
    return (_region_count - 1) * PER_REGION


cdef Py_ssize_t _best_slot() noexcept nogil:
    """A kept arena first (resident, its huge page whole), then a free one whose partner is used
    (the resident other half of a huge page), then any free one; -1 when there is none."""
    cdef size_t slot
    cdef Py_ssize_t best = -1
    cdef int rank, best_rank = 0
    for slot in range(_region_count * PER_REGION):
        if _states[slot] == KEPT:
            return slot
        if _states[slot] == FREE:
            rank = 2 if _states[slot ^ 1] == USED else 1
            if rank > best_rank:
                best, best_rank = slot, rank
    return best


cdef void *_alloc(void *ctx, size_t size) noexcept nogil:
    global _in_use, _kept
    if size != ARENA:  # also what keeps the frame stack's chunks (pystate.c) out of the regions
        return _before.alloc(_before.ctx, size)
    cdef Py_ssize_t slot = _best_slot()
    if slot < 0:
        slot = _reserve_region()
        if slot < 0:
            return _before.alloc(_before.ctx, size)
    if _states[slot] == KEPT:
        _kept -= 1
    _states[slot] = USED
    _in_use += 1
    return _address(slot)


cdef void _free(void *ctx, void *arena, size_t size) noexcept nogil:
    global _in_use, _kept
    cdef Py_ssize_t slot = _slot(arena) if size == ARENA else -1
    if slot < 0:
        _before.free(_before.ctx, arena, size)
        return
    _in_use -= 1
    cdef Py_ssize_t partner = slot ^ 1
    if _states[partner] == USED:
        # Emptying one half would split the huge page; khugepaged would later fill it whole again
        # (its memory back without an allocation). Kept as it is, handed out first.
        _states[slot] = KEPT
        _kept += 1
        return
    if _states[partner] == KEPT:
        _kept -= 1
    # Both halves unused: the whole huge page is the system's to take back (a kernel older than
    # MADV_FREE, 4.5, refuses it: then at once, as munmap gave it)
    if madvise(_address(slot & ~1), HUGE_PAGE, MADV_FREE) != 0:
        madvise(_address(slot & ~1), HUGE_PAGE, MADV_DONTNEED)
    _states[slot] = _states[partner] = FREE


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
    """Regions reserved, arenas in use from them (pymalloc's; a 1 MiB frame stack chunk would
    count too), and arenas given back and kept resident (their huge page's other half in use)."""
    return _region_count, _in_use, _kept

