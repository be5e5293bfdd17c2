# Cython declarations for book.py (see docs/decisions.md, "Typed engine objects").

from engine.programme cimport Programme


cdef class Book:
    cdef public Programme programme
    cdef public object members, txns, today, ledger, dirty, history, awake, wakeups, tag_counts, notices, stock
