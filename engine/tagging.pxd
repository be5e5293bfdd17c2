# Cython declarations for tagging.py (see docs/decisions.md, "Typed engine objects").

from engine.book cimport Book
from engine.record_fields cimport Member


cpdef note_purchase(Book book, Member member, day)
cpdef watch_new(Book book, Member member, day)
