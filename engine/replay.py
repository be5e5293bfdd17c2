"""The engine over a stream of transactions in one process: the stream's own clock sets the business day."""

from collections.abc import Iterable, Iterator

from engine.book import Book
from engine.scoring import score_transaction
from engine.transactions import Transaction, TxnResult
from engine.types import Day

__all__ = ["advance_to", "replay_stream"]


def replay_stream(book: Book, txns: Iterable[Transaction]) -> Iterator[TxnResult]:
    """Score transactions in order; the business day moves forward with the latest local
    day seen, so lateness is judged as a live engine would have judged it."""
    day_of = book.programme.calendar.day_of
    for txn in txns:
        if txn.occurred_at_ms > 0:
            day = day_of(txn.occurred_at_ms)
            if day > book.today:
                advance_to(book, day)
        yield score_transaction(book, txn)


def advance_to(book: Book, day: Day) -> None:
    book.today = day
