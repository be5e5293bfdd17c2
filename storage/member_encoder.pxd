# cython: language_level=3
"""A member's record as MessagePack, written by compiled code: storage/member_encoder.pyx."""

cdef struct Out:
    char* data
    Py_ssize_t used
    Py_ssize_t capacity
    int depth


cdef class MemberEncoder:
    cdef Out out

    cdef bytes encoded(self, object record)
