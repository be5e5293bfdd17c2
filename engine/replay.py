"""The engine over a stream of transactions in one process: the stream's own clock sets the business day."""

from collections.abc import Iterable, Iterator

from engine.anomaly_report import AnomalyRow
from engine.book import Book
from engine.midnight import run_midnight
from engine.scoring import malformed_reason, score_dated
from engine.transactions import Transaction, TxnResult
from engine.types import Day

__all__ = ["advance_to", "replay_list", "replay_stream"]


def replay_stream(book: Book, txns: Iterable[Transaction], anomalies: list[AnomalyRow] | None = None,
                  ) -> Iterator[TxnResult]:
    """Score transactions in order. When the stream's local date moves forward, every
    midnight it crossed runs first, so lateness, expiry and tiers are judged as a live
    engine would have judged them. Anomaly report rows are appended to `anomalies`.

    A malformed transaction (its time out of bounds among the reasons) moves no clock, nor does it
    bring its member through a midnight served (actors/shard.py): it can never be applied, so its
    time says nothing of when "now" is. (A till's line of an unknown kind dated months ahead aged
    the whole book, and the next purchase of today was `too_late`: an outside probe.)"""
    for txn in txns:
        yield replay_one(book, txn, anomalies)


def replay_list(book: Book, txns: list[Transaction], anomalies: list[AnomalyRow] | None = None,
                ) -> list[TxnResult]:
    """`replay_stream`'s results as a list: compiled, a C loop of C calls (`patron replay`'s
    chunks; the generator and its calls by name cost about 400 instructions a transaction)."""
    return [replay_one(book, txn, anomalies) for txn in txns]


def replay_one(book: Book, txn: Transaction, anomalies: list[AnomalyRow] | None) -> TxnResult:
    """One transaction of `replay_stream`, after any midnights its date crossed."""
    reason = malformed_reason(book, txn)
    if reason:
        return TxnResult(txn.txn_id, "rejected", 0, 0, reason)
    day = book.programme.calendar.day_of(txn.occurred_at_ms)
    if day > book.today:
        rows = advance_to(book, day)
        if anomalies is not None:
            anomalies.extend(rows)
    return score_dated(book, txn, day)


def advance_to(book: Book, day: Day) -> list[AnomalyRow]:
    """Run every midnight after the business day up to and including the one that starts `day`."""
    rows: list[AnomalyRow] = []
    if not book.today:
        book.today = day
        return rows
    for run in range(book.today + 1, day + 1):
        rows.extend(run_midnight(book, run))
    return rows
