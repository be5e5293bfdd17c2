# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The gateway's cut of a batch into shards' parts, compiled: where each field-2 entry (tag,
length, message) of a serialised message lies, found in one pass over its bytes, and each
shard's entries copied into one bytes object, with no slice or Python int per entry.

The pure cut (actors/batch_wire.py `split_entries`) is the specification: this one answers None
where that one would encode the parts again (a group in the bytes, entries that do not match
the shards given) or for bytes it does not expect, and the pure cut decides."""

from libc.stdint cimport uint8_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE

__all__ = ["cut_entries"]

cdef enum:
    ENTRY_KEY = 2 << 3 | 2


cdef inline Py_ssize_t varint(const uint8_t* data, Py_ssize_t at, Py_ssize_t end, uint64_t* value) nogil:
    """The position after the varint at `at`, its value in `value`; -1 when it runs past the end."""
    cdef uint64_t result = 0, byte
    cdef int shift = 0
    while at < end and shift < 64:
        byte = data[at]
        at += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            value[0] = result
            return at
        shift += 7
    return -1


cdef Py_ssize_t spans(const uint8_t* data, Py_ssize_t end, Py_ssize_t* starts, Py_ssize_t most) nogil:
    """Each entry's start into `starts` (its end is the next start's slot: starts[2i], starts[2i+1]),
    at most `most` entries; their count, or -1 for bytes the pure cut must decide."""
    cdef Py_ssize_t at = 0, start, count = 0
    cdef uint64_t key, size
    while at < end:
        start = at
        at = varint(data, at, end, &key)
        if at < 0:
            return -1
        if key & 7 == 2:
            at = varint(data, at, end, &size)
            if at < 0 or size > <uint64_t>(end - at):
                return -1
            at += <Py_ssize_t>size
            if key == ENTRY_KEY:
                if count == most:
                    return -1
                starts[2 * count] = start
                starts[2 * count + 1] = at
                count += 1
        elif key & 7 == 0:
            at = varint(data, at, end, &size)
            if at < 0:
                return -1
        elif key & 7 == 1 or key & 7 == 5:
            at += 8 if key & 7 == 1 else 4
            if at > end:
                return -1
        else:
            return -1
    return count


def cut_entries(bytes data, dict indices, Py_ssize_t entries):
    """{shard: (its entry indices, their bytes in order)} for `indices` ({shard: entry indices}, `entries` in
    all), or None when the pure cut must decide (see the module)."""
    cdef const uint8_t* raw = <const uint8_t*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t* starts = <Py_ssize_t*>malloc(2 * (entries + 1) * sizeof(Py_ssize_t))
    cdef Py_ssize_t count, size, i, at
    cdef list part
    cdef object index
    cdef bytes out
    cdef char* into
    cdef dict parts = {}
    if starts == NULL:
        raise MemoryError()
    try:
        count = spans(raw, PyBytes_GET_SIZE(data), starts, entries)
        if count != entries:
            return None
        for shard, part in indices.items():
            size = 0
            for index in part:
                i = index
                size += starts[2 * i + 1] - starts[2 * i]
            out = PyBytes_FromStringAndSize(NULL, size)
            into = PyBytes_AS_STRING(out)
            at = 0
            for index in part:
                i = index
                memcpy(into + at, raw + starts[2 * i], starts[2 * i + 1] - starts[2 * i])
                at += starts[2 * i + 1] - starts[2 * i]
            parts[shard] = (part, out)
        return parts
    finally:
        free(starts)
