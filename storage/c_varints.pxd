# cython: language_level=3
"""Protobuf's varint, written by the compiled code that makes protobuf bytes: the outbox's event
rows (storage/row_packer.pyx) and the results a shard sends back (actors/result_writer.pyx).
Inline: nothing of this module exists at run time. In storage/, the lowest package that cimports
it, so the flow stays one way."""

from libc.stdint cimport uint8_t, uint64_t


cdef inline Py_ssize_t varint_size(uint64_t value) noexcept:
    """Bytes of `value` as a varint: 1 to 10."""
    cdef Py_ssize_t size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


cdef inline uint8_t* put_varint(uint8_t* at, uint64_t value) noexcept:
    """`value` as a varint at `at` (room for `varint_size(value)` bytes); returns the byte after it."""
    while value >= 0x80:
        at[0] = <uint8_t>(value & 0x7F | 0x80)
        at += 1
        value >>= 7
    at[0] = <uint8_t>value
    return at + 1
