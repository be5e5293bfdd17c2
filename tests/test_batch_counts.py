"""A batch's statistics counted by the compiled code (actors/batch_counter.pyx) against the pure
code, its specification (actors/batch_stats.py): the same counts, dicts in the same order, for
any kinds, outcomes and ledger entries, counted into statistics that may already hold counts."""

import copy
import importlib.util
import sys

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import actors
from actors import batch_stats, batch_wire
from actors.batch_counter import count_ledger_common, count_outcomes, field_offset, rejected_and_twins
from actors.batch_stats import (
    BatchStats,
    Counted,
    count_batch,
    count_ledger,
    count_ledger_pure,
    count_outcomes_pure,
    kinds_and_coupons,
    rejected_and_twins_pure,
)
from engine.ledger import LedgerEntry
from engine.transactions import Transaction, TxnResult

words = st.sampled_from(["purchase", "refund", "coupon_issue", "redeem", "", "unheard"])
outcomes = st.sampled_from(["accepted", "rejected", "duplicate"])
reasons = st.sampled_from(["", "out_of_stock", "cannot_apply", "ü"])
kinds = st.sampled_from(["earn", "event", "adjust", "bonus", "reverse", "expire", "status", "tier", "redeem", "restore",
                         "coupon_issued", "coupon_used", "coupon_expired", "coupon_not_issued", "payment", "void"])
amounts = st.integers(-10**6, 10**6) | st.sampled_from([0, 2**70, 2**62, -2**62, 3 * 2**61, 2**63 - 1, -2**63])
"""Small, and near int64's ends: two or three of those overflow a C sum (the pure code's then)."""
entries = st.builds(
    LedgerEntry, member_id=st.sampled_from(["m1", "m-2", "", "ü1"]), seq=st.just(1), day=st.just(20_000),
    cause=st.just("txn"), ref=st.just("t"), rule_version=st.just(1), kind=kinds, points=amounts, pending=amounts,
    growth=amounts, stored_value=amounts, tier_from=st.integers(-1, 2), tier_to=st.integers(-1, 2),
    status=st.sampled_from(["", "abnormal", "normal"]),
    note=st.sampled_from(["", "c1: out_of_stock", "c1: other", "c: 2: out_of_stock", "ç: out_of_stock"]),
    bonus_value=amounts,
    coupon_code=st.sampled_from(["", "c1-m1-3", "c-x-m-2-1", "c1--1", "c1-m1", "m1-1", "-m1-1", "c2", "ç-ü1-1",
                                 "c3-ü1-2", "c1-m-2-"]))
"""Coupon codes as engine/spending/coupons.py makes them (`<coupon id>-<member id>-<n>`, ids with
dashes), and others: no dash, an empty member's, another member's, non-ASCII."""
stats = st.builds(BatchStats, st.dictionaries(st.sampled_from(["purchase accepted ", "x"]), st.integers(0, 5)),
                  points_awarded=st.integers(0, 9), anomalies=st.integers(0, 3),
                  tier_changes=st.dictionaries(st.sampled_from(["Basic", "Gold"]),
                                               st.dictionaries(st.sampled_from(["Silver", "none"]), st.integers(1, 3))),
                  coupons=st.dictionaries(st.sampled_from(["issued c1", "used c1"]), st.integers(1, 3)))


_triples = st.tuples(words, outcomes, reasons)


def _copied(word: str) -> str:
    """An equal str that is another object (the compiled count knows its first triples by identity)."""
    return "".join([word[:1], word[1:]]) if len(word) > 1 else word


@settings(max_examples=150, deadline=None)
@given(st.lists(_triples | _triples.map(lambda triple: tuple(map(_copied, triple))), max_size=60))
def test_outcomes_are_counted_as_the_pure_code_counts_them(triples):
    kinds = [kind for kind, _, _ in triples]
    results = [TxnResult(str(n), outcome, reason=reason) for n, (_, outcome, reason) in enumerate(triples)]
    counted = count_outcomes(kinds, results)
    assert counted == count_outcomes_pure(kinds, results)
    assert list(counted) == list(count_outcomes_pure(kinds, results))



@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["T1", "T2", "T3", "T4", "T5"]), outcomes | outcomes.map(_copied)),
                max_size=40))
def test_the_rejected_and_their_twins_are_found_where_the_pure_code_finds_them(drawn):
    results = [TxnResult(_copied(txn_id), outcome) for txn_id, outcome in drawn]
    assert rejected_and_twins(results) == rejected_and_twins_pure(results)
    kinds = ["purchase"] * len(results)
    assert count_batch(kinds, results, []).accepted() == sum(1 for result in results if result.outcome == "accepted")


def test_the_rejected_and_their_twins_are_left_to_the_pure_code_for_lists_it_does_not_expect():
    results = [TxnResult("T1", "rejected"), TxnResult("T2", "accepted")]
    assert rejected_and_twins([results[0], "accepted"]) is None
    assert rejected_and_twins(results) == rejected_and_twins_pure(results) == [0]

def _entry(kind: str, points: int) -> LedgerEntry:
    return LedgerEntry("m1", 1, 20_000, "txn", "t", 1, kind, points=points)


@settings(max_examples=150, deadline=None)
def counted_both_ways(before: BatchStats, ledger: list) -> tuple[BatchStats, BatchStats]:
    """`before` with the ledger counted by `count_ledger` and by `count_ledger_pure`, each a copy."""
    compiled, pure = copy.deepcopy(before), copy.deepcopy(before)
    count_ledger(compiled, ledger)
    count_ledger_pure(pure, ledger)
    return compiled, pure


@given(stats, st.lists(entries, max_size=20))
@example(BatchStats({}), [_entry("redeem", 2**62)] * 3)  # int64's ends passed by a taken sum
@example(BatchStats({}), [_entry("reverse", -2**63)])
@example(BatchStats({}), [_entry("earn", 2**63 - 1), _entry("bonus", 1)])  # and by an added one
@example(BatchStats({}), [LedgerEntry("m1", 1, 20_000, "operator", "void_held", 1, "void", pending=-50)])  # a probe
def test_ledger_entries_are_counted_as_the_pure_code_counts_them(before, ledger):
    compiled, pure = counted_both_ways(before, ledger)
    assert compiled == pure
    assert list(compiled.tier_changes) == list(pure.tier_changes)
    assert list(compiled.coupons) == list(pure.coupons)
    small = all(abs(n) < 10**7 for e in ledger for n in (e.points, e.pending, e.growth, e.stored_value, e.bonus_value))
    # tier moves come back for the pure code; all of the ledger when an amount does not fit 64 bits
    left = count_ledger_common(BatchStats({}), ledger, coupons := {})
    assert left in ([e for e in ledger if e.kind == "tier"], ledger)
    assert not small or left == [e for e in ledger if e.kind == "tier"]
    count_ledger_pure(counted := BatchStats({}), ledger)
    assert coupons == ({} if left is ledger else counted.coupons)


@settings(max_examples=150, deadline=None)
@given(stats, st.lists(entries.map(lambda e: msgspec.structs.replace(
    e, points=1, pending=0, growth=2, stored_value=0, bonus_value=0)), max_size=20))
def test_coupons_are_counted_as_the_pure_code_counts_them(before, ledger):
    """Amounts that fit, so that the compiled count counts (one that does not leaves it all to the pure code)."""
    compiled, pure = counted_both_ways(before, ledger)
    assert compiled == pure
    assert list(compiled.coupons) == list(pure.coupons)
    assert count_ledger_common(BatchStats({}), ledger, {}) == [e for e in ledger if e.kind == "tier"]


def test_a_coupon_entry_the_compiled_count_does_not_expect_is_the_pure_codes():
    for odd in (LedgerEntry(7, 1, 20_000, "txn", "t", 1, "coupon_issued", coupon_code="c1-7-1"),
                LedgerEntry("m1", 1, 20_000, "txn", "t", 1, "coupon_used", coupon_code=b"c1-m1-1"),
                LedgerEntry("m1", 1, 20_000, "txn", "t", 1, 5, points=3)):  # a kind not a str
        ledger = [_entry("earn", 5), odd]
        assert count_ledger_common(BatchStats({}), ledger, coupons := {}) is ledger
        assert coupons == {}
    ledger = [_entry("earn", 5), LedgerEntry(7, 1, 20_000, "txn", "t", 1, "coupon_issued", coupon_code="c1-7-1")]
    compiled, pure = counted_both_ways(BatchStats({}), ledger)
    assert compiled == pure
    assert compiled.coupons == {"issued c1": 1}
    with pytest.raises(TypeError):  # a code that is not text: the pure code's error
        count_ledger(BatchStats({}), [LedgerEntry("m1", 1, 20_000, "txn", "t", 1, "coupon_used", coupon_code=b"c-1")])


def test_tier_moves_are_named_with_the_ladder_they_were_made_on():
    # named later by the gateway, moves committed just before a publish that inserts a tier took
    # the new ladder's names: Basic -> Silver was counted as Basic -> Bronze
    def move(before: int, after: int, removed: str = "") -> LedgerEntry:
        return LedgerEntry("m1", 1, 20_000, "txn", "t", 1, "tier", tier_from=before, tier_to=after,
                           tier_from_name=removed)
    stats = count_batch([], [], [move(0, 1), move(0, 1), move(1, 2)], ["Basic", "Silver", "Gold"])
    stats.add(count_batch([], [], [move(0, 1), move(1, 0, removed="Silver")], ["Basic", "Bronze", "Gold"]))
    assert stats.tier_changes == {"Basic": {"Silver": 2, "Bronze": 1}, "Silver": {"Gold": 1, "Basic": 1}}


def test_lists_of_different_lengths_are_refused_as_the_pure_code_refuses_them():
    assert count_outcomes(["purchase"], []) is None
    with pytest.raises(ValueError, match="zip"):
        count_batch(["purchase"], [], [])


def test_a_struct_whose_field_changed_makes_the_import_fail_as_a_missing_build_does():
    """batch_stats.py falls back to the pure code on ImportError only: a renamed, removed or
    inherited field must raise that, not stop every shard from starting."""
    class Renamed(msgspec.Struct):
        kinds: str = ""

    class Inherited(Renamed):
        extra: int = 0

    assert field_offset(Renamed, "kinds") > 0
    for cls, name in ((Renamed, "kind"), (Inherited, "kinds"), (Inherited, "__class__")):
        with pytest.raises(ImportError, match="not a slot of its own"):
            field_offset(cls, name)


def test_without_the_compiled_counter_the_pure_code_counts_and_a_start_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "actors.batch_counter", None)  # as when it was never built
    monkeypatch.delattr(actors, "batch_counter")
    spec = importlib.util.spec_from_file_location("stats_without_counter", batch_stats.__file__)
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    assert not fresh.COMPILED_COUNTS
    assert "batch_counter" in fresh.MISSING
    counted = fresh.BatchStats({})
    fresh.count_ledger(counted, [LedgerEntry("m", 1, 20_000, "txn", "t", 1, "earn", points=5)])
    assert counted.points_awarded == 5
    kinds, coupons = kinds_and_coupons([Transaction(txn_id="1", kind="coupon_issue", coupon_id="c")])
    results = [TxnResult("1", "rejected", reason="out_of_stock")]
    counted = fresh.count_batch(kinds, results, [], coupon_ids=coupons)
    assert msgspec.to_builtins(counted) == msgspec.to_builtins(count_batch(kinds, results, [], coupon_ids=coupons))
    assert counted.coupons == {"out_of_stock c": 1}
    with pytest.raises(ValueError, match="coupon_ids"):  # not counted under no coupon's name
        count_batch(kinds, results, [])
    monkeypatch.setitem(sys.modules, "actors.batch_stats", fresh)
    spec = importlib.util.spec_from_file_location("wire_without_counter", batch_wire.__file__)
    wire = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wire)
    assert not wire.COMPILED_WIRE


def _looks(*answers: tuple) -> dict:
    """What the coordinator records from a shard answering `answers` ((now, at_open) each) in turn."""
    from types import SimpleNamespace

    from actors.coordinator import Coordinator
    from actors.metrics import Metrics

    watch = SimpleNamespace(_counts_seen={}, metrics=Metrics())
    for now, at_open in answers:
        Coordinator._record_counts(watch, 0, now, at_open)
    registry = watch.metrics.registry
    return {name: registry.get_sample_value(name, labels) for name, labels in (
        ("patron_points_expired_total", {}), ("patron_events_written_total", {"kind": "coupon_issued"}))}


def _counted(expired: int, issued: int, commits: int) -> Counted:
    return Counted(BatchStats({}, points_expired=expired), {"coupon_issued": issued}, 0, commits)


def test_counts_are_recorded_once_across_a_shards_restart_and_from_its_opening_when_it_lost_commits():
    opened = _counted(0, 0, 0)
    # a look, more commits, the shard killed and reopened with them: nothing lost, nothing twice
    assert _looks((_counted(100, 5, 10), opened), (_counted(150, 8, 12), _counted(150, 8, 12))) == {
        "patron_points_expired_total": 150, "patron_events_written_total": 8}
    # reopened with fewer commits than seen (a relaxed sync's last commits lost), then more: counted
    # from its opening, never a count that goes down (prometheus refuses it, and the look failed)
    assert _looks((_counted(100, 5, 10), opened), (_counted(130, 9, 12), _counted(90, 4, 9))) == {
        "patron_points_expired_total": 140, "patron_events_written_total": 10}


def test_every_coupon_event_the_pure_code_counts_the_compiled_count_counts_alike():
    # batch_counter.pyx keeps its own copy of the coupon events' table (a review): one added to
    # batch_stats alone would be counted apart by each
    from actors.batch_stats import _COUPON_EVENTS

    for kind in _COUPON_EVENTS:
        ledger = [LedgerEntry("m1", 1, 20_000, "txn", "t", 1, kind, coupon_code="c1-m1-1")]
        compiled, pure = counted_both_ways(BatchStats({}), ledger)
        assert compiled == pure
        assert count_ledger_common(BatchStats({}), ledger, coupons := {}) == []
        assert coupons == pure.coupons != {}
