# Cython declarations for tagging.py (see docs/decisions.md, "Typed engine objects").

from engine.book cimport Book


cpdef note_purchase(Book book, member, day)
cpdef watch_new(Book book, member, day)
