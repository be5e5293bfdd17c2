"""What SREs see: /metrics scraped with prometheus-client's own parser after a known workload,
and health that follows the shards."""

import os
import time
import urllib.request
from collections.abc import Callable

import ray
from prometheus_client.parser import text_string_to_metric_families

from actors.object_memory import kernel_mode
from actors.routing import even_layout, shard_of
from client import PatronClient
from engine.calendar import parse_day
from tests.builders import ms
from tests.conftest import EXAMPLE_RULES, TEST_DAY


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
    for shard in ("0", "1"):  # m4-m7 live on shard 0, the others on shard 1: each commits
        commits = count(samples, "patron_shard_commit_seconds_count", shard=shard)
        assert commits >= 1
        assert count(samples, "patron_shard_disk_write_seconds_count", shard=shard) == commits
        assert 0 < count(samples, "patron_shard_disk_write_seconds_sum", shard=shard) <= count(
            samples, "patron_shard_commit_seconds_sum", shard=shard)
    assert count(samples, "patron_batches_in_flight") == 0
    # every transaction sent was answered by some shard's commit, each commit observed once
    assert sum(count(samples, "patron_shard_commit_transactions_sum", shard=s) for s in ("0", "1")) == len(batch)
    for shard in ("0", "1"):
        assert count(samples, "patron_shard_commit_transactions_count", shard=shard) == count(
            samples, "patron_shard_commit_seconds_count", shard=shard)


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
    assert value(samples, "patron_compiled_wire") == 1  # the gateway and both shards read with the compiled code
    # walking every member's lots, the liability is read once a minute, first at the start: it
    # may have been read before the purchases were committed
    while value(samples, "patron_points_liability", expiry_month="2028-01") != 12 * 20:
        assert time.monotonic() < deadline + 60
        time.sleep(0.5)
        samples = scrape(server.server.metrics_port)
    assert samples[("patron_tags_not_shown", ())] == 0
    assert [name for name, _ in samples if name.endswith("_created")] == []  # listed in no guide
    with PatronClient(server.address) as client:  # 10,000.00 in 3 months: Gold at once
        client.submit([purchase("gold", "mg", 1_000_000)])
    moves = scrape(server.server.metrics_port)
    assert value(moves, "patron_tier_changes_total", from_tier="Basic", to_tier="Gold") == 1


def test_midnight_runs_show_when_they_last_succeeded(start_server):
    from engine.calendar import LocalCalendar

    server = start_server(start_date=parse_day("2026-11-17"), metrics_port=0)
    with PatronClient(server.address) as client:
        client.run_midnight("2026-11-19")
    samples = scrape(server.server.metrics_port)
    # the midnight that began the date reached, not the time it finished: a folder caught up one date
    # of weeks behind read as current, and PatronNoMidnightRun went silent (an outside probe)
    reached = LocalCalendar("Asia/Shanghai").midnight_ms(parse_day("2026-11-19")) / 1000  # the example rules' zone
    assert value(samples, "patron_midnight_last_success_timestamp_seconds") == reached
    assert value(samples, "patron_midnight_runs_total") == 2
    # every coupon of the rules has its counters from the start, at 0, before any is used
    for event in ("issued", "used", "expired", "out_of_stock"):
        assert samples[(f"patron_coupons_{event}_total", (("coupon", "RECHARGE20"),))] == 0


def test_after_a_restart_the_last_run_and_checkpoint_are_read_from_the_folder(start_server, tmp_path):
    # an outside probe: empty after every restart, they kept PatronNoMidnightRun silent for a day
    from engine.calendar import LocalCalendar

    data = tmp_path / "data"
    server = start_server(start_date=parse_day("2026-11-17"), data=data, metrics_port=0)
    began = LocalCalendar("Asia/Shanghai").midnight_ms(parse_day("2026-11-17")) / 1000  # the example rules' zone
    samples = scrape(server.server.metrics_port)
    assert value(samples, "patron_midnight_last_success_timestamp_seconds") == began
    assert value(samples, "patron_checkpoint_last_success_timestamp_seconds") == 0
    with PatronClient(server.address) as client:
        client.submit([purchase("t1", "m1", 2900)])
        client.run_midnight("2026-11-18")
        made = value(scrape(server.server.metrics_port), "patron_checkpoint_last_success_timestamp_seconds")
    server.stop()
    again = start_server(data=data, metrics_port=0)
    samples = scrape(again.server.metrics_port)
    assert value(samples, "patron_midnight_last_success_timestamp_seconds") == began + 86_400
    assert made - 1 <= value(samples, "patron_checkpoint_last_success_timestamp_seconds") <= made
    liability = wait_for(again.server.metrics_port, lambda samples: any(
        name == "patron_points_liability" for name, _ in samples), seconds=15)
    assert sum(v for (name, _), v in liability.items() if name == "patron_points_liability") == 20


def test_the_liability_is_read_once_every_shard_answers_after_a_slow_start(start_server, monkeypatch):
    # a shard slow to start (its members indexed) left the gauge empty for a minute (an outside probe)
    from actors import coordinator

    answer, silent, unanswered = coordinator._answer, [True], []

    async def slow_to_start(call: object, timeout: float = 5.0) -> object:
        if silent[0]:
            unanswered.append(call)
            return TimeoutError()
        return await answer(call, timeout)

    monkeypatch.setattr(coordinator, "_answer", slow_to_start)
    server = start_server(start_date=parse_day("2026-11-17"), metrics_port=0)
    with PatronClient(server.address) as client:
        client.submit([purchase("t1", "m1", 2900)])
    # the watch's first rounds: no shard answers it (each round asks every shard for its status;
    # once the second round has begun, the first, with the liability due, is over)
    deadline = time.monotonic() + 30
    while len(unanswered) < 2 * len(server.server.coordinator.actors):
        assert time.monotonic() < deadline, "the watch did not look at the shards"
        time.sleep(0.05)
    silent[0] = False
    liability = wait_for(server.server.metrics_port, lambda samples: any(
        name == "patron_points_liability" for name, _ in samples), seconds=15)
    assert sum(v for (name, _), v in liability.items() if name == "patron_points_liability") == 20


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
        # status is what an operator asks for now: it answered UNAVAILABLE while a shard was down
        shards = client.status().shards
        assert [(s.shard, s.ready) for s in shards] == [(0, True), (1, False)]
        assert (shards[0].down, shards[0].business_day) == ("", "2026-11-17")
        assert "RayActorError" in shards[1].down or "ActorDied" in shards[1].down, shards[1].down


def spend(txn_id: str, member: str, kind: str, minute: int, **fields: object) -> dict:
    return {"txn_id": txn_id, "member_id": member, "occurred_at_ms": ms(f"{TEST_DAY} 11:{minute:02d}"),
            "kind": kind, **fields}


def wait_for(port: int, done: Callable[[dict], bool], seconds: float = 30) -> dict:
    """Scrape until `done` holds: gauges and changes outside batches show within the watch's second."""
    deadline = time.monotonic() + seconds
    while not done(samples := scrape(port)):
        assert time.monotonic() < deadline, "the metric did not move within 30 s"
        time.sleep(0.2)
    return samples


def stored_value(samples: dict) -> tuple[float, float]:
    return tuple(value(samples, "patron_stored_value_outstanding_minor", part=part) for part in ("principal", "bonus"))


def held(client: PatronClient, members: list[str]) -> tuple[int, int]:
    found = [client.member(member) for member in members]
    return sum(m.stored_value for m in found), sum(m.bonus_value_minor for m in found)


def test_spending_metrics_move_as_the_stream_says_and_stored_value_is_right_after_a_restart(start_server, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(EXAMPLE_RULES.read_text().replace("inventory = 200000", "inventory = 2")  # RECHARGE20
                     .replace('action = "flag"', 'action = "hold"'))  # m4's held points are voided below
    data = tmp_path / "data"
    server = start_server(data=data, rules=rules, metrics_port=0, shards=1)  # the whole inventory on one shard
    earn = [purchase("t1", "m1", 100_000), purchase("t2", "m2", 2900), purchase("t3", "m3", 2900),
            purchase("t4", "m4", 600_000)]  # past the day's threshold: held
    spending = [spend("d1", "m1", "redeem", 1, points=300), spend("d2", "m1", "redeem", 2, points=200),
                spend("f1", "m1", "refund", 3, refund_of="d2"),
                spend("d3", "m3", "redeem", 4, points=99_999),                               # insufficient_points
                spend("c1", "m2", "recharge", 5, amount_minor=20_000),
                spend("p1", "m2", "payment", 6, amount_minor=5_000),
                spend("p2", "m3", "payment", 7, amount_minor=5_000),                          # insufficient_balance
                spend("i1", "m3", "coupon_issue", 8, coupon_id="RECHARGE20"),
                spend("i2", "m2", "coupon_issue", 9, coupon_id="RECHARGE20"),
                spend("i3", "m1", "coupon_issue", 10, coupon_id="RECHARGE20"),                # out_of_stock
                spend("i4", "m1", "coupon_issue", 11, coupon_id="BIRTHDAY-CAKE"),
                spend("u1", "m3", "coupon_use", 12, coupon_code="RECHARGE20-m3-1", amount_minor=12_000,
                      lines=[{"sku": "A", "paid_minor": 12_000}]),
                spend("u2", "m3", "coupon_use", 13, coupon_code="RECHARGE20-m3-1", amount_minor=12_000,
                      lines=[{"sku": "A", "paid_minor": 12_000}])]                           # coupon_used
    with PatronClient(server.address) as client:
        client.submit(earn)
        client.submit(spending)
        samples = scrape(server.server.metrics_port)
        assert value(samples, "patron_points_redeemed_total") == 500
        assert value(samples, "patron_points_restored_total") == 200
        assert value(samples, "patron_coupons_issued_total", coupon="WELCOME10") == 4       # on enrollment
        assert value(samples, "patron_coupons_issued_total", coupon="RECHARGE20") == 2
        assert value(samples, "patron_coupons_issued_total", coupon="BIRTHDAY-CAKE") == 1
        assert value(samples, "patron_coupons_out_of_stock_total", coupon="RECHARGE20") == 1
        assert value(samples, "patron_coupons_used_total", coupon="RECHARGE20") == 1
        rejected = {reason: value(samples, "patron_transactions_total", kind=kind, outcome="rejected", reason=reason)
                    for kind, reason in [("redeem", "insufficient_points"), ("payment", "insufficient_balance"),
                                         ("coupon_issue", "out_of_stock"), ("coupon_use", "coupon_used")]}
        assert rejected == {"insufficient_points": 1, "insufficient_balance": 1, "out_of_stock": 1, "coupon_used": 1}
        principal, bonus = held(client, ["m1", "m2", "m3"])
        assert bonus > 0  # "recharge 100, get 10"
        assert principal + bonus == 20_000 + 1_000 - 5_000
        wait_for(server.server.metrics_port, lambda s: stored_value(s) == (principal, bonus))
        client.run_midnight("2026-12-01", allow_future=True)  # BIRTHDAY-CAKE was valid 14 days from TEST_DAY
        expired = wait_for(server.server.metrics_port,
                           lambda s: value(s, "patron_coupons_expired_total", coupon="BIRTHDAY-CAKE") > 0)
        assert value(expired, "patron_coupons_expired_total", coupon="BIRTHDAY-CAKE") == 1
        assert value(expired, "patron_coupons_expired_total", coupon="WELCOME10") == 0  # valid through 2026-12-17
        client.adjust("m1", -150, "goodwill taken back", request_id="adj-1")
        client.adjust("m2", 40, "goodwill", request_id="adj-2")
        voided = client.member("m4").pending_points
        assert voided > 0
        client.set_status("m4", "void_held", "fraud confirmed")
        counted = wait_for(server.server.metrics_port, lambda s: value(s, "patron_points_deducted_total") > 150)
        assert value(counted, "patron_points_deducted_total") == 150 + voided
        # the counters follow the balances (a negative adjustment, and voided held points, were counted nowhere)
        moved = sum(sign * value(counted, f"patron_points_{name}_total") for sign, name in [
            (1, "awarded"), (-1, "deducted"), (-1, "reversed"), (-1, "expired"), (-1, "redeemed"), (1, "restored")])
        members = [client.member(m) for m in ("m1", "m2", "m3", "m4")]
        assert moved == sum(m.points + m.pending_points for m in members)
    server.stop()
    again = start_server(data=data, rules=rules, metrics_port=0)
    samples = wait_for(again.server.metrics_port, lambda s: value(s, "patron_shard_up", shard="0") == 1)
    assert stored_value(samples) == (principal, bonus)
    assert value(samples, "patron_points_redeemed_total") == 0  # counters start again with the process


def test_each_shard_says_whether_its_objects_are_on_huge_pages(start_server):
    server = start_server(shards=2, start_date=parse_day("2026-11-17"))
    said = {ray.get(actor.status.remote()).huge_pages for actor in server.server.coordinator.actors}
    mode = kernel_mode()
    if os.environ.get("PATRON_HUGE_PAGES") == "off":  # the operator's switch, inherited by Ray's workers
        assert said == {"off: PATRON_HUGE_PAGES=off"}
    elif mode in (None, "never"):
        assert said == {f"off: the kernel's transparent huge pages are {mode or 'not offered'}"}
    else:
        assert said == {"on"}


def test_counts_survive_a_shards_death_and_are_recorded_while_another_is_down(start_server):
    # they were held in the shard's memory until the watch's next look: a shard killed right after
    # an enrollment took half of the welcome coupons and their events out of the counters; and they
    # were recorded only while every shard answered, so a shard down held back every other's
    server = start_server(shards=2, start_date=parse_day("2026-11-17"), metrics_port=0)
    coordinator, port = server.server.coordinator, server.server.metrics_port
    pids = [ray.get(actor.pid.remote()) for actor in coordinator.actors]
    layout = even_layout(2)
    later = [m for m in (f"x{n}" for n in range(60)) if shard_of(layout, m) == 0]
    with PatronClient(server.address, retries=40) as client:
        answer = client.enroll_many([{"member_id": f"w{n}"} for n in range(100)])
        assert all(not m.error for m in answer.members)
        for pid in pids:  # at once: before the watch's next look, as a crash would
            os.kill(pid, 9)
        deadline = time.monotonic() + 60
        while not client.serving("patron.v1.Ingest"):
            assert time.monotonic() < deadline, "the shards did not come back"
            time.sleep(0.1)
        wait_for(port, lambda samples: (
            value(samples, "patron_coupons_issued_total", coupon="WELCOME10"),
            value(samples, "patron_events_written_total", kind="coupon_issued")) == (100, 100))
        # each new process counted: a shard crashing every few seconds never held PatronShardDown's minute
        wait_for(port, lambda samples: [value(samples, "patron_shard_restarts_total", shard=s) for s in "01"] == [1, 1])
        ray.kill(coordinator.actors[1], no_restart=True)
        answer = client.enroll_many([{"member_id": m} for m in later])
        assert all(not m.error for m in answer.members)
    wait_for(port, lambda samples: value(
        samples, "patron_coupons_issued_total", coupon="WELCOME10") == 100 + len(later))
