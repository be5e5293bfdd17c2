# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The gateway's reading and cut of a batch, compiled.

`read_route`: what routing needs of a serialised TransactionBatch (its id, each transaction's
entry and member id, the CRC-32 its shard is found by), read in one pass over the bytes with no
protobuf message per transaction, and the batch's wire format checked on the way as strictly as
protobuf checks it (every field of TransactionBatch, Transaction and LineItem). The pure reading
(actors/batch_wire.py `BatchRoute`: protobuf's parse) is the specification: this one reads only
what protobuf's encoders write (fields in any order, given twice, unknown fields of the four plain
wire types) and answers None for anything else (a group, a known field of another wire type, a
varint or key longer than protobuf writes, a length past the end, a string that is not UTF-8),
which the pure reading then decides, refusing with a DecodeError what protobuf refuses.

`cut_entries`: where each field-2 entry (tag, length, message) of a serialised message lies,
found in one pass, and each shard's entries copied into one bytes object, with no slice or Python
int per entry. The pure cut (`split_entries`) is its specification: this one answers None where
that one would encode the parts again (a group in the bytes, entries that do not match the shards
given) or for bytes it does not expect, and the pure cut decides."""

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM
from cpython.unicode cimport PyUnicode_DecodeUTF8

__all__ = ["BatchRead", "crc32", "cut_entries", "read_route"]

cdef enum:
    ENTRY_KEY = 2 << 3 | 2


cdef enum:  # wire types
    VARINT = 0
    FIXED64 = 1
    DELIMITED = 2
    FIXED32 = 5


cdef inline const uint8_t* number(const uint8_t* at, const uint8_t* end, uint64_t* value) noexcept nogil:
    """The position after a varint as protobuf writes it (at most 10 bytes, the tenth holding only
    the top bit), its value in `value`; NULL for any other."""
    cdef uint64_t result = 0, byte
    cdef int shift = 0
    while at < end:
        byte = at[0]
        at += 1
        if shift == 63 and byte > 1:
            return NULL
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            value[0] = result
            return at
        shift += 7
    return NULL


cdef Py_ssize_t spans(const uint8_t* data, Py_ssize_t size, Py_ssize_t* starts, Py_ssize_t most) nogil:
    """Each entry's start into `starts` (its end is the next start's slot: starts[2i], starts[2i+1]),
    at most `most` entries; their count, or -1 for bytes the pure cut must decide."""
    cdef const uint8_t* at = data
    cdef const uint8_t* end = data + size
    cdef const uint8_t* start
    cdef Py_ssize_t count = 0
    cdef uint64_t key, value
    while at < end:
        start = at
        at = number(at, end, &key)
        if at == NULL:
            return -1
        if key & 7 == DELIMITED:
            at = number(at, end, &value)
            if at == NULL or value > <uint64_t>(end - at):
                return -1
            at += <Py_ssize_t>value
            if key == ENTRY_KEY:
                if count == most:
                    return -1
                starts[2 * count] = start - data
                starts[2 * count + 1] = at - data
                count += 1
        elif key & 7 == VARINT:
            at = number(at, end, &value)
            if at == NULL:
                return -1
        elif key & 7 == FIXED64 or key & 7 == FIXED32:
            if end - at < (8 if key & 7 == FIXED64 else 4):
                return -1
            at += 8 if key & 7 == FIXED64 else 4
        else:
            return -1
    return count


cdef dict joined(const char* raw, dict indices, const Py_ssize_t* bounds, Py_ssize_t stride, Py_ssize_t count):
    """{shard: (its entry indices, their entries' bytes in order)} for `indices`: entry i lies from
    bounds[i * stride] to bounds[i * stride + 1] in `raw` (`count` entries); one bytes object and
    a memcpy per entry, no slice."""
    cdef Py_ssize_t size, at, i, first
    cdef list part
    cdef object index
    cdef bytes out
    cdef char* into
    cdef dict parts = {}
    for shard, part in indices.items():
        size = 0
        for index in part:
            i = index
            if not 0 <= i < count:
                raise IndexError(f"entry {i} of {count}")
            size += bounds[i * stride + 1] - bounds[i * stride]
        out = PyBytes_FromStringAndSize(NULL, size)
        into = PyBytes_AS_STRING(out)
        at = 0
        for index in part:
            i = index
            first = bounds[i * stride]
            memcpy(into + at, raw + first, bounds[i * stride + 1] - first)
            at += bounds[i * stride + 1] - first
        parts[shard] = (part, out)
    return parts


def cut_entries(bytes data not None, dict indices, Py_ssize_t entries):
    """{shard: (its entry indices, their bytes in order)} for `indices` ({shard: entry indices}, `entries` in
    all), or None when the pure cut must decide (see the module)."""
    cdef Py_ssize_t* starts = <Py_ssize_t*>malloc(2 * (entries + 1) * sizeof(Py_ssize_t))
    if starts == NULL:
        raise MemoryError()
    try:
        if spans(<const uint8_t*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), starts, entries) != entries:
            return None
        return joined(PyBytes_AS_STRING(data), indices, starts, 2, entries)
    finally:
        free(starts)


# -- the reading of a batch for its routing ------------------------------------------------

cdef inline const uint8_t* field_key(const uint8_t* at, const uint8_t* end, uint32_t* key) noexcept nogil:
    """A field's key (number << 3 | wire type): one byte nearly always; a longer one only in its
    shortest form, under 2^32, and of a number above 0 (protobuf refuses 0 and 2^32 up)."""
    cdef uint64_t value
    cdef const uint8_t* start = at
    if at[0] < 0x80:
        value = at[0]
        at += 1
    else:
        at = number(at, end, &value)
        if at == NULL or at - start > 5 or value > 0xFFFFFFFFULL or (at - 1)[0] == 0:
            return NULL
    if value >> 3 == 0:
        return NULL
    key[0] = <uint32_t>value
    return at


cdef inline const uint8_t* length(const uint8_t* at, const uint8_t* end, Py_ssize_t* size) noexcept nogil:
    """A length-delimited field's size (at most 5 bytes, as protobuf reads it), checked against what is left."""
    cdef uint64_t value
    cdef const uint8_t* start = at
    if at < end and at[0] < 0x80:
        value = at[0]
        at += 1
    else:
        at = number(at, end, &value)
        if at == NULL or at - start > 5:
            return NULL
    if value > <uint64_t>(end - at):
        return NULL
    size[0] = <Py_ssize_t>value
    return at


cdef inline bint ascii(const uint8_t* text, Py_ssize_t size) noexcept nogil:
    """Whether these bytes are all below 0x80: eight at a time, the last eight (or four) read
    overlapping the ones before, so a string of any size takes a few loads, never a byte loop."""
    cdef uint64_t eight, last
    cdef uint32_t four, end
    cdef Py_ssize_t i = 0
    if size >= 8:
        eight = 0
        while i + 8 < size:
            memcpy(&last, text + i, 8)
            eight |= last
            i += 8
        memcpy(&last, text + size - 8, 8)
        return (eight | last) & 0x8080808080808080ULL == 0
    if size >= 4:
        memcpy(&four, text, 4)
        memcpy(&end, text + size - 4, 4)
        return (four | end) & 0x80808080U == 0
    while i < size:
        if text[i] >= 0x80:
            return False
        i += 1
    return True


cdef bint utf8(const uint8_t* text, Py_ssize_t size) noexcept nogil:
    """Whether these bytes are well-formed UTF-8 (the Unicode standard's table 3-7: no overlong
    form, no surrogate, nothing above U+10FFFF), as protobuf requires of a string field."""
    cdef Py_ssize_t i = 0
    cdef uint8_t byte, second, low, high
    while i < size:
        byte = text[i]
        if byte < 0x80:
            i += 1
            continue
        if byte < 0xC2 or byte > 0xF4:
            return False
        low, high = 0x80, 0xBF
        if byte == 0xE0:
            low = 0xA0
        elif byte == 0xED:
            high = 0x9F
        elif byte == 0xF0:
            low = 0x90
        elif byte == 0xF4:
            high = 0x8F
        if byte < 0xE0:
            if size - i < 2 or text[i + 1] & 0xC0 != 0x80:
                return False
            i += 2
            continue
        if size - i < (3 if byte < 0xF0 else 4):
            return False
        second = text[i + 1]
        if second < low or second > high or text[i + 2] & 0xC0 != 0x80:
            return False
        if byte >= 0xF0:
            if text[i + 3] & 0xC0 != 0x80:
                return False
            i += 4
        else:
            i += 3
    return True


cdef inline const uint8_t* text(const uint8_t* at, const uint8_t* end, uint32_t wire,
                                const uint8_t** start, Py_ssize_t* size) noexcept nogil:
    """A string field: where its UTF-8 starts into `start`, its size into `size`."""
    if wire != DELIMITED:
        return NULL
    at = length(at, end, size)
    if at == NULL or not (ascii(at, size[0]) or utf8(at, size[0])):
        return NULL
    start[0] = at
    return at + size[0]


cdef inline const uint8_t* scalar(const uint8_t* at, const uint8_t* end, uint32_t wire) noexcept nogil:
    """An integer, enum or bool field: any varint (protobuf keeps an int32's low 32 bits)."""
    cdef uint64_t value
    if wire != VARINT:
        return NULL
    if at < end and at[0] < 0x80:
        return at + 1
    return number(at, end, &value)


cdef inline const uint8_t* unknown(const uint8_t* at, const uint8_t* end, uint32_t wire) noexcept nogil:
    """A field of a number the message does not have, passed over by its wire type (a group is not)."""
    cdef uint64_t value
    cdef Py_ssize_t size
    if wire == VARINT:
        return number(at, end, &value)
    if wire == DELIMITED:
        at = length(at, end, &size)
        if at == NULL:
            return NULL
        return at + size
    if wire == FIXED64 or wire == FIXED32:
        size = 8 if wire == FIXED64 else 4
        return at + size if end - at >= size else NULL
    return NULL


cdef const uint8_t* line_item(const uint8_t* at, const uint8_t* end) noexcept nogil:
    """A LineItem, checked: sku, product id, category and name (1-4) strings, the rest varints."""
    cdef uint32_t key
    cdef const uint8_t* start
    cdef Py_ssize_t size
    while at < end:
        at = field_key(at, end, &key)
        if at == NULL:
            return NULL
        if key >> 3 <= 4:
            at = text(at, end, key & 7, &start, &size)
        elif key >> 3 <= 8:
            at = scalar(at, end, key & 7)
        else:
            at = unknown(at, end, key & 7)
        if at == NULL:
            return NULL
    return at


cdef enum:  # Transaction's fields that are not strings
    TRANSACTION_SCALARS = 1 << 3 | 1 << 4 | 1 << 5 | 1 << 11 | 1 << 13
    LINES = 8
    MEMBER_ID = 2


cdef const uint8_t* transaction(const uint8_t* at, const uint8_t* end, const uint8_t** member,
                                Py_ssize_t* member_size) noexcept nogil:
    """A Transaction, checked; its member id (the last given, or none) into `member`, `member_size`."""
    cdef uint32_t key, field
    cdef const uint8_t* start
    cdef Py_ssize_t size
    member[0], member_size[0] = at, 0
    while at < end:
        at = field_key(at, end, &key)
        if at == NULL:
            return NULL
        field = key >> 3
        if field == MEMBER_ID:
            at = text(at, end, key & 7, member, member_size)
        elif field == LINES:
            if key & 7 != DELIMITED:
                return NULL
            at = length(at, end, &size)
            if at == NULL or line_item(at, at + size) == NULL:
                return NULL
            at += size
        elif field > 15:
            at = unknown(at, end, key & 7)
        elif TRANSACTION_SCALARS >> field & 1:
            at = scalar(at, end, key & 7)
        else:
            at = text(at, end, key & 7, &start, &size)
        if at == NULL:
            return NULL
    return at


cdef uint32_t CRC_TABLE[256]


cdef void _crc_table() noexcept:
    cdef uint32_t n, c, k
    for n in range(256):
        c = n
        for k in range(8):
            c = (c >> 1) ^ 0xEDB88320U if c & 1 else c >> 1
        CRC_TABLE[n] = c


_crc_table()


cdef inline uint32_t crc_of(const uint8_t* data, Py_ssize_t size) noexcept nogil:
    """zlib's CRC-32 (the routing's hash, actors/routing.py), a byte at a time: member ids are short."""
    cdef uint32_t c = 0xFFFFFFFFU
    cdef Py_ssize_t i
    for i in range(size):
        c = CRC_TABLE[(c ^ data[i]) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFFU


def crc32(bytes data not None):
    """`zlib.crc32(data)`, as the reading computes it."""
    return crc_of(<const uint8_t*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))


cdef struct Entry:
    Py_ssize_t start, end  # the `transactions` entry (key, length, message) in the batch's bytes
    Py_ssize_t member, member_size  # its member id's UTF-8
    uint32_t crc  # of the member id


# start and end lead each Entry: `parts` hands the entries to `joined` as bounds, an Entry apart
cdef Py_ssize_t ENTRY_STRIDE = sizeof(Entry) // sizeof(Py_ssize_t)


cdef class BatchRead:
    """What `read_route` read of a batch: the same answers as actors/batch_wire.py `BatchRoute`."""
    cdef readonly str batch_id
    cdef readonly Py_ssize_t count
    cdef bytes data
    cdef Entry* entries
    cdef Py_ssize_t room

    def __dealloc__(self):
        free(self.entries)

    cdef int read(self, bytes data) except -2:
        """0, or -1 for bytes the pure reading must decide."""
        cdef const uint8_t* raw = <const uint8_t*>PyBytes_AS_STRING(data)
        cdef const uint8_t* at = raw
        cdef const uint8_t* end = raw + PyBytes_GET_SIZE(data)
        cdef const uint8_t* start
        cdef const uint8_t* member
        cdef const uint8_t* batch_id = raw
        cdef Py_ssize_t size, member_size, batch_id_size = 0
        cdef uint32_t key
        cdef Entry* entry
        self.data = data
        while at < end:
            start = at
            at = field_key(at, end, &key)
            if at == NULL:
                return -1
            if key == ENTRY_KEY:
                at = length(at, end, &size)
                if at == NULL or transaction(at, at + size, &member, &member_size) == NULL:
                    return -1
                at += size
                if self.count == self.room:
                    self.grow()
                entry = &self.entries[self.count]
                entry.start, entry.end = start - raw, at - raw
                entry.member, entry.member_size = member - raw, member_size
                entry.crc = crc_of(member, member_size)
                self.count += 1
            elif key >> 3 == 1:
                at = text(at, end, key & 7, &batch_id, &batch_id_size)
            elif key >> 3 == 2:  # transactions of another wire type
                return -1
            else:
                at = unknown(at, end, key & 7)
            if at == NULL:
                return -1
        self.batch_id = PyUnicode_DecodeUTF8(<const char*>batch_id, batch_id_size, NULL)
        return 0

    cdef void grow(self) except *:
        cdef Py_ssize_t room = self.room * 2 if self.room else max(16, PyBytes_GET_SIZE(self.data) // 128)
        cdef Entry* entries = <Entry*>realloc(self.entries, room * sizeof(Entry))
        if entries == NULL:
            raise MemoryError()
        self.entries, self.room = entries, room

    def member_ids(self):
        """Each transaction's member id, in order, made only as asked for (while a move holds writes)."""
        cdef Py_ssize_t i
        for i in range(self.count):
            yield PyUnicode_DecodeUTF8(PyBytes_AS_STRING(self.data) + self.entries[i].member,
                                       self.entries[i].member_size, NULL)

    def shards(self, layout):
        """Each shard's transactions by their index in the batch, in order, as `BatchRoute.shards`."""
        cdef object owners = layout.owners, virtual_shards = layout.virtual_shards, shard, last = None
        cdef Py_ssize_t i, size
        cdef dict indices = {}
        cdef list part = None
        if type(owners) is not list or type(virtual_shards) is not int or not 0 < virtual_shards <= len(owners):
            for i in range(self.count):  # a layout no folder has: Python's own arithmetic, as shards_of
                indices.setdefault(owners[self.entries[i].crc % virtual_shards], []).append(i)
            return indices
        size = virtual_shards
        for i in range(self.count):
            shard = <object>PyList_GET_ITEM(owners, self.entries[i].crc % size)
            if shard is not last:
                part = indices.get(shard)
                if part is None:
                    part = indices[shard] = []
                last = shard
            part.append(i)
        return indices

    def parts(self, dict indices):
        """Each shard's part as `BatchRoute.parts` cuts it: {shard: (its indices, their entries)}; a
        batch for one shard goes whole, as it came."""
        if len(indices) <= 1:
            return {shard: (part, self.data) for shard, part in indices.items()}
        return joined(PyBytes_AS_STRING(self.data), indices, <const Py_ssize_t*>self.entries, ENTRY_STRIDE,
                      self.count)


def read_route(bytes data not None):
    """What routing needs of a serialised TransactionBatch, as a `BatchRead`, or None when the pure
    reading must decide (see the module)."""
    cdef BatchRead read = BatchRead.__new__(BatchRead)
    return read if read.read(data) == 0 else None
