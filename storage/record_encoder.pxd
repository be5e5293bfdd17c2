# cython: language_level=3
"""A commit's records as MessagePack, written by compiled code: storage/record_encoder.pyx."""

from cpython.object cimport PyObject

cdef struct Out:
    char* data
    Py_ssize_t used
    Py_ssize_t capacity
    int depth


cdef class RecordEncoder:
    cdef Out out

    cdef bytes encoded(self, object record)
    cdef bytes positioned(self, unsigned long long position, object record)
    cdef int write(self, object record, Py_ssize_t start) except -1
    cdef void fetch_record(self, PyObject* record, Py_ssize_t size) noexcept
    cdef void fetch_fields(self, PyObject* record) noexcept
    cdef void fetch_contents(self, PyObject* record) noexcept
