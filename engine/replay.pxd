# Cython declarations for replay.py (see docs/decisions.md, "Typed engine objects"): the book
# typed and scoring cimported, so that each transaction of a replay's chunk is C calls.

from engine.book cimport Book
from engine.record_fields cimport Transaction
from engine.scoring cimport malformed_reason, score_dated


cpdef list replay_list(Book book, list txns, anomalies=*)
cpdef replay_one(Book book, Transaction txn, anomalies)
