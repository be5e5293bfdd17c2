# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""A batch's results written as the `results` entries of a BatchAck, compiled: the bytes and sizes
`actors/batch_wire.py` `result_entries_pure` gives (its specification: protobuf's own encoding of
each TxnResult), written field by field into one buffer, without a message or a Python object per
field in between.

A field is written as protobuf writes a proto3 scalar: in field order, left out when it is zero or
empty; an int64 as its two's complement varint (10 bytes when negative). What protobuf would refuse
or this writer does not expect (an outcome without a number, an int outside int64, a string that
is not UTF-8, a value of another type, a result that is not exactly a TxnResult) makes it answer
None, so that the pure code decides as before (raising much as protobuf does)."""

from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy
from cpython.ref cimport Py_INCREF
from cpython.bytes cimport PyBytes_FromStringAndSize

from actors.c_ints cimport read_int64
from storage.c_slots cimport borrowed_slot, slot_offset, slot_value
from storage.c_varints cimport put_varint, varint_size
from cpython.object cimport PyObject


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object, Py_ssize_t*) except NULL
    bint PyUnicode_IS_COMPACT_ASCII(object)
    const void* PyUnicode_DATA(object)
    Py_ssize_t PyUnicode_GET_LENGTH(object)
    unsigned int PyUnicode_CHECK_INTERNED(object)

from actors.wire import OUTCOME_NUMBERS
from engine.transactions import TxnResult

__all__ = ["write_results"]

cdef dict _NUMBERS = OUTCOME_NUMBERS
cdef object _RESULT = TxnResult
cdef Py_ssize_t TXN_ID_AT = slot_offset(_RESULT, "txn_id", "actors.result_writer")
cdef Py_ssize_t OUTCOME_AT = slot_offset(_RESULT, "outcome", "actors.result_writer")
cdef Py_ssize_t POINTS_AT = slot_offset(_RESULT, "points", "actors.result_writer")
cdef Py_ssize_t GROWTH_AT = slot_offset(_RESULT, "growth", "actors.result_writer")
cdef Py_ssize_t REASON_AT = slot_offset(_RESULT, "reason", "actors.result_writer")
cdef Py_ssize_t VALUE_AT = slot_offset(_RESULT, "value_minor", "actors.result_writer")
cdef Py_ssize_t CODE_AT = slot_offset(_RESULT, "coupon_code", "actors.result_writer")
"""Where a TxnResult keeps each field: read from its slot, not through the attribute protocol (a
result of any other type is the pure code's)."""

cdef enum:  # field keys: number << 3 | wire type
    ENTRY = 2 << 3 | 2  # BatchAck.results
    TXN_ID = 1 << 3 | 2
    OUTCOME = 2 << 3
    POINTS = 3 << 3
    GROWTH = 4 << 3
    REASON = 5 << 3 | 2
    VALUE_MINOR = 6 << 3
    COUPON_CODE = 7 << 3 | 2


class Unusual(Exception):
    """A result this writer leaves to the pure code: never seen outside this module."""


cdef struct Buffer:
    uint8_t* data
    Py_ssize_t size
    Py_ssize_t room


cdef struct Text:
    const char* data
    Py_ssize_t size


cdef int reserve(Buffer* buffer, Py_ssize_t more) except -1:
    cdef Py_ssize_t room
    cdef void* grown
    if buffer.size + more <= buffer.room:
        return 0
    room = max(2 * buffer.room, buffer.size + more, 4096)
    grown = realloc(buffer.data, room)
    if grown == NULL:
        raise MemoryError()
    buffer.data, buffer.room = <uint8_t*>grown, room
    return 0


cdef inline Text text(object value) except *:
    cdef Text found
    if type(value) is not str:
        raise Unusual()
    if PyUnicode_IS_COMPACT_ASCII(value):  # nearly always: its bytes are its UTF-8
        found.data = <const char*>PyUnicode_DATA(value)
        found.size = PyUnicode_GET_LENGTH(value)
        return found
    return utf8(value)


cdef Text utf8(object value) except *:
    cdef Text found
    try:
        found.data = PyUnicode_AsUTF8AndSize(value, &found.size)
    except UnicodeError:
        raise Unusual()
    return found


cdef inline int64_t int64(object value) except? -1:
    cdef int64_t number
    if not read_int64(value, &number):
        raise Unusual()
    return number


cdef inline Py_ssize_t text_size(Text field) noexcept:
    return 1 + varint_size(<uint64_t>field.size) + field.size if field.size else 0


cdef inline Py_ssize_t int_size(int64_t field) noexcept:
    return 1 + varint_size(<uint64_t>field) if field else 0


cdef inline uint8_t* put_text(uint8_t* at, uint8_t key, Text field) noexcept:
    if field.size:
        at[0] = key
        at = put_varint(at + 1, <uint64_t>field.size)
        memcpy(at, field.data, field.size)
        at += field.size
    return at


cdef inline uint8_t* put_int(uint8_t* at, uint8_t key, int64_t field) noexcept:
    if field:
        at[0] = key
        at = put_varint(at + 1, <uint64_t>field)
    return at


cdef enum:
    OUTCOMES = 8
cdef PyObject* _outcomes[OUTCOMES]
cdef int64_t _outcome_numbers[OUTCOMES]
cdef int _outcomes_seen = 0


cdef inline int64_t outcome_number(PyObject* outcome) except -1:
    """An outcome's number: found by the identity of the strings met first (results share the
    engine's few outcome strings), else in OUTCOME_NUMBERS; an outcome without one is unusual."""
    cdef int at
    for at in range(_outcomes_seen):
        if _outcomes[at] == outcome:
            return _outcome_numbers[at]
    return outcome_looked_up(<object>outcome)


cdef int64_t outcome_looked_up(object outcome) except -1:
    global _outcomes_seen
    number = _NUMBERS.get(outcome)
    if type(number) is not int or number < 0:  # OUTCOME_NUMBERS holds protobuf's enum numbers
        raise Unusual()
    # held for good, so its address stays its own; interned only (the engine's outcomes are
    # literals), so that strings made once and gone cannot fill the few places
    if _outcomes_seen < OUTCOMES and type(outcome) is str and PyUnicode_CHECK_INTERNED(outcome):
        Py_INCREF(outcome)
        _outcomes[_outcomes_seen] = <PyObject*>outcome
        _outcome_numbers[_outcomes_seen] = number
        _outcomes_seen += 1
    return number


cdef Py_ssize_t put_result(Buffer* buffer, object result) except -1:
    """One result's entry at the end of the buffer; returns its size."""
    if type(result) is not _RESULT:
        raise Unusual()
    cdef int64_t number = outcome_number(borrowed_slot(result, OUTCOME_AT))
    # held here: a Text points into its string's UTF-8, which must outlive this entry's writing
    cdef object txn_id_str = slot_value(result, TXN_ID_AT), reason_str = slot_value(result, REASON_AT)
    cdef object coupon_code_str = slot_value(result, CODE_AT)
    cdef Text txn_id = text(txn_id_str), reason = text(reason_str), coupon_code = text(coupon_code_str)
    cdef int64_t points = int64(slot_value(result, POINTS_AT))
    cdef int64_t growth = int64(slot_value(result, GROWTH_AT)), value_minor = int64(slot_value(result, VALUE_AT))
    cdef Py_ssize_t size = (text_size(txn_id) + int_size(number) + int_size(points) + int_size(growth)
                            + text_size(reason) + int_size(value_minor) + text_size(coupon_code))
    cdef Py_ssize_t entry = 1 + varint_size(<uint64_t>size) + size
    reserve(buffer, entry)
    cdef uint8_t* at = buffer.data + buffer.size
    at[0] = ENTRY
    at = put_varint(at + 1, <uint64_t>size)
    at = put_text(at, TXN_ID, txn_id)
    at = put_int(at, OUTCOME, number)
    at = put_int(at, POINTS, points)
    at = put_int(at, GROWTH, growth)
    at = put_text(at, REASON, reason)
    at = put_int(at, VALUE_MINOR, value_minor)
    put_text(at, COUPON_CODE, coupon_code)
    buffer.size += entry
    return entry


def write_results(list results not None):
    """`result_entries_pure`'s (entries, sizes) for these results, or None when the pure code must decide."""
    cdef Buffer buffer
    cdef list sizes = []
    buffer.data, buffer.size, buffer.room = NULL, 0, 0
    try:
        for result in results:
            sizes.append(put_result(&buffer, result))
        return PyBytes_FromStringAndSize(<char*>buffer.data, buffer.size), sizes
    except Unusual:
        return None
    finally:
        free(buffer.data)
