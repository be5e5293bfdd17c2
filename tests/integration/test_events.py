"""SPEC §11.9 events out through a real multi-shard server: each event exists exactly when its
change is committed, a subscriber resumes after its last position (across kill -9 too), a slow
subscriber changes nothing for ingestion, and positions past retention are OUT_OF_RANGE."""

import json
import time
from pathlib import Path

import grpc
import msgspec
import pytest

from actors.events_service import OLDEST_POSITION_KEY
from cli.main import main
from client import PatronClient
from engine.book import Book
from engine.calendar import parse_day
from engine.programme import Programme
from engine.replay import replay_stream
from engine.transactions import Transaction
from engine.validation import load_rules
from proto import patron_pb2 as pb
from proto import patron_pb2_grpc as pb_grpc
from tests.builders import ms, without_coupon_triggers
from tests.conftest import EXAMPLE_RULES, TEST_DAY, restored

GOLD = 1_000_000  # 10,000.00: Gold by spend, Silver by growth, and past the anomaly threshold (5,000 points)
RULES = EXAMPLE_RULES.read_text().replace(
    'policy = "jan1_after_years"         # never | jan1_after_years | rolling_days | annual_reset\nyears = 1',
    'policy = "rolling_days"\ndays = 5').replace("expiring_days = 30", "expiring_days = 7")


def purchase(txn_id: str, member: str, paid: int, when: str = f"{TEST_DAY} 10:00") -> dict:
    return {"txn_id": txn_id, "member_id": member, "occurred_at_ms": ms(when), "kind": "purchase",
            "lines": [{"sku": "A", "paid_minor": paid}]}


NO_COUPON_TRIGGERS = without_coupon_triggers(RULES)
"""For tests about other kinds: no coupon is issued on enrollment or upgrade."""


@pytest.fixture(scope="module")
def plain_server(ray_session, tmp_path_factory):
    """For the tests that only read: one server of the example rules for all of them."""
    from tests.conftest import two_shard_server

    yield from two_shard_server(tmp_path_factory, "events")


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(RULES)
    return path


@pytest.fixture
def quiet_rules(tmp_path: Path) -> Path:
    path = tmp_path / "quiet-rules.toml"
    path.write_text(NO_COUPON_TRIGGERS)
    return path


def take(client: PatronClient, count: int, after: str = "", kinds: tuple[str, ...] = ()) -> list[pb.Event]:
    """The next `count` events after `after`; fails if they do not come within the deadline."""
    stream = client.events.Subscribe(pb.SubscribeRequest(after=after, kinds=list(kinds)), timeout=60,
                                     metadata=client.metadata)
    try:
        return [next(stream) for _ in range(count)]
    finally:
        stream.cancel()


def nothing_after(client: PatronClient, after: str) -> bool:
    stream = client.events.Subscribe(pb.SubscribeRequest(after=after), timeout=1.5, metadata=client.metadata)
    try:
        next(stream)
    except grpc.RpcError as error:
        return error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    return False


def summary(events: list[pb.Event]) -> list[tuple[str, str, str]]:
    return [(e.kind, e.member_id, e.day) for e in events]


def test_every_kind_appears_exactly_when_its_change_is_committed(start_server, rules):
    server = start_server(rules=rules, shards=2)
    with PatronClient(server.address) as client:
        assert nothing_after(client, "")
        client.enroll("birthday-girl", birthday="11-21")  # reminded 3 days ahead: at the run of the 18th
        client.submit([purchase("t1", "small", 2900), purchase("t2", "big", GOLD)])
        first = take(client, 6)  # the example's WELCOME10 on enrollment, GOLD-WINE on reaching Gold
        assert sorted(summary(first)) == sorted([
            ("coupon_issued", "birthday-girl", TEST_DAY), ("coupon_issued", "small", TEST_DAY),
            ("coupon_issued", "big", TEST_DAY), ("anomaly_flagged", "big", TEST_DAY), ("tier_changed", "big", TEST_DAY),
            ("coupon_issued", "big", TEST_DAY)])
        codes = sorted(json.loads(e.detail)["code"] for e in first if e.kind == "coupon_issued")
        assert codes == ["GOLD-WINE-big-1", "WELCOME10-big-1", "WELCOME10-birthday-girl-1", "WELCOME10-small-1"]
        tier = json.loads(next(e for e in first if e.kind == "tier_changed").detail)
        assert (tier["from_tier"], tier["to_tier"], tier["cause"], tier["ref"]) == ("Basic", "Gold", "txn", "t2")
        last = first[-1].position
        client.submit([purchase("t2", "big", GOLD)])  # a duplicate changes nothing: no event
        assert nothing_after(client, last)
        client.run_midnight("2026-11-18")
        reminders = take(client, 3, after=last)
        assert sorted(summary(reminders)) == [("birthday", "birthday-girl", "2026-11-18"),
                                              ("points_expiring", "big", "2026-11-18"),
                                              ("points_expiring", "small", "2026-11-18")]
        expiring = {e.member_id: json.loads(e.detail) for e in reminders if e.kind == "points_expiring"}
        assert expiring["small"] == {"points": 20, "expires": "2026-11-22", "last_day": "2026-11-21"}
        assert json.loads(next(e for e in reminders if e.kind == "birthday").detail)["birthday"] == "2026-11-21"
        assert nothing_after(client, reminders[-1].position)
        client.run_midnight("2026-11-19")  # reminded once: the next run says nothing again
        assert nothing_after(client, reminders[-1].position)
        assert summary(take(client, 1, kinds=("birthday",))) == [("birthday", "birthday-girl", "2026-11-18")]


def test_a_subscriber_resumes_after_its_last_position_across_kill_9_of_the_server(tmp_path, rules, serve_process):
    data = tmp_path / "data"
    serve = serve_process(data, "--shards", "2", rules=rules)
    client = serve.client()
    client.submit([purchase(f"t{n}", f"m{n}", GOLD) for n in range(30)])
    seen = take(client, 25)  # the subscriber processed 25 events, then it was killed
    serve.kill()
    client.close()
    serve = serve_process(data, "--shards", "2", rules=rules)
    client = serve.client()
    client.submit([purchase(f"u{n}", f"m{n + 30}", GOLD) for n in range(10)])
    rest = take(client, 40 * 4 - 25, after=seen[-1].position)
    everything = summary(seen + rest)
    kinds = ("anomaly_flagged", "tier_changed", "coupon_issued", "coupon_issued")  # WELCOME10, and GOLD-WINE on Gold
    expected = [(kind, f"m{n}", TEST_DAY) for n in range(40) for kind in kinds]
    assert sorted(everything) == sorted(expected)  # none missed, none twice
    assert nothing_after(client, rest[-1].position)
    client.close()


def replayed(rules_text: str, txns: list[dict]) -> list[tuple]:
    book = Book(Programme(load_rules(rules_text)))
    return [(r.txn_id, r.outcome, r.points, r.growth, r.reason)
            for r in replay_stream(book, [msgspec.convert(t, Transaction) for t in txns])]


def test_a_slow_subscriber_neither_changes_nor_blocks_ingestion(start_server, quiet_rules):
    server = start_server(rules=quiet_rules, shards=2)
    metrics = server.server.metrics.registry
    txns = [purchase(f"t{n}", f"m{n}", GOLD if n % 2 else 2900) for n in range(6000)]
    with PatronClient(server.address) as client:
        slow = client.subscribe(name="slow")
        acks = [client.submit(txns[:1000])]
        first = next(slow)  # then it stops reading, with its stream open
        acks += [client.submit(txns[start:start + 1000]) for start in range(1000, len(txns), 1000)]
        got = [(r.txn_id, pb.Outcome.Name(r.outcome)[8:].lower(), r.points, r.growth, r.reason)
               for ack in acks for r in ack.results]
        assert got == replayed(NO_COUPON_TRIGGERS, txns)
        assert metrics.get_sample_value("patron_event_subscribers") == 1
        others = take(client, 6000)  # another subscriber meanwhile gets everything, whatever the slow one does
        rest = [next(slow) for _ in range(6000 - 1)]  # it catches up from LMDB: everything, in order per shard
        slow.cancel()
    everything = [first, *rest]
    assert sorted(summary(others)) == sorted(summary(everything))
    assert sorted(summary(everything)) == sorted(
        (kind, f"m{n}", TEST_DAY) for n in range(1, 6000, 2) for kind in ("anomaly_flagged", "tier_changed"))
    for member in ("m1", "m2999"):
        assert [e.kind for e in everything if e.member_id == member] == ["anomaly_flagged", "tier_changed"]


def test_a_subscriber_that_stopped_reading_does_not_hold_up_a_stop(start_server, quiet_rules):
    # its stream, blocked on the reader, waited out gRPC's grace: 30 s at every SIGTERM (an outside probe)
    server = start_server(rules=quiet_rules, shards=2)
    small = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 16 << 10)]  # it holds 16 KB unread
    with PatronClient(server.address) as client, grpc.insecure_channel(server.address, options=small) as channel:
        for start in range(0, 3000, 1000):  # 6,000 events: far more than the reader and gRPC's buffers hold
            client.submit([purchase(f"t{n}", f"m{n}", GOLD) for n in range(start, start + 1000)])
        stalled = pb_grpc.EventsStub(channel).Subscribe(pb.SubscribeRequest(), timeout=120)
        next(stalled)  # then it stops reading
        time.sleep(1.0)  # the gateway's writes fill what the connection holds, and wait
        started = time.monotonic()
        server.stop(grace=60)
        assert time.monotonic() - started < 30, "the stop waited for the subscriber that stopped reading"
        with pytest.raises(grpc.RpcError) as ended:
            for _ in stalled:  # what was buffered, then the end
                pass
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_position_older_than_retention_is_out_of_range_with_the_oldest_held(start_server, quiet_rules):
    server = start_server(rules=quiet_rules, shards=2)
    with PatronClient(server.address) as client:
        client.submit([purchase("t1", "a", GOLD), purchase("t2", "b", GOLD)])
        old = take(client, 4)
        client.run_midnight("2026-11-24")  # kept 7 days: the run of the 24th keeps the 17th
        assert len(take(client, 4)) == 4
        client.submit([purchase("t3", "c", GOLD, "2026-11-24 10:00")])
        client.run_midnight("2026-11-25")  # and the run of the 25th prunes it
        with pytest.raises(grpc.RpcError) as raised:
            take(client, 1, after=old[0].position)
        assert raised.value.code() == grpc.StatusCode.OUT_OF_RANGE
        oldest = dict(raised.value.trailing_metadata())[OLDEST_POSITION_KEY]
        assert oldest in raised.value.details()
        kept = take(client, 4, after=oldest)  # the reminders of the 18th, then c's upgrade
        assert sorted(summary(kept)) == sorted(summary(take(client, 4)))  # an empty position: the oldest held too
        assert sorted(summary(kept)) == [("anomaly_flagged", "c", "2026-11-24"), ("points_expiring", "a", "2026-11-18"),
                                         ("points_expiring", "b", "2026-11-18"), ("tier_changed", "c", "2026-11-24")]


def test_a_subscriber_of_some_kinds_resumes_where_only_other_kinds_were_pruned(start_server, quiet_rules):
    """Its position moves with its own kinds only: after a retention window without one of them it
    was refused OUT_OF_RANGE, told events were pruned, though none of its kinds had been."""
    server = start_server(rules=quiet_rules, shards=1)
    with PatronClient(server.address) as client:
        client.submit([purchase("t1", "a", GOLD)])  # an anomaly, then a's upgrade
        [flag] = take(client, 1, kinds=("anomaly_flagged",))
        client.run_midnight("2026-11-25")  # kept 7 days: the 17th's events are pruned
        client.submit([purchase("t2", "b", GOLD, "2026-11-25 10:00")])
        [resumed] = take(client, 1, after=flag.position, kinds=("anomaly_flagged",))
        assert (resumed.kind, resumed.member_id) == ("anomaly_flagged", "b")
        with pytest.raises(grpc.RpcError) as raised:  # every kind: a's upgrade after it was pruned
            take(client, 1, after=flag.position)
        assert raised.value.code() == grpc.StatusCode.OUT_OF_RANGE


@pytest.mark.parametrize(("after", "kinds"), [("nonsense", ()), ("v1:1", ()), ("v1:1.-2", ()), ("", ("upgrade",)),
                                              ("v1:18446744073709551616.0", ()),  # past 64 bits: was INTERNAL
                                              ("v1:18446744073709551615.0", ())])  # the next is past them
def test_a_bad_position_or_kind_is_invalid_argument(plain_server, after, kinds):
    with PatronClient(plain_server.address) as client, pytest.raises(grpc.RpcError) as raised:
        take(client, 1, after=after, kinds=kinds)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_patron_events_tail_prints_json_lines_and_a_clear_error_when_the_server_is_down(start_server, rules, capsys,
                                                                                       monkeypatch):
    server = start_server(rules=rules, shards=2)
    with PatronClient(server.address) as client:
        client.submit([purchase("t1", "a", GOLD)])
    with pytest.raises(SystemExit) as done:
        main(["events", "tail", "--address", server.address, "--count", "1", "--kinds", "tier_changed"])
    assert done.value.code == 0
    # Ray forwards its workers' output to this process's stdout, prefixed "(Actor pid=…)", and a
    # line of an earlier test's actor can land here: the command's own lines are JSON objects
    [line] = [text for text in capsys.readouterr().out.splitlines() if text.startswith("{")]
    event = json.loads(line)
    assert (event["kind"], event["member_id"], event["day"], event["detail"]["to_tier"]) == (
        "tier_changed", "a", TEST_DAY, "Gold")
    server.stop()
    # one retry, not the default eight (about 10 s of back-off): the last retry still ends in that
    # one line, as tests/test_cli_failures.py has every command show with PATRON_RETRIES
    monkeypatch.setenv("PATRON_RETRIES", "1")
    with pytest.raises(SystemExit) as done:
        main(["events", "tail", "--address", server.address, "--after", event["position"]])
    assert done.value.code == 1
    # the test process's own Ray forwards its workers' lines to the same stderr, at any time
    [error] = [line for line in capsys.readouterr().err.splitlines() if "(ShardActor" not in line]
    assert error.startswith(f"patron: cannot reach patron at {server.address}")


def test_read_and_admin_may_subscribe_and_ingest_may_not(start_server, tmp_path):
    tokens = {"ingest": "ingest-token-0123456789", "read": "read-token-0123456789", "admin": "admin-token-0123456789"}
    path = tmp_path / "tokens"
    path.write_text("".join(f"{role} {token}\n" for role, token in tokens.items()))
    server = start_server(tokens_file=path, start_date=parse_day(TEST_DAY))
    for role, allowed in (("read", True), ("admin", True), ("ingest", False)):
        with PatronClient(server.address, token=tokens[role], retries=0) as client:
            if allowed:
                assert nothing_after(client, "")
            else:
                with pytest.raises(grpc.RpcError) as raised:
                    take(client, 1)
                assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_health_and_reflection_list_the_events_service(plain_server):
    with PatronClient(plain_server.address) as client:
        assert client.serving("patron.v1.Events")


def test_subscribers_past_the_bound_are_refused_until_one_ends(start_server, rules, monkeypatch):
    monkeypatch.setattr("actors.events_service.MAX_SUBSCRIBERS", 2)
    server = start_server(rules=rules, shards=2)
    with PatronClient(server.address) as client:
        client.submit([purchase("t1", "a", GOLD)])  # its events: each stream below is answered once served
        streams = [client.events.Subscribe(pb.SubscribeRequest(), timeout=60, metadata=client.metadata)
                   for _ in range(2)]
        assert [next(stream).member_id for stream in streams] == ["a", "a"]
        with pytest.raises(grpc.RpcError) as raised:
            take(client, 1)
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "2 subscribers are reading events already" in raised.value.details()
        streams.pop().cancel()
        assert _once_room(client)[0].member_id == "a"
        streams[0].cancel()


def _once_room(client: PatronClient) -> list[pb.Event]:
    """An event, once a subscriber's place is free: the gateway sees a cancelled stream end
    shortly after."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return take(client, 1)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def test_after_a_restore_a_subscriber_resumes_from_its_last_position_and_misses_nothing(
        start_server, quiet_rules, tmp_path, capsys):
    # the restored outbox numbered its next events as the lost ones had been numbered, and a
    # subscriber resuming from a position it was given before the restore skipped them
    data = tmp_path / "data"
    server = start_server(data=data, rules=quiet_rules, shards=1)
    with PatronClient(server.address) as client:
        client.submit([purchase(f"a{n}", f"a{n}", GOLD) for n in range(3)])
        made = client.checkpoint()
        started = int(time.time() * 1000)
        client.submit([purchase(f"b{n}", f"b{n}", GOLD) for n in range(3)])
        seen = take(client, 6, kinds=("tier_changed",))
        assert [e.member_id for e in seen] == ["a0", "a1", "a2", "b0", "b1", "b2"]
        assert started <= seen[-1].at_ms <= int(time.time() * 1000)  # when its commit was made
    again = restored(server, start_server, made.name, rules=quiet_rules)
    with PatronClient(again.address) as client:
        client.submit([purchase(f"c{n}", f"c{n}", GOLD) for n in range(3)])
        for last in (seen[-1], seen[2]):  # after an event the restore lost, and after one it kept
            assert [e.member_id for e in take(client, 3, last.position, ("tier_changed",))] == ["c0", "c1", "c2"]


def test_after_a_restore_to_fewer_shards_a_position_naming_more_resumes_and_shards_added_again_skip_nothing(
        start_server, quiet_rules, tmp_path):
    # an outside probe: a position given by 4 shards was refused by the 2 a checkpoint had
    # (INVALID_ARGUMENT, leaving a notifier only the oldest event), and shards added again numbered
    # their events from 1, so the same position skipped as many of theirs as it named (461 events)
    server = start_server(data=tmp_path / "data", rules=quiet_rules, shards=1)
    with PatronClient(server.address) as client:
        client.submit([purchase(f"a{n}", f"a{n}", GOLD) for n in range(3)])
        made = client.checkpoint()  # of one shard
        client.rebalance(2)
        assert not client.follow_resharding(every=0.1).error
        client.submit([purchase(f"b{n}", f"b{n}", GOLD) for n in range(20)])
        last = take(client, 23, kinds=("tier_changed",))[-1].position
    assert last.count(".") == 1  # two shards' parts
    assert not last.endswith(".0")  # the second shard's events among those given
    again = restored(server, start_server, made.name, rules=quiet_rules)
    with PatronClient(again.address) as client:
        client.submit([purchase(f"c{n}", f"c{n}", GOLD) for n in range(20)])
        assert {e.member_id for e in take(client, 20, last, ("tier_changed",))} == {f"c{n}" for n in range(20)}
        client.rebalance(2)
        assert not client.follow_resharding(every=0.1).error
        client.submit([purchase(f"d{n}", f"d{n}", GOLD) for n in range(20)])
        resumed = {e.member_id for e in take(client, 40, last, ("tier_changed",))}
        assert resumed == {f"{letter}{n}" for letter in "cd" for n in range(20)}
