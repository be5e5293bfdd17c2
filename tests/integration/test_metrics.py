"""What SREs see: /metrics scraped with prometheus-client's own parser after a known workload,
and health that follows the shards."""

import time
import urllib.request

import ray
from prometheus_client.parser import text_string_to_metric_families

from client import PatronClient
from engine.calendar import parse_day
from tests.builders import ms


def scrape(port: int) -> dict[tuple, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def purchase(txn_id: str, member: str, paid: int, **extra: object) -> dict:
    return {"txn_id": txn_id, "member_id": member, "occurred_at_ms": ms("2026-11-17 10:00"), "kind": "purchase",
            "lines": [{"sku": "A", "paid_minor": paid}], **extra}


def test_counters_equal_what_was_sent_per_outcome(start_server):
    server = start_server(shards=2, start_date=parse_day("2026-11-17"), metrics_port=0)
    batch = ([purchase(f"t{n}", f"m{n % 9}", 2900) for n in range(30)]
             + [purchase("t0", "m0", 2900), purchase("t1", "m1", 2900)]                        # duplicates
             + [purchase(f"p{n}", "m1", 2900, status="pending") for n in range(4)]               # ignored
             + [{"txn_id": "x1", "member_id": "", "kind": "purchase"}]                           # rejected
             + [{"txn_id": "r1", "member_id": "m0", "occurred_at_ms": ms("2026-11-17 11:00"), "kind": "refund",
                 "refund_of": "t0", "amount_minor": 2900}])
    with PatronClient(server.address) as client:
        client.submit(batch[:20])
        client.submit(batch[20:])
    samples = scrape(server.server.metrics_port)
    count = value
    assert count(samples, "patron_transactions_total", kind="purchase", outcome="accepted", reason="") == 30
    assert count(samples, "patron_transactions_total", kind="purchase", outcome="duplicate", reason="") == 2
    assert count(samples, "patron_transactions_total", kind="purchase", outcome="ignored", reason="not_paid") == 4
    assert count(samples, "patron_transactions_total", kind="purchase", outcome="rejected",
                 reason="missing_member_id") == 1
    assert count(samples, "patron_transactions_total", kind="refund", outcome="accepted", reason="") == 1
    assert count(samples, "patron_points_awarded_total") == 30 * 20
    assert count(samples, "patron_points_reversed_total") == 20
    assert count(samples, "patron_batch_latency_seconds_count") == 2
    shards = [count(samples, "patron_shard_apply_seconds_count", shard=s) for s in ("0", "1")]
    assert sum(shards) >= 2
    assert count(samples, "patron_batches_in_flight") == 0


def test_gauges_show_members_rules_and_points_liability(start_server):
    server = start_server(shards=2, start_date=parse_day("2026-11-17"), metrics_port=0)
    with PatronClient(server.address) as client:
        client.submit([purchase(f"t{n}", f"m{n}", 2900) for n in range(12)])
    deadline = time.monotonic() + 30
    while (samples := scrape(server.server.metrics_port)) and sum(
            value(samples, "patron_members", shard=s) for s in ("0", "1")) < 12:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert value(samples, "patron_rules_version") == 1
    assert value(samples, "patron_shard_up", shard="0") == 1
    assert value(samples, "patron_lmdb_bytes", shard="1") > 0
    assert value(samples, "patron_points_liability", expiry_month="2028-01") == 12 * 20


def test_midnight_runs_show_when_they_last_succeeded(start_server):
    server = start_server(start_date=parse_day("2026-11-17"), metrics_port=0)
    before = time.time()
    with PatronClient(server.address) as client:
        client.run_midnight("2026-11-19")
    samples = scrape(server.server.metrics_port)
    assert value(samples, "patron_midnight_last_success_timestamp_seconds") >= before
    assert value(samples, "patron_midnight_runs_total") == 2


def test_health_is_not_serving_while_a_shard_is_down(start_server):
    server = start_server(shards=2, start_date=parse_day("2026-11-17"))
    with PatronClient(server.address) as client:
        assert client.serving("patron.v1.Ingest")
        ray.kill(server.server.coordinator.actors[1], no_restart=True)
        deadline = time.monotonic() + 30
        while client.serving("patron.v1.Ingest"):
            assert time.monotonic() < deadline, "health stayed SERVING with a shard down"
            time.sleep(0.05)
        assert not client.serving("")
