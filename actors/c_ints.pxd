# cython: language_level=3
"""Python ints read as C integers, shared by the compiled wire and counting code (inline: nothing
of this module exists at run time)."""

from libc.stdint cimport int64_t
from cpython.long cimport PyLong_AsLongLongAndOverflow


cdef inline bint read_int64(object value, int64_t* number) except -1:
    """Whether `value` is exactly an int that fits int64 (then in `number`): the caller leaves any
    other value to its pure code."""
    cdef int overflow = 0
    if type(value) is not int:
        return False
    number[0] = PyLong_AsLongLongAndOverflow(value, &overflow)
    return not overflow
