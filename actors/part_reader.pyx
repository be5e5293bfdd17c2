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
from cpython.list cimport PyList_GET_ITEM
from libc.string cimport memcmp, memcpy

from actors.c_slots cimport put_slot, slot_offset


cdef extern from "Python.h":
    bint PyUnicode_IS_COMPACT_ASCII(object)
    const void* PyUnicode_DATA(object)
    Py_ssize_t PyUnicode_GET_LENGTH(object)

cdef extern from *:
    """
    static PyObject* patron_new_record(PyObject* cls) { return ((PyTypeObject*)cls)->tp_alloc((PyTypeObject*)cls, 0); }
    """
    object new_record "patron_new_record"(object cls)

from actors.wire import KIND_WORDS, STATUS_WORDS
from engine.transactions import LineItem, Transaction

__all__ = ["read_part", "struct_slots"]

cdef object _Transaction = Transaction
cdef object _LineItem = LineItem
_HAS_GC = 1 << 14  # Py_TPFLAGS_HAVE_GC


cdef int find_slots(object cls, tuple fields, Py_ssize_t* offsets) except -1:
    """Where each field of `cls`, in the order of its constructor, lives in a record, for records
    built here as msgspec's constructor builds them from positional arguments (made by the type's
    own allocator, each slot set): only for a Struct of exactly these fields, not tracked by the
    collector and with no `__post_init__`. Any other raises ImportError at import, and the pure
    reader reads every part (a start says so)."""
    if cls.__struct_fields__ != fields or cls.__flags__ & _HAS_GC or hasattr(cls, "__post_init__"):
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


class Unusual(Exception):
    """Bytes this reader leaves to protobuf (the pure reader): never seen outside this module."""


cdef struct Cursor:
    const uint8_t* at
    const uint8_t* end


cdef inline uint64_t varint(Cursor* c) except? 0xFFFFFFFFFFFFFFFF:
    """A varint as protobuf reads it: at most 10 bytes; the tenth may only hold the top bit."""
    cdef uint64_t value = 0, byte
    cdef int shift = 0
    while c.at < c.end:
        byte = c.at[0]
        c.at += 1
        if shift == 63 and byte > 1:
            raise Unusual()
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value
        shift += 7
        if shift > 63:
            break
    raise Unusual()


cdef inline uint32_t key(Cursor* c) except? 0xFFFFFFFF:
    """A field's key (number << 3 | wire type): one byte nearly always; a number of 0, or a key
    past 32 bits, protobuf refuses."""
    cdef uint64_t value
    cdef const uint8_t* start = c.at
    if c.at[0] < 0x80:
        value = c.at[0]
        c.at += 1
    else:
        value = varint(c)
        if c.at - start > 5 or value > 0xFFFFFFFF or value < 0x80:  # too long, too large, or padded
            raise Unusual()
    if value >> 3 == 0:
        raise Unusual()
    return <uint32_t>value


cdef inline uint32_t field(Cursor* c, uint32_t* wire) except? 0:
    """The next field's number, its wire type into `wire`."""
    cdef uint32_t k = key(c)
    wire[0] = k & 7
    return k >> 3


cdef inline Py_ssize_t length(Cursor* c) except -1:
    """A length-delimited field's size, checked against what is left."""
    cdef uint64_t size
    cdef const uint8_t* start = c.at
    if c.at < c.end and c.at[0] < 0x80:
        size = c.at[0]
        c.at += 1
    else:
        size = varint(c)
    if size > <uint64_t>(c.end - c.at) or c.at - start > 5:  # protobuf reads a size in 5 bytes at most
        raise Unusual()
    return <Py_ssize_t>size


cdef inline int expect(uint32_t wire, uint32_t wanted) except -1:
    """A known field written with another wire type: protobuf's call, not ours."""
    if wire != wanted:
        raise Unusual()
    return 0


cdef inline str text(Cursor* c, uint32_t wire):
    """A string that is new nearly every time (an id, a note)."""
    expect(wire, DELIMITED)
    cdef Py_ssize_t size = length(c)
    return text_of(c, c.at, size)


cdef inline str text_of(Cursor* c, const uint8_t* start, Py_ssize_t size):
    c.at += size
    if size == 0:
        return _EMPTY
    try:
        return PyUnicode_DecodeUTF8(<const char*>start, size, NULL)
    except UnicodeDecodeError:
        raise Unusual()


cdef enum:
    WORD_BITS = 16
    WORDS = 1 << WORD_BITS  # slots
    LONGEST_WORD = 40
cdef list _words = [None] * WORDS


cdef inline str word(Cursor* c, uint32_t wire):
    """A string that repeats across transactions (a sku, a category, a store, a channel): the
    same str as the last time these bytes came, when they are ASCII and still remembered, so
    that neither it nor its hash is made again. A table of WORDS slots by a hash of the size and
    the first and last 8 bytes, the newest word in each."""
    expect(wire, DELIMITED)
    cdef Py_ssize_t size = length(c)
    cdef const uint8_t* start = c.at
    cdef uint64_t head = 0, tail = 0
    cdef size_t slot
    cdef object found
    if size == 0 or size > LONGEST_WORD:
        return text_of(c, start, size)
    if size >= 8:
        memcpy(&head, start, 8)
        memcpy(&tail, start + size - 8, 8)
    else:
        memcpy(&head, start, size)
    slot = ((head * 0x9E3779B97F4A7C15ULL) ^ (tail * 0xC2B2AE3D27D4EB4FULL) ^ <uint64_t>size) >> (64 - WORD_BITS)
    found = <object>PyList_GET_ITEM(_words, slot)
    if (found is not None and PyUnicode_GET_LENGTH(found) == size and PyUnicode_IS_COMPACT_ASCII(found)
            and memcmp(PyUnicode_DATA(found), start, size) == 0):
        c.at += size
        return <str>found
    found = text_of(c, start, size)
    if PyUnicode_IS_COMPACT_ASCII(found):
        _words[slot] = found
    return <str>found


cdef inline int skip(Cursor* c, uint32_t wire) except -1:
    """An unknown field: passed over by its wire type (a group is left to protobuf)."""
    if wire == VARINT:
        varint(c)
    elif wire == DELIMITED:
        c.at += length(c)
    elif wire == FIXED64 or wire == FIXED32:
        if c.end - c.at < (8 if wire == FIXED64 else 4):
            raise Unusual()
        c.at += 8 if wire == FIXED64 else 4
    else:
        raise Unusual()
    return 0


cdef inline uint64_t number(Cursor* c, uint32_t wire) except? 0xFFFFFFFFFFFFFFFF:
    expect(wire, VARINT)
    return varint(c)


cdef inline int inside(Cursor* c, uint32_t wire, Cursor* inner) except -1:
    """A nested message's bytes into `inner`; `c` moves past them."""
    expect(wire, DELIMITED)
    cdef Py_ssize_t size = length(c)
    inner.at = c.at
    inner.end = c.at + size
    c.at = inner.end
    return 0


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
    put_slot(item, _LINE_AT[4], paid_minor)
    put_slot(item, _LINE_AT[5], quantity)
    put_slot(item, _LINE_AT[6], promotional)
    put_slot(item, _LINE_AT[7], member_discounted)
    return item


cdef object transaction(Cursor* c):
    cdef str txn_id = _EMPTY, member_id = _EMPTY, store_id = _EMPTY, channel = _EMPTY
    cdef str refund_of = _EMPTY, event_type = _EMPTY, note = _EMPTY, coupon_id = _EMPTY, coupon_code = _EMPTY
    cdef int64_t occurred_at_ms = 0, amount_minor = 0, points = 0
    cdef int32_t kind = 0, status = 0
    cdef list lines = []
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
            lines.append(line_item(&inner))
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


cdef list batch(Cursor* c):
    cdef list transactions = []
    cdef uint32_t k, wire
    cdef Cursor inner
    while c.at < c.end:
        k = field(c, &wire)
        if k == 2:
            inside(c, wire, &inner)
            transactions.append(transaction(&inner))
        elif k == 1:
            text(c, wire)  # the batch id, read only because protobuf refuses one that is not UTF-8
        else:
            skip(c, wire)
    return transactions


def read_part(bytes data):
    """The engine records of a part, or None when the pure reader must decide (see the module)."""
    cdef Cursor c
    c.at = <const uint8_t*>PyBytes_AS_STRING(data)
    c.end = c.at + PyBytes_GET_SIZE(data)
    try:
        return batch(&c)
    except Unusual:
        return None
