# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""A commit's records (members, ledger entries, index records) as MessagePack written by compiled
code: the bytes `storage.codecs.encode` (msgspec) gives, which stay the specification, with the
commonest values written without a call.

Only values of the exact types msgspec sees in a stored record are written here, by msgspec's own
rules (msgspec's _core.c: `mpack_encode_long`, `mpack_encode_cstr`, `mpack_encode_array_header`,
`mpack_encode_map_header`, `mpack_encode_list`, `mpack_encode_dict`, `mpack_encode_struct_array`):
`int`, `str`, `float`, `bool`, `None`, `list`, `tuple` and `dict` of those, and the array-like
Structs of KNOWN, each read at its slots' offsets found at import. Anything else met in a field
of the record (a subclass, another type, an int past 64 bits, a string that is not UTF-8, nesting
deeper than `DEPTH`) makes this code give that whole field back to msgspec, whose bytes for it
are spliced in: a MessagePack value is self-delimiting, and msgspec encodes a field as it encodes
the same value alone. A record of any other class is msgspec's altogether."""

from libc.stdint cimport uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.object cimport PyObject, PyTypeObject, Py_TYPE
from storage.c_slots cimport slot_at, slot_offset

import msgspec

from engine.ledger import LedgerEntry
from engine.members import CouponInstance, EventCounts, Held, Lot, Member, Profile
from engine.transactions import TxnRecord
from engine.why import Why
from storage.codecs import encode

__all__ = ["KNOWN", "RecordEncoder", "encoded", "problems"]

cdef extern from "Python.h":
    # Borrowed references throughout: Python code runs here only when an error is made (a string
    # that is not UTF-8), through a collection's finalizers; put_fields holds the field it hands on.
    const char* utf8_of "PyUnicode_AsUTF8AndSize" (PyObject*, Py_ssize_t*)
    bint is_ascii "PyUnicode_IS_COMPACT_ASCII" (PyObject*)
    void* str_data "PyUnicode_DATA" (PyObject*)
    Py_ssize_t str_length "PyUnicode_GET_LENGTH" (PyObject*)
    Py_ssize_t list_size "PyList_GET_SIZE" (PyObject*)
    PyObject* list_item "PyList_GET_ITEM" (PyObject*, Py_ssize_t)
    Py_ssize_t tuple_size "PyTuple_GET_SIZE" (PyObject*)
    PyObject* tuple_item "PyTuple_GET_ITEM" (PyObject*, Py_ssize_t)
    Py_ssize_t dict_size "PyDict_GET_SIZE" (PyObject*)
    bint dict_next "PyDict_Next" (PyObject*, Py_ssize_t*, PyObject**, PyObject**)
    double float_value "PyFloat_AS_DOUBLE" (PyObject*)
    void PyErr_Clear()
    PyTypeObject PyLong_Type
    PyTypeObject PyUnicode_Type
    PyTypeObject PyFloat_Type
    PyTypeObject PyList_Type
    PyTypeObject PyTuple_Type
    PyTypeObject PyDict_Type
    PyTypeObject PyBool_Type
    PyObject* Py_None
    PyObject* Py_True

cdef extern from *:
    """
    static inline void patron_store16(char *at, uint16_t value) {
        at[0] = (char)(value >> 8); at[1] = (char)value;
    }
    static inline void patron_store32(char *at, uint32_t value) {
        patron_store16(at, (uint16_t)(value >> 16)); patron_store16(at + 2, (uint16_t)value);
    }
    static inline void patron_store64(char *at, uint64_t value) {
        patron_store32(at, (uint32_t)(value >> 32)); patron_store32(at + 4, (uint32_t)value);
    }

    /* An int as msgspec's mpack_encode_long writes it (the smallest form, unsigned for any value
       >= 0), at `at`, which has room for 9 bytes: the bytes written; 0 for an int below -2**63 or
       above 2**64 - 1 (msgspec refuses it: its error is msgspec's to raise); -1 with an exception. */
    static inline Py_ssize_t patron_put_int(char *at, PyObject *v) {
        int negative;
        unsigned long long magnitude;
    #if PY_VERSION_HEX < 0x030C0000
        Py_ssize_t size = Py_SIZE(v);
        if (size == 0 || size == 1 || size == -1) {  /* one 30-bit digit: most ints stored */
            negative = size < 0;
            magnitude = size == 0 ? 0 : ((PyLongObject *)v)->ob_digit[0];
            if (!negative && magnitude < 128) {
                at[0] = (char)magnitude;
                return 1;
            }
        } else
    #endif
        {
            int overflow;
            long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (overflow == 0) {
                if (x == -1 && PyErr_Occurred()) return -1;
                negative = x < 0;
                magnitude = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
            } else if (overflow < 0) {
                return 0;
            } else {
                magnitude = PyLong_AsUnsignedLongLong(v);
                if (magnitude == (unsigned long long)-1 && PyErr_Occurred()) {
                    PyErr_Clear();
                    return 0;
                }
                negative = 0;
            }
        }
        if (negative) {
            int64_t x = (int64_t)(0ULL - magnitude);
            if (x >= -32) { at[0] = (char)(x & 0xff); return 1; }
            if (x >= -(1 << 7)) { at[0] = (char)0xd0; at[1] = (char)(x & 0xff); return 2; }
            if (x >= -(1 << 15)) { at[0] = (char)0xd1; patron_store16(at + 1, (uint16_t)(int16_t)x); return 3; }
            if (x >= -(1LL << 31)) { at[0] = (char)0xd2; patron_store32(at + 1, (uint32_t)(int32_t)x); return 5; }
            at[0] = (char)0xd3; patron_store64(at + 1, (uint64_t)x); return 9;
        }
        if (magnitude < (1 << 7)) { at[0] = (char)magnitude; return 1; }
        if (magnitude < (1 << 8)) { at[0] = (char)0xcc; at[1] = (char)magnitude; return 2; }
        if (magnitude < (1 << 16)) { at[0] = (char)0xcd; patron_store16(at + 1, (uint16_t)magnitude); return 3; }
        if (magnitude < (1ULL << 32)) { at[0] = (char)0xce; patron_store32(at + 1, (uint32_t)magnitude); return 5; }
        at[0] = (char)0xcf; patron_store64(at + 1, magnitude); return 9;
    }

    /* An array's (0x90, 0xdc) or a map's (0x80, 0xde) header, or a str's (0xa0, 0xd9) for
       sizes below 2**32, as mpack_encode_array_header, _map_header and _cstr write them, at `at`
       (room for 5 bytes): the bytes written. A str's small form holds sizes below 32 and has a
       one-byte form next; an array's or a map's small form holds sizes below 16 and has none. */
    static inline Py_ssize_t patron_put_head(char *at, Py_ssize_t size, int str, unsigned char small,
                                             unsigned char wide) {
        if (size < (str ? 32 : 16)) { at[0] = (char)(small | size); return 1; }
        if (str && size < (1 << 8)) { at[0] = (char)wide; at[1] = (char)size; return 2; }
        if (size < (1 << 16)) { at[0] = (char)(wide + str); patron_store16(at + 1, (uint16_t)size); return 3; }
        at[0] = (char)(wide + str + 1); patron_store32(at + 1, (uint32_t)size); return 5;
    }

    /* An exact int of one 30-bit digit (most ints stored) as patron_put_int writes it, at `at`
       (room for 5 bytes): the bytes written; 0, writing nothing, for any other object. */
    static inline Py_ssize_t patron_put_small_int(char *at, PyObject *v) {
    #if PY_VERSION_HEX < 0x030C0000
        if (Py_TYPE(v) != &PyLong_Type) return 0;
        Py_ssize_t size = Py_SIZE(v);
        uint32_t digit;
        if (size == 0) { at[0] = 0; return 1; }
        if (size != 1 && size != -1) return 0;
        digit = ((PyLongObject *)v)->ob_digit[0];
        if (size == 1) {
            if (digit < (1 << 7)) { at[0] = (char)digit; return 1; }
            if (digit < (1 << 8)) { at[0] = (char)0xcc; at[1] = (char)digit; return 2; }
            if (digit < (1 << 16)) { at[0] = (char)0xcd; patron_store16(at + 1, (uint16_t)digit); return 3; }
            at[0] = (char)0xce; patron_store32(at + 1, digit); return 5;
        }
        int32_t x = -(int32_t)digit;
        if (x >= -32) { at[0] = (char)(x & 0xff); return 1; }
        if (x >= -(1 << 7)) { at[0] = (char)0xd0; at[1] = (char)(x & 0xff); return 2; }
        if (x >= -(1 << 15)) { at[0] = (char)0xd1; patron_store16(at + 1, (uint16_t)(int16_t)x); return 3; }
        at[0] = (char)0xd2; patron_store32(at + 1, (uint32_t)x); return 5;
    #else
        return 0;
    #endif
    }

    #if defined(__GNUC__)
    #define PATRON_ALWAYS_INLINE inline __attribute__((always_inline))
    #else
    #define PATRON_ALWAYS_INLINE inline
    #endif

    /* A member's commonest values written in their caller's loop, with no call: an int of one
       digit (patron_put_small_int), an ASCII str of under 32 characters (a fixstr, its header
       then its bytes), a bool, None, an empty list, tuple or dict (most of a member's containers),
       at `at` with `room` bytes free: the bytes written; 0, writing nothing, for any other value
       or when the room is short (the caller's general path then writes it). */
    static PATRON_ALWAYS_INLINE Py_ssize_t patron_put_plain(char *at, Py_ssize_t room, PyObject *v) {
        PyTypeObject *type = Py_TYPE(v);
        if (room < 33) return 0;
        if (type == &PyLong_Type) return patron_put_small_int(at, v);
        if (type == &PyUnicode_Type) {
            if (!PyUnicode_IS_COMPACT_ASCII(v)) return 0;
            Py_ssize_t size = PyUnicode_GET_LENGTH(v);
            if (size >= 32) return 0;
            at[0] = (char)(0xa0 | size);
            memcpy(at + 1, PyUnicode_DATA(v), size);
            return 1 + size;
        }
        if (v == Py_None) { at[0] = (char)0xc0; return 1; }
        if (type == &PyBool_Type) { at[0] = (char)(v == Py_True ? 0xc3 : 0xc2); return 1; }
        if ((type == &PyList_Type && PyList_GET_SIZE(v) == 0) || (type == &PyTuple_Type && PyTuple_GET_SIZE(v) == 0)) {
            at[0] = (char)0x90;
            return 1;
        }
        if (type == &PyDict_Type && PyDict_GET_SIZE(v) == 0) { at[0] = (char)0x80; return 1; }
        return 0;
    }

    /* patron_put_plain at `data + *used`, moving `*used` past what it wrote: 1 if it wrote. */
    static PATRON_ALWAYS_INLINE int patron_put_plain_into(char *data, Py_ssize_t *used, Py_ssize_t capacity,
                                                          PyObject *v) {
        Py_ssize_t written = patron_put_plain(data + *used, capacity - *used, v);
        *used += written;
        return written != 0;
    }

    /* Where a list's items and a dict's table are, to be fetched ahead (never read through here). */
    static inline const void *patron_list_items(PyObject *v) { return ((PyListObject *)v)->ob_item; }
    static inline const void *patron_dict_table(PyObject *v) { return ((PyDictObject *)v)->ma_keys; }

    #if defined(__GNUC__)
    #define patron_prefetch(address) __builtin_prefetch((address), 0, 3)
    #else
    #define patron_prefetch(address) ((void)(address))
    #endif

    static inline uint64_t patron_float_bits(double value) {  /* mpack_encode_float */
        uint64_t bits;
        memcpy(&bits, &value, sizeof bits);
        return bits;
    }
    """
    Py_ssize_t put_int_at "patron_put_int" (char* at, PyObject* value) except? -1
    bint put_plain_into "patron_put_plain_into" (char* data, Py_ssize_t* used, Py_ssize_t capacity,
                                               PyObject* value) noexcept
    Py_ssize_t put_head_at "patron_put_head" (char* at, Py_ssize_t size, int is_str, unsigned char small,
                                             unsigned char wide) noexcept
    void store64 "patron_store64" (char* at, uint64_t value) noexcept
    uint64_t float_bits "patron_float_bits" (double value) noexcept
    void prefetch "patron_prefetch" (const void* address) noexcept
    const void* list_items "patron_list_items" (PyObject* value) noexcept
    const void* dict_table "patron_dict_table" (PyObject* value) noexcept

cdef enum:
    DEPTH = 32  # deeper values go to msgspec, which decides (its recursion limit, a cycle's error)
    KNOWN_MAX = 16
    FIELDS_MAX = 64
    NOT_MINE = 0  # a put_ function's answer: nothing written that counts (the caller rewinds)
    WRITTEN = 1
    BIGGEST_HEAD = 9  # an int's, at most; an array's, a map's or a str's header at most 5
    POSITION = 8  # a big-endian position before a stored member or ledger entry (row_packer.pyx)
    CACHE_LINE = 64
    CONTENTS_FETCHED = 4  # at most so many of a tuple's items fetched ahead: a member's are mostly short


cdef struct Layout:
    PyTypeObject* type
    Py_ssize_t count
    Py_ssize_t offsets[FIELDS_MAX]


cdef Layout layouts[KNOWN_MAX]
cdef Py_ssize_t layout_count = 0
cdef object _encode = encode
cdef dict _problems = {}


cdef inline Py_ssize_t layout_of(PyTypeObject* kind) noexcept:
    cdef Py_ssize_t i
    for i in range(layout_count):
        if layouts[i].type == kind:
            return i
    return -1


cdef int grow(Out* out, Py_ssize_t size) except -1:
    cdef Py_ssize_t wanted = max(out.used + size, 2 * out.capacity)
    cdef char* grown = <char*>realloc(out.data, wanted)
    if grown == NULL:
        raise MemoryError()
    out.data, out.capacity = grown, wanted
    return 0


cdef inline int room(Out* out, Py_ssize_t size) except -1:
    if out.used + size > out.capacity:
        return grow(out, size)
    return 0


cdef inline int put_head(Out* out, Py_ssize_t size, unsigned char small, unsigned char wide) except -1:
    if size >= (1LL << 32):
        return NOT_MINE  # msgspec's EncodeError
    room(out, BIGGEST_HEAD)
    out.used += put_head_at(out.data + out.used, size, 0, small, wide)
    return WRITTEN


cdef inline int put_int(Out* out, PyObject* value) except -1:
    cdef Py_ssize_t written
    room(out, BIGGEST_HEAD)
    written = put_int_at(out.data + out.used, value)
    out.used += written
    return WRITTEN if written else NOT_MINE


cdef inline int put_str(Out* out, PyObject* value) except -1:
    """`mpack_encode_cstr`: the UTF-8 bytes after the smallest header."""
    cdef Py_ssize_t size
    cdef const char* text
    if is_ascii(value):
        text, size = <const char*>str_data(value), str_length(value)
    else:
        text = utf8_of(value, &size)
        if text == NULL:
            PyErr_Clear()
            return NOT_MINE  # not UTF-8 (a lone surrogate): msgspec's error
    if size >= (1LL << 32):
        return NOT_MINE
    room(out, BIGGEST_HEAD + size)
    out.used += put_head_at(out.data + out.used, size, 1, 0xa0, 0xd9)
    memcpy(out.data + out.used, text, size)
    out.used += size
    return WRITTEN


cdef int put_value(Out* out, PyObject* value) except -1:
    """`mpack_encode_inline` for the exact types a stored member holds; NOT_MINE for others."""
    cdef PyTypeObject* kind = value.ob_type
    cdef Py_ssize_t known
    cdef int written
    if kind == &PyLong_Type:
        return put_int(out, value)
    if kind == &PyUnicode_Type:
        return put_str(out, value)
    if value == Py_None or kind == &PyBool_Type:
        room(out, 1)
        out.data[out.used] = <char>(0xc0 if value == Py_None else 0xc3 if value == Py_True else 0xc2)
        out.used += 1
        return WRITTEN
    if kind == &PyFloat_Type:
        room(out, BIGGEST_HEAD)
        out.data[out.used] = <char>0xcb
        store64(out.data + out.used + 1, float_bits(float_value(value)))
        out.used += 9
        return WRITTEN
    if out.depth >= DEPTH:
        return NOT_MINE
    out.depth += 1
    if kind == &PyDict_Type:
        written = put_dict(out, value)
    elif kind == &PyList_Type or kind == &PyTuple_Type:
        written = put_items(out, value, kind == &PyList_Type)
    else:
        known = layout_of(kind)
        written = put_fields(out, value, known, False) if known >= 0 else NOT_MINE
    out.depth -= 1
    return written


cdef int put_items(Out* out, PyObject* items, bint is_list) except -1:
    """`mpack_encode_list`, `mpack_encode_tuple`."""
    cdef Py_ssize_t i, size = list_size(items) if is_list else tuple_size(items)
    if put_head(out, size, 0x90, 0xdc) == NOT_MINE:
        return NOT_MINE
    cdef PyObject* item
    for i in range(size):
        item = list_item(items, i) if is_list else tuple_item(items, i)
        if not put_plain_into(out.data, &out.used, out.capacity, item) and put_value(out, item) == NOT_MINE:
            return NOT_MINE
    return WRITTEN


cdef int put_dict(Out* out, PyObject* pairs) except -1:
    """`mpack_encode_dict`, in the dict's order. A key of an exact type is written as a value is
    (`mpack_encode_dict_key_inline` differs only for a `str` subclass, which is not this code's)."""
    cdef Py_ssize_t at = 0
    cdef PyObject* key
    cdef PyObject* value
    if put_head(out, dict_size(pairs), 0x80, 0xde) == NOT_MINE:
        return NOT_MINE
    while dict_next(pairs, &at, &key, &value):
        if not put_plain_into(out.data, &out.used, out.capacity, key) and put_value(out, key) == NOT_MINE:
            return NOT_MINE
        if not put_plain_into(out.data, &out.used, out.capacity, value) and put_value(out, value) == NOT_MINE:
            return NOT_MINE
    return WRITTEN


cdef int put_fields(Out* out, PyObject* record, Py_ssize_t known, bint splice) except -1:
    """A known Struct as msgspec writes an array-like one (`mpack_encode_struct_array`): its
    fields in order. With `splice`, a field this code does not write is msgspec's; without, the
    Struct is not this code's."""
    cdef Layout* layout = &layouts[known]
    cdef Py_ssize_t i, mark
    cdef PyObject* field
    cdef object held
    put_head(out, layout.count, 0x90, 0xdc)
    for i in range(layout.count):
        field = slot_at(record, layout.offsets[i])
        if field == NULL:
            return NOT_MINE  # unset: msgspec's AttributeError
        if put_plain_into(out.data, &out.used, out.capacity, field):
            continue
        # Held by a reference of its own until spliced: an error put_value meets (a string that is
        # not UTF-8) allocates, a collection may run a finalizer that replaces this field, and the
        # slot's borrowed pointer would then be freed memory (Python 3.11 collects inside calls).
        held = <object>field
        mark = out.used
        if put_value(out, <PyObject*>held) == NOT_MINE:
            if not splice:
                return NOT_MINE
            out.used = mark
            put_spliced(out, held)
    return WRITTEN


cdef int put_spliced(Out* out, object value) except -1:
    cdef bytes encoded = _encode(value)
    cdef Py_ssize_t size = PyBytes_GET_SIZE(encoded)
    room(out, size)
    memcpy(out.data + out.used, PyBytes_AS_STRING(encoded), size)
    out.used += size
    return WRITTEN


cdef class RecordEncoder:
    """Records written into one C buffer kept from record to record, each copied out at its size.
    One per call of storage/row_packer.pyx's functions, not shared between threads."""

    def __cinit__(self):
        self.out.capacity = 1024
        self.out.data = <char*>malloc(self.out.capacity)
        if self.out.data == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.out.data)

    def encode(self, record):
        """`encode(record)`, asked from Python (tests, benchmarks)."""
        return self.encoded(record)

    cdef bytes encoded(self, object record):
        """`encode(record)`."""
        self.write(record, 0)
        return PyBytes_FromStringAndSize(self.out.data, self.out.used)

    cdef bytes positioned(self, unsigned long long position, object record):
        """storage/codecs.py `with_position(position, encode(record))`: the position's 8 bytes,
        big-endian, then the record."""
        self.write(record, POSITION)
        store64(self.out.data, position)
        return PyBytes_FromStringAndSize(self.out.data, self.out.used)

    cdef void fetch_record(self, PyObject* record, Py_ssize_t size) noexcept:
        """Ask the CPU for the record's own memory (its slots: `size` bytes, its class's) ahead of
        its encoding; the last byte too, for a record that does not start at a cache line's start.
        Borrowed, and not read: a read (its type, its reference count) of a record out of the
        caches would wait for its memory here, which is what asking ahead is for."""
        cdef char* at = <char*>record
        cdef Py_ssize_t offset = 0
        while offset < size:  # a C loop: `range` with an enum step is a Python range in Cython
            prefetch(at + offset)
            offset += CACHE_LINE
        prefetch(at + size - 1)

    cdef void fetch_fields(self, PyObject* record) noexcept:
        """Ask the CPU for the head of each field's value (its type, and often an int's digit or
        a short str's first characters) ahead of the record's encoding; the record's slots should
        be in the cache by now (`fetch_record` a few records earlier). A class not in KNOWN is left
        alone."""
        cdef Py_ssize_t i, known = layout_of(record.ob_type)
        cdef PyObject* field
        if known < 0:
            return
        for i in range(layouts[known].count):
            field = slot_at(record, layouts[known].offsets[i])
            if field != NULL:
                prefetch(field)

    cdef void fetch_contents(self, PyObject* record) noexcept:
        """What the record's containers hold, asked for as `fetch_fields` asks for the fields: a
        dict's table, a list's items, a tuple's first items, a known Struct's fields' heads (their
        heads should be in the cache by now: `fetch_fields` a few records earlier)."""
        cdef Py_ssize_t i, j, inner, known = layout_of(record.ob_type)
        cdef PyObject* field
        cdef PyTypeObject* kind
        cdef const char* table
        if known < 0:
            return
        for i in range(layouts[known].count):
            field = slot_at(record, layouts[known].offsets[i])
            if field == NULL:
                continue
            kind = field.ob_type
            if kind == &PyLong_Type or kind == &PyUnicode_Type:
                continue  # most fields: nothing inside to fetch, and no layout to look for
            if kind == &PyDict_Type:
                if dict_size(field):
                    table = <const char*>dict_table(field)
                    prefetch(table)
                    prefetch(table + CACHE_LINE)
                    prefetch(table + 2 * CACHE_LINE)
            elif kind == &PyList_Type:
                if list_size(field):
                    prefetch(list_items(field))
            elif kind == &PyTuple_Type:
                for j in range(min(tuple_size(field), CONTENTS_FETCHED)):
                    prefetch(tuple_item(field, j))
            else:
                inner = layout_of(kind)
                if inner >= 0:
                    for j in range(layouts[inner].count):
                        prefetch(slot_at(field, layouts[inner].offsets[j]))

    cdef int write(self, object record, Py_ssize_t start) except -1:
        """The record's bytes after `start` bytes of the buffer (the capacity is never below 1,024)."""
        cdef Py_ssize_t known = layout_of(Py_TYPE(record))
        self.out.used = start
        self.out.depth = 0
        if known >= 0 and put_fields(&self.out, <PyObject*>record, known, True) == WRITTEN:
            return 0
        self.out.used = start  # another class, or a field unset: msgspec's bytes, or its error
        put_spliced(&self.out, record)
        return 0


_registered = []
"""The classes whose layouts are in `layouts`, kept alive: a layout is found by the type's address,
which a freed class would leave to the next type made there."""


def _register(cls):
    """Take `cls`'s layout into `layouts` and say "", or say why records of `cls` cannot be
    written here (they are then msgspec's): found by asking the class and msgspec, not assumed."""
    global layout_count
    if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
        return "not a msgspec Struct"
    if cls in _registered:
        return "already registered"
    config, fields = cls.__struct_config__, cls.__struct_fields__
    if not config.array_like or config.tag is not None:
        return "not an untagged array-like Struct"
    if len(fields) > FIELDS_MAX or layout_count == KNOWN_MAX:
        return "more fields or records than compiled for"
    if config.omit_defaults and not _DEFAULTS_WRITTEN:
        return "msgspec leaves its default fields out"  # this code writes every field
    cdef Layout* layout = &layouts[layout_count]
    for i, name in enumerate(fields):
        try:
            layout.offsets[i] = slot_offset(cls, name, "storage.record_encoder")
        except ImportError as refused:
            return str(refused)
    layout.type, layout.count = <PyTypeObject*>cls, len(fields)
    layout_count += 1
    _registered.append(cls)
    return ""


class _Probe(msgspec.Struct, array_like=True, omit_defaults=True):
    kept: int = 0


_DEFAULTS_WRITTEN = _encode(_Probe()) == b"\x91\x00"
"""msgspec writes every field of an array-like Struct, `omit_defaults` or not (0.22 does; if a
version left trailing defaults out, such classes would be its to write)."""

KNOWN = (Member, Lot, EventCounts, CouponInstance, Profile, Held, LedgerEntry, Why, TxnRecord)
"""The records written here: a member, its parts, a ledger entry and its why, an index record."""
for _record in KNOWN:
    _problem = _register(_record)
    if _problem:
        _problems[_record.__qualname__] = _problem


def problems():
    """Each of KNOWN whose records are msgspec's in this build, and why; empty when none."""
    return dict(_problems)


def encoded(record):
    """`encode(record)`, written here for the records of KNOWN."""
    return RecordEncoder().encoded(record)
