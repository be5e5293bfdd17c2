# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""A shard's part (a serialised TransactionBatch) read from its bytes straight into engine records,
compiled: what `actors/wire.py` `transactions_from` gives for protobuf's parse of the same bytes,
without a protobuf message or a field looked up by name in between.

The pure reader (actors/batch_wire.py `read_part_pure`) is the specification. This one reads what
protobuf's encoders write (fields in any order, unknown fields of the four plain wire types, a
scalar field given twice: the last wins) and answers None for anything else (a group, a field of a
known number with another wire type, a bad varint, a length past the end, a string that is not
UTF-8), so that the pure reader decides those parts exactly as protobuf does."""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from cpython.list cimport PyList_New
from libc.string cimport memcmp, memcpy
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF

from storage.c_slots cimport put_slot, slot_offset


cdef extern from "Python.h":
    bint PyUnicode_IS_COMPACT_ASCII(object)
    void* PyUnicode_DATA(object)
    object PyUnicode_New(Py_ssize_t size, uint32_t maxchar)

cdef extern from *:
    """
    /* Zeroed as msgspec zeroes a Struct's slots: a field object that fails to be made after
       this (MemoryError) leaves the dealloc nothing stray to release. */
    static PyObject* patron_new_record(PyObject* cls) {
        PyTypeObject* t = (PyTypeObject*)cls;
        PyObject* o = (PyObject*)PyObject_New(PyObject, t);
        if (o != NULL) memset((char*)o + sizeof(PyObject), 0, t->tp_basicsize - sizeof(PyObject));
        return o;
    }
    """
    object new_record "patron_new_record"(object cls)

cdef extern from "Python.h":
    void list_put "PyList_SET_ITEM"(object, Py_ssize_t, PyObject*)

import sys

from actors.wire import KIND_WORDS, STATUS_WORDS
from engine.transactions import LineItem, Transaction

__all__ = ["byte_order_problem", "read_part", "struct_slots"]


def byte_order_problem(str order):
    """Why this reader cannot run on a machine of this byte order (`sys.byteorder`), or "": the
    word table (`word`) reads a word's first bytes as a little-endian integer and keeps a short
    word's low bytes, which on a big-endian machine are bytes after it, so one word would be
    taken for another without a sign."""
    if order == "little":
        return ""
    return (f"actors.part_reader: this machine is {order}-endian and the reader's word table assumes a "
            f"little-endian one; the pure reader reads every part")


_MACHINE = byte_order_problem(sys.byteorder)
if _MACHINE:  # refused at import: batch_wire.py then reads with the pure reader and every start says why
    raise ImportError(_MACHINE)

cdef object _Transaction = Transaction
cdef object _LineItem = LineItem
_HAS_GC = 1 << 14  # Py_TPFLAGS_HAVE_GC


cdef int find_slots(object cls, tuple fields, Py_ssize_t* offsets) except -1:
    """Where each field of `cls`, in the order of its constructor, lives in a record, for records
    built here as msgspec's constructor builds them from positional arguments (allocated and
    zeroed as msgspec allocates a Struct, then each slot set): only for a
    Struct of exactly these fields and nothing else (no `__dict__`, no weak references), not
    tracked by the collector and with no `__post_init__`. Any other raises ImportError at import, and the pure
    reader reads every part (a start says so)."""
    if (cls.__struct_fields__ != fields or cls.__flags__ & _HAS_GC or hasattr(cls, "__post_init__")
            or getattr(cls, "__dictoffset__", 0) or getattr(cls, "__weakrefoffset__", 0)
            or cls.__basicsize__ != object.__basicsize__ + len(fields) * sizeof(PyObject*) or cls.__itemsize__):
        raise ImportError(f"actors.part_reader: {cls.__name__} is not the Struct this reader builds; "
                          f"rebuild after updating the reader")
    for at, name in enumerate(fields):
        offsets[at] = slot_offset(cls, name, "actors.part_reader")
    return 0


def struct_slots(object cls, tuple fields):
    """`find_slots` for the tests: the offsets, or the ImportError a changed Struct raises."""
    cdef Py_ssize_t offsets[16]
    find_slots(cls, fields[:16], offsets)
    return [offsets[at] for at in range(min(len(fields), 16))]


cdef Py_ssize_t _LINE_AT[8]
cdef Py_ssize_t _TXN_AT[15]
find_slots(_LineItem, ("sku", "product_id", "category", "name", "paid_minor", "quantity", "promotional",
                       "member_discounted"), _LINE_AT)
find_slots(_Transaction, ("txn_id", "member_id", "occurred_at_ms", "kind", "status", "store_id", "channel", "lines",
                          "refund_of", "event_type", "amount_minor", "note", "points", "coupon_id", "coupon_code"),
           _TXN_AT)
cdef object _EMPTY = ""
cdef tuple _KIND_WORDS = tuple(KIND_WORDS.get(n, "unspecified") for n in range(max(KIND_WORDS) + 1))
cdef tuple _STATUS_WORDS = tuple(STATUS_WORDS.get(n, "unknown") for n in range(max(STATUS_WORDS) + 1))

cdef enum:  # wire types
    VARINT = 0
    FIXED64 = 1
    DELIMITED = 2
    FIXED32 = 5


cdef struct Cursor:
    const uint8_t* at
    const uint8_t* end
    const uint8_t* limit  # the end of the whole part: bytes up to it may be read ahead
    bint unusual  # bytes this reader leaves to protobuf (the pure reader)


cdef inline void unusual(Cursor* c) noexcept:
    """Stop reading here: the part goes to the pure reader. Every step after reads nothing
    (the cursor is at its end), so that no C call needs an exception checked."""
    c.unusual = True
    c.at = c.end


cdef uint64_t long_varint(Cursor* c) noexcept:
    """A varint as protobuf reads it: at most 10 bytes; the tenth may only hold the top bit."""
    cdef uint64_t value = 0, byte
    cdef int shift = 0
    while c.at < c.end:
        byte = c.at[0]
        c.at += 1
        if shift == 63 and byte > 1:
            break
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value
        shift += 7
        if shift > 63:
            break
    unusual(c)
    return 0


cdef inline uint64_t varint(Cursor* c) noexcept:
    """A varint: one or two bytes nearly always (a quantity, a flag, an amount in cents)."""
    cdef uint64_t value
    if c.at < c.end and c.at[0] < 0x80:
        value = c.at[0]
        c.at += 1
        return value
    if c.end - c.at >= 2 and c.at[1] < 0x80:
        value = (c.at[0] & 0x7F) | (<uint64_t>c.at[1] << 7)
        c.at += 2
        return value
    return long_varint(c)


cdef uint64_t long_key(Cursor* c) noexcept:
    """A key of more than one byte; one padded, past 5 bytes or past 32 bits protobuf refuses."""
    cdef const uint8_t* start = c.at
    cdef uint64_t value = long_varint(c)
    if c.at - start > 5 or value > 0xFFFFFFFFULL or value < 0x80:
        unusual(c)
        return 0
    return value


cdef inline uint32_t field(Cursor* c, uint32_t* wire) noexcept:
    """The next field's number (0 when unusual), its wire type into `wire`: a key (number << 3 |
    wire type) of one byte nearly always; a number of 0 protobuf refuses. Only where a byte is left."""
    cdef uint64_t k = c.at[0]
    if k < 0x80:
        c.at += 1
    else:
        k = long_key(c)
    if k >> 3 == 0:
        unusual(c)
    wire[0] = k & 7
    return <uint32_t>(k >> 3)


cdef inline Py_ssize_t length(Cursor* c, uint32_t wire) noexcept:
    """A length-delimited field's size, checked against what is left (0 when unusual): a known
    field written with another wire type is protobuf's call, not ours."""
    cdef uint64_t size
    cdef const uint8_t* start = c.at
    if wire != DELIMITED:
        unusual(c)
        return 0
    if c.at < c.end and c.at[0] < 0x80:
        size = c.at[0]
        c.at += 1
    else:
        size = long_varint(c)
    if size > <uint64_t>(c.end - c.at) or c.at - start > 5:  # protobuf reads a size in 5 bytes at most
        unusual(c)
        return 0
    return <Py_ssize_t>size


cdef inline uint64_t number(Cursor* c, uint32_t wire) noexcept:
    if wire != VARINT:
        unusual(c)
        return 0
    return varint(c)


cdef inline bint is_ascii(const uint8_t* start, Py_ssize_t size) noexcept:
    cdef uint64_t eight, seen = 0
    cdef Py_ssize_t at = 0
    while at + 8 <= size:
        memcpy(&eight, start + at, 8)
        seen |= eight
        at += 8
    while at < size:
        seen |= start[at]
        at += 1
    return (seen & 0x8080808080808080ULL) == 0


cdef inline str ascii_text(const uint8_t* start, Py_ssize_t size):
    """ASCII bytes into a new str, as UTF-8's decoding makes it."""
    cdef object made = PyUnicode_New(size, 127)
    memcpy(PyUnicode_DATA(made), start, size)
    return <str>made


cdef str decoded(Cursor* c, const uint8_t* start, Py_ssize_t size):
    """The str of `size` bytes of UTF-8: ASCII copied into a new str as protobuf's UTF-8 decoding
    makes it; anything else decoded, and not UTF-8 unusual."""
    if size == 0:
        return _EMPTY
    if is_ascii(start, size):
        return ascii_text(start, size)
    try:
        return PyUnicode_DecodeUTF8(<const char*>start, size, NULL)
    except UnicodeDecodeError:
        unusual(c)
        return _EMPTY


cdef inline str text(Cursor* c, uint32_t wire):
    """A string that is new nearly every time (an id, a note)."""
    cdef Py_ssize_t size = length(c, wire)
    cdef const uint8_t* start = c.at
    c.at += size
    return decoded(c, start, size)


cdef enum:
    WORD_BITS = 16
    WORDS = 1 << WORD_BITS  # slots, in pairs
    LONGEST_WORD = 40


cdef struct Word:
    uint64_t head  # the first 8 bytes (fewer: zeros after)
    uint64_t tail  # the last 8 bytes (none: 0)
    Py_ssize_t size
    PyObject* text  # an ASCII str of these bytes, held for good; NULL: none yet


cdef Word _words[WORDS]


cdef inline bint same(Word* known, const uint8_t* start, Py_ssize_t size, uint64_t head, uint64_t tail) noexcept:
    """Whether `known` holds these bytes (an empty slot's size is 0: never)."""
    return (known.size == size and known.head == head and known.tail == tail
            and (size <= 16 or memcmp(<const uint8_t*>PyUnicode_DATA(<object>known.text) + 8, start + 8,
                                      size - 16) == 0))


cdef inline str word(Cursor* c, uint32_t wire):
    """A string that repeats across transactions (a sku, a category, a store, a channel): the
    same str as the last time these bytes came, when they are ASCII and still remembered, so
    that neither it nor its hash is made again. A table of WORDS slots in pairs by a hash of the
    size and the first and last 8 bytes, the two newest words of each pair, found by their size,
    first and last bytes (and the bytes between, past 16)."""
    cdef Py_ssize_t size = length(c, wire)
    cdef const uint8_t* start = c.at
    cdef uint64_t head = 0, tail = 0
    cdef Word* pair
    cdef object found
    if size == 0 or size > LONGEST_WORD:
        c.at += size
        return decoded(c, start, size)
    if size >= 8:
        memcpy(&head, start, 8)
        memcpy(&tail, start + size - 8, 8)
    elif c.limit - start >= 8:  # read 8 bytes of the part, keep `size` of them
        memcpy(&head, start, 8)
        head &= (1ULL << (8 * size)) - 1
    else:
        memcpy(&head, start, size)
    c.at += size
    pair = &_words[(((head * 0x9E3779B97F4A7C15ULL) ^ (tail * 0xC2B2AE3D27D4EB4FULL) ^ <uint64_t>size)
                    >> (64 - WORD_BITS)) & ~1]
    if same(pair, start, size, head, tail):
        return <str>pair.text
    if same(pair + 1, start, size, head, tail):
        return <str>pair[1].text
    if not is_ascii(start, size):  # never remembered (nor, when not UTF-8, read here)
        return decoded(c, start, size)
    found = ascii_text(start, size)
    Py_XDECREF(pair[1].text)  # the newer word first, the older second; the second's goes
    pair[1] = pair[0]
    Py_INCREF(found)
    pair[0].head = head
    pair[0].tail = tail
    pair[0].size = size
    pair[0].text = <PyObject*>found
    return <str>found


cdef enum:
    AMOUNTS = 1 << 16  # 99% of the lines of `ingest`'s stream pay less (minor units)


cdef PyObject* _amounts[AMOUNTS]


cdef inline object amount(int64_t value):
    """A line's amount paid: below AMOUNTS, the same int as the last time it came (held for good,
    as the word table holds its words), so that most lines make and free no int (Python keeps
    only those below 257)."""
    cdef object made
    if not 0 <= value < AMOUNTS:
        return value
    if _amounts[value] != NULL:
        return <object>_amounts[value]
    made = value
    Py_INCREF(made)
    _amounts[value] = <PyObject*>made
    return made


cdef inline void skip(Cursor* c, uint32_t wire) noexcept:
    """An unknown field: passed over by its wire type (a group is left to protobuf)."""
    cdef Py_ssize_t size
    if wire == VARINT:
        varint(c)
    elif wire == DELIMITED:
        size = length(c, wire)  # a statement of its own: `length` moves the cursor
        c.at += size
    elif wire == FIXED64 or wire == FIXED32:
        if c.end - c.at < (8 if wire == FIXED64 else 4):
            unusual(c)
        else:
            c.at += 8 if wire == FIXED64 else 4
    else:
        unusual(c)


cdef inline void inside(Cursor* c, uint32_t wire, Cursor* inner) noexcept:
    """A nested message's bytes into `inner`; `c` moves past them."""
    cdef Py_ssize_t size = length(c, wire)
    inner.at = c.at
    inner.end = c.at + size
    inner.limit = c.limit
    inner.unusual = False
    c.at = inner.end


cdef object line_item(Cursor* c):
    cdef str sku = _EMPTY, product_id = _EMPTY, category = _EMPTY, name = _EMPTY
    cdef int64_t paid_minor = 0
    cdef int32_t quantity = 0
    cdef bint promotional = False, member_discounted = False
    cdef uint32_t k, wire
    while c.at < c.end:
        k = field(c, &wire)
        if k == 1:
            sku = word(c, wire)
        elif k == 2:
            product_id = word(c, wire)
        elif k == 3:
            category = word(c, wire)
        elif k == 4:
            name = word(c, wire)
        elif k == 5:
            paid_minor = <int64_t>number(c, wire)
        elif k == 6:
            quantity = <int32_t><uint32_t>number(c, wire)  # int32: protobuf keeps the low 32 bits
        elif k == 7:
            promotional = number(c, wire) != 0
        elif k == 8:
            member_discounted = number(c, wire) != 0
        else:
            skip(c, wire)
    item = new_record(_LineItem)  # LineItem(sku, ..., member_discounted), without parsing the call
    put_slot(item, _LINE_AT[0], sku)
    put_slot(item, _LINE_AT[1], product_id)
    put_slot(item, _LINE_AT[2], category)
    put_slot(item, _LINE_AT[3], name)
    put_slot(item, _LINE_AT[4], amount(paid_minor))
    put_slot(item, _LINE_AT[5], quantity)
    put_slot(item, _LINE_AT[6], promotional)
    put_slot(item, _LINE_AT[7], member_discounted)
    return item


cdef enum:
    LINES_HELD = 16


cdef struct Held:  # a transaction's first line items, owned here until their list is made at its size
    PyObject* items[LINES_HELD]
    Py_ssize_t count


cdef object transaction(Cursor* c):
    cdef Held held
    held.count = 0
    try:
        return transaction_held(c, &held)
    finally:
        while held.count:  # only when it raised
            held.count -= 1
            Py_XDECREF(held.items[held.count])


cdef list lines_of(Held* held, list more):
    """The held line items, then `more`, as one list made at its size."""
    cdef Py_ssize_t at, count = held.count
    cdef list lines = PyList_New(count + (len(more) if more is not None else 0))
    for at in range(count):
        list_put(lines, at, held.items[at])  # the list takes the reference held
    held.count = 0
    if more is not None:
        for item in more:
            Py_INCREF(item)
            list_put(lines, count, <PyObject*>item)
            count += 1
    return lines


cdef object transaction_held(Cursor* c, Held* held):
    cdef str txn_id = _EMPTY, member_id = _EMPTY, store_id = _EMPTY, channel = _EMPTY
    cdef str refund_of = _EMPTY, event_type = _EMPTY, note = _EMPTY, coupon_id = _EMPTY, coupon_code = _EMPTY
    cdef int64_t occurred_at_ms = 0, amount_minor = 0, points = 0
    cdef int32_t kind = 0, status = 0
    cdef list more = None  # line items past LINES_HELD
    cdef uint32_t k, wire
    cdef Cursor inner
    while c.at < c.end:
        k = field(c, &wire)
        if k == 1:
            txn_id = text(c, wire)
        elif k == 2:
            member_id = text(c, wire)
        elif k == 3:
            occurred_at_ms = <int64_t>number(c, wire)
        elif k == 4:
            kind = <int32_t><uint32_t>number(c, wire)  # enums are int32 on the wire
        elif k == 5:
            status = <int32_t><uint32_t>number(c, wire)
        elif k == 6:
            store_id = word(c, wire)
        elif k == 7:
            channel = word(c, wire)
        elif k == 8:
            inside(c, wire, &inner)
            item = line_item(&inner)
            if held.count < LINES_HELD:
                Py_INCREF(item)
                held.items[held.count] = <PyObject*>item
                held.count += 1
            else:
                if more is None:
                    more = []
                more.append(item)
            if inner.unusual:
                unusual(c)
        elif k == 9:
            refund_of = text(c, wire)
        elif k == 10:
            event_type = word(c, wire)
        elif k == 11:
            amount_minor = <int64_t>number(c, wire)
        elif k == 12:
            note = text(c, wire)
        elif k == 13:
            points = <int64_t>number(c, wire)
        elif k == 14:
            coupon_id = word(c, wire)
        elif k == 15:
            coupon_code = text(c, wire)
        else:
            skip(c, wire)
    lines = lines_of(held, more)
    record = new_record(_Transaction)  # Transaction(txn_id, ..., coupon_code), without parsing the call
    put_slot(record, _TXN_AT[0], txn_id)
    put_slot(record, _TXN_AT[1], member_id)
    put_slot(record, _TXN_AT[2], occurred_at_ms)
    put_slot(record, _TXN_AT[3], _KIND_WORDS[kind] if 0 <= kind < len(_KIND_WORDS) else "unspecified")
    put_slot(record, _TXN_AT[4], _STATUS_WORDS[status] if 0 <= status < len(_STATUS_WORDS) else "unknown")
    put_slot(record, _TXN_AT[5], store_id)
    put_slot(record, _TXN_AT[6], channel)
    put_slot(record, _TXN_AT[7], lines)
    put_slot(record, _TXN_AT[8], refund_of)
    put_slot(record, _TXN_AT[9], event_type)
    put_slot(record, _TXN_AT[10], amount_minor)
    put_slot(record, _TXN_AT[11], note)
    put_slot(record, _TXN_AT[12], points)
    put_slot(record, _TXN_AT[13], coupon_id)
    put_slot(record, _TXN_AT[14], coupon_code)
    return record


cdef object batch(Cursor* c):
    """The part's records, or None when it is unusual."""
    cdef list transactions = []
    cdef uint32_t k, wire
    cdef Cursor inner
    while c.at < c.end:
        k = field(c, &wire)
        if k == 2:
            inside(c, wire, &inner)
            transactions.append(transaction(&inner))
            if inner.unusual:
                return None
        elif k == 1:
            text(c, wire)  # the batch id, read only because protobuf refuses one that is not UTF-8
        else:
            skip(c, wire)
    return None if c.unusual else transactions


def read_part(bytes data):
    """The engine records of a part, or None when the pure reader must decide (see the module)."""
    cdef Cursor c
    c.at = <const uint8_t*>PyBytes_AS_STRING(data)
    c.end = c.limit = c.at + PyBytes_GET_SIZE(data)
    c.unusual = False
    return batch(&c)
