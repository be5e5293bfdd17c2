"""`patron serve --hot-members N`: shards that keep a few members in memory agree with replay,
and a kill -9 while members are leaving memory loses nothing."""

import time

from bench.crash import crash_run
from bench.workload import Workload, generate
from client import PatronClient
from engine.calendar import parse_day
from tests.conftest import EXAMPLE_RULES
from tests.integration.test_agreement import WORKLOAD, assert_members_and_ledgers, replayed, served
from tests.integration.test_crash import assert_three_kills_lost_doubled_and_reordered_nothing
from tests.integration.test_metrics import scrape, value

HOT = 5


def test_a_small_hot_set_serves_what_replay_computes(start_server, tmp_path, disk_tmp_path):
    # a budget of 1 MiB: every shard gives LMDB's mapped pages back before every batch (its data on
    # a disk, where they are the file-backed memory the budget counts)
    server = start_server(data=disk_tmp_path / "data", shards=2, start_date=parse_day(WORKLOAD.start),
                          hot_members=HOT, metrics_port=0, mapped_budget_mib=1)
    expected_results, expected_members, expected_ledger = replayed(tmp_path)
    with PatronClient(server.address) as client:
        assert served(client, list(generate(WORKLOAD))) == expected_results
        assert_members_and_ledgers(client, expected_members, expected_ledger)
    samples = _scraped_after_reads(server.server.metrics_port)
    for shard in ("0", "1"):
        assert 0 < value(samples, "patron_members_in_memory", shard=shard) <= HOT
        assert value(samples, "patron_member_loads", shard=shard) > len(expected_members) / 2
        assert value(samples, "patron_mapped_page_drops", shard=shard) > 0
    assert sum(value(samples, "patron_members", shard=s) for s in ("0", "1")) == len(expected_members)


def _scraped_after_reads(port: int, timeout: float = 10.0) -> dict:
    """The gauges follow the shards within a second or two: wait until they saw the reads."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(port)
        if value(samples, "patron_member_loads", shard="1") > 0 or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def test_killing_shards_and_the_server_while_members_leave_memory_loses_nothing(tmp_path):
    # three members in memory per shard: nearly every batch reads members from LMDB and drops others
    workload = Workload(transactions=3_000, members=500, days=1, start="2026-11-17", seed=31)
    report = crash_run(tmp_path, EXAMPLE_RULES, workload, kills=3, seed=7, window=8, hot_members=3)
    assert_three_kills_lost_doubled_and_reordered_nothing(report, 3_000, refunds_over=100)
