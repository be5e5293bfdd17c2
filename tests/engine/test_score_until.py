"""A shard's loop over a batch, in the engine to run compiled (engine/scoring.py `score_until`):
the same results as `score_transaction` of each, in order, and it stops where its caller scores
one itself (an index it is told to skip, a transaction dated in the range it is given)."""

import msgspec

from engine.scoring import score_transaction, score_until
from engine.transactions import Transaction
from tests.builders import book, buy, line, ms

DAY = "2026-11-17 10:00"
NEVER = 1 << 62


def _batch() -> list:
    return [buy(f"t{n}", f"m{n % 3}", DAY, line(1000 * (n + 1))) for n in range(6)]


def _as_scored(txns: list) -> list:
    target = book()
    return [msgspec.to_builtins(score_transaction(target, txn)) for txn in txns]


def test_it_scores_all_as_score_transaction_does_each_in_order():
    target, results = book(), []
    assert score_until(target, _batch(), results, NEVER, NEVER, set()) == 6
    assert [msgspec.to_builtins(result) for result in results] == _as_scored(_batch())
    assert score_until(target, _batch(), results, NEVER, NEVER, set()) == 6  # nothing left: nothing scored
    assert len(results) == 6


def test_it_stops_at_an_index_to_skip_and_at_a_transaction_dated_in_the_range_and_goes_on_from_the_next():
    txns = _batch()
    txns[4] = buy("t4", "m1", "2026-11-18 00:00", line(5000))  # the range's first instant: the caller's
    txns[5] = buy("t5", "m2", "2026-11-19 00:00", line(6000))  # just past it: scored here
    target, results = book(), []
    assert score_until(target, txns, results, ms("2026-11-18 00:00"), ms("2026-11-19 00:00"), {2}) == 2
    assert len(results) == 2
    results.append(None)  # the caller's result for the one it skipped
    assert score_until(target, txns, results, ms("2026-11-18 00:00"), ms("2026-11-19 00:00"), {2}) == 4
    results.append(None)
    assert score_until(target, txns, results, ms("2026-11-18 00:00"), ms("2026-11-19 00:00"), {2}) == 6
    assert [msgspec.to_builtins(r) for n, r in enumerate(results) if n not in (2, 4)] == [
        result for n, result in enumerate(_as_scored([t for n, t in enumerate(txns) if n not in (2, 4)]))]


def test_a_transaction_the_engine_fails_on_leaves_the_results_of_those_before_it():
    txns = _batch()
    txns[3] = Transaction("t3", "m0", "ten", "purchase", lines=[line(1000)])  # not an int: its date's test raises
    results: list = []
    try:
        score_until(book(), txns, results, NEVER, NEVER, set())
    except TypeError:  # whatever it raises, the shard rejects that one cannot_apply (at len(results))
        assert len(results) == 3
    else:
        raise AssertionError("scored a transaction whose time is not a number")


def test_released_each_transaction_it_scores_is_let_go_and_the_ones_its_caller_scores_are_not():
    def batch() -> list:
        txns = _batch()
        txns[4] = buy("t4", "m1", "2026-11-18 00:00", line(5000))  # in the range: the caller's
        return txns

    txns, target, results = batch(), book(), []
    starts, ends = ms("2026-11-18 00:00"), ms("2026-11-19 00:00")
    skipped, dated = txns[2], txns[4]
    assert score_until(target, txns, results, starts, ends, {2}, release=True) == 2
    assert txns[:3] == [None, None, skipped]
    results.append(score_transaction(target, skipped))  # the caller scores it, and keeps it
    assert score_until(target, txns, results, starts, ends, {2}, release=True) == 4
    assert txns[3:5] == [None, dated]
    results.append(score_transaction(target, dated))
    assert score_until(target, txns, results, starts, ends, {2}, release=True) == 6
    assert txns == [None, None, skipped, None, dated, None]
    assert [msgspec.to_builtins(result) for result in results] == _as_scored(batch())


def test_released_a_transaction_the_engine_fails_on_stays_for_its_caller_to_name():
    txns = _batch()
    txns[3] = failing = Transaction("t3", "m0", "ten", "purchase", lines=[line(1000)])
    results: list = []
    try:
        score_until(book(), txns, results, NEVER, NEVER, set(), release=True)
    except TypeError:
        assert txns[:4] == [None, None, None, failing]
        assert txns[4] is not None
    else:
        raise AssertionError("scored a transaction whose time is not a number")
