"""Crash safety, short version: a few kills while streaming with a window of batches in flight,
each batch holding full refunds of purchases in the batch before; everything equals replay
afterwards. The long version (at least 20 kills) is `patron bench crash`."""

from bench.crash import crash_run
from bench.workload import Workload
from tests.conftest import EXAMPLE_RULES


def assert_three_kills_lost_doubled_and_reordered_nothing(report, transactions: int, refunds_over: int) -> None:
    """What every short crash run must show: two shard kills and one of the server happened, the
    refunds of the batch before were sent, and every result and member equals replay."""
    assert (report.shard_kills, report.serve_kills) == (2, 1)
    assert report.dependent_refunds > refunds_over
    assert report.result_mismatches == []
    assert report.member_mismatches == []
    assert report.transactions == transactions + report.dependent_refunds


def test_killing_the_server_and_shard_actors_while_streaming_loses_doubles_and_reorders_nothing(tmp_path):
    # crash_run serves with --start-date at the workload's start: the business day is pinned.
    # Batches of 50: the compiled shard answered 26 batches of 200 so fast that a kill could land
    # after the last answer (none resent, the ordering untested); 105 batches keep each kill inside
    # the stream (3 breaks and 24 resent in each of three runs, against 1-2 and 8 with 200).
    workload = Workload(transactions=5_000, members=700, days=1, start="2026-11-17", seed=23)
    report = crash_run(tmp_path, EXAMPLE_RULES, workload, kills=3, seed=5, window=8, batch_size=50)
    assert_three_kills_lost_doubled_and_reordered_nothing(report, 5_000, refunds_over=200)
    assert report.resent_batches > 0
