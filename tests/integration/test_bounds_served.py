"""SPEC §2 through the real server (two shards): extreme values in every field never answer
INTERNAL, never sink anyone else's batch, never make a member unreadable; an id is an
idempotency key within its member on every shard, and ids used by several members are reported."""

import json
import threading
import uuid

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client import PatronClient
from engine.bounds import LIMIT
from engine.calendar import iso, parse_day
from proto import patron_pb2 as pb
from tests.builders import ms
from tests.conftest import TEST_DAY
from tests.integration.test_startup import code_of

DAY = ms(f"{TEST_DAY} 10:00")  # the served tests' pinned business day
TOP, BOTTOM = 2**63 - 1, -(2**63)
BONUS = 1_000
"""The example rules' repeatable recharge bonus (a recharge of 100.00 or more), in the stored value."""
FUNCTION_SCOPED = [HealthCheck.function_scoped_fixture]

int64s = st.one_of(st.sampled_from([0, 1, -1, TOP, BOTTOM, LIMIT, LIMIT + 1, -LIMIT - 1]), st.integers(BOTTOM, TOP))
texts = st.one_of(st.sampled_from(["", "a", "t1", "x" * 101, "\x00", "é" * 100]),
                  st.text(st.characters(blacklist_categories=("Cs",)), max_size=120))
lines = st.builds(pb.LineItem, sku=texts, product_id=texts, category=texts, name=texts,
                  paid_minor=st.one_of(int64s, st.integers(0, 100_000)),
                  quantity=st.one_of(st.integers(0, 3), st.integers(-(2**31), 2**31 - 1)),
                  promotional=st.booleans(), member_discounted=st.booleans())
transactions = st.builds(
    pb.Transaction, txn_id=st.one_of(st.sampled_from(["t1", "t2"]), texts),
    member_id=st.one_of(st.sampled_from(["m-a", "m-b"]), texts),
    occurred_at_ms=st.one_of(st.just(DAY), int64s), kind=st.sampled_from([0, 1, 2, 3, 4, 5, 6, -1]),
    status=st.sampled_from([0, 1, 2, 3, 9]), store_id=texts, channel=texts, lines=st.lists(lines, max_size=3),
    refund_of=st.one_of(st.sampled_from(["t1", "t2"]), texts), event_type=st.one_of(st.just("sign_in"), texts),
    amount_minor=st.one_of(int64s, st.integers(0, 100_000)), note=texts)


@pytest.fixture(scope="module")
def server(ray_session, tmp_path_factory):
    from tests.conftest import two_shard_server

    yield from two_shard_server(tmp_path_factory, "bounds")


@settings(max_examples=40, deadline=None, suppress_health_check=FUNCTION_SCOPED)
@given(batch=st.lists(transactions, min_size=1, max_size=10))
def test_extreme_values_in_every_field_get_an_answer_per_transaction_and_members_stay_readable(server, batch):
    ordinary = pb.Transaction(txn_id=uuid.uuid4().hex, member_id="m-a", occurred_at_ms=DAY, kind=pb.KIND_PURCHASE,
                              lines=[pb.LineItem(sku="S1", paid_minor=1000)])
    batch = [*batch, ordinary]  # so every example reads a member back
    with PatronClient(server.address, retries=0) as client:
        ack = client.submit(pb.TransactionBatch(batch_id="extreme", transactions=batch))
        assert len(ack.results) == len(batch)
        for txn, result in zip(batch, ack.results, strict=True):
            assert result.outcome != pb.OUTCOME_REJECTED or result.reason
            if result.outcome == pb.OUTCOME_ACCEPTED:
                member = client.member(txn.member_id)  # raises on INTERNAL
                assert abs(member.points) <= LIMIT
                assert 0 <= member.stored_value + member.bonus_value_minor <= LIMIT


def _reasons(ack: pb.BatchAck) -> list[str]:
    return [r.reason if r.outcome == pb.OUTCOME_REJECTED else pb.Outcome.Name(r.outcome) for r in ack.results]


def test_amounts_and_times_out_of_bounds_are_rejected_and_the_member_stays_readable(server):
    with PatronClient(server.address, retries=0) as client:
        recharge = [pb.Transaction(txn_id=f"big-{n}", member_id="m-rich", occurred_at_ms=DAY, kind=pb.KIND_RECHARGE,
                                   amount_minor=amount) for n, amount in enumerate([LIMIT - BONUS, TOP, 1])]
        lines = [pb.LineItem(sku="S1", paid_minor=TOP)] * 3
        ack = client.submit([
            *recharge,
            pb.Transaction(txn_id="lines", member_id="m-rich", occurred_at_ms=DAY, kind=pb.KIND_PURCHASE, lines=lines),
            pb.Transaction(txn_id="time", member_id="m-rich", occurred_at_ms=TOP, kind=pb.KIND_PURCHASE,
                           amount_minor=100)])
        assert _reasons(ack) == ["OUTCOME_ACCEPTED", "amount_too_large", "amount_too_large", "amount_too_large",
                                 "bad_timestamp"]
        rich = client.member("m-rich")
        assert (rich.stored_value, rich.bonus_value_minor) == (LIMIT - BONUS, BONUS)  # one balance at the bound
        adjusted = client.adjust("m-rich", BOTTOM, "probe")
        assert (adjusted.result.outcome, adjusted.result.reason) == (pb.OUTCOME_REJECTED, "amount_too_large")
        assert client.member("m-rich").points == 0


def test_a_poison_batch_sinks_no_other_clients_batch(server):
    """Poison batches and good batches from four clients at once: the good ones are all applied."""
    poison = [pb.Transaction(txn_id=f"p{n}", member_id=f"g{n % 7}", occurred_at_ms=TOP, kind=pb.KIND_PURCHASE,
                             lines=[pb.LineItem(sku="S1", paid_minor=TOP)] * 3) for n in range(20)]
    failures: list[str] = []

    def good(client_number: int) -> None:
        with PatronClient(server.address, retries=0) as client:
            for n in range(15):
                batch = [pb.Transaction(txn_id=f"c{client_number}-{n}-{k}", member_id=f"g{k}", occurred_at_ms=DAY,
                                        kind=pb.KIND_PURCHASE, lines=[pb.LineItem(sku="S1", paid_minor=1000)])
                         for k in range(7)]
                try:
                    outcomes = {r.outcome for r in client.submit(batch).results}
                except grpc.RpcError as error:
                    outcomes = {error.code().name}
                if outcomes != {pb.OUTCOME_ACCEPTED}:
                    failures.append(f"client {client_number} batch {n}: {outcomes}")

    def bad() -> None:
        with PatronClient(server.address, retries=0) as client:
            for _ in range(30):
                try:
                    client.submit(poison)
                except grpc.RpcError as error:
                    failures.append(f"poison: {error.code().name} {error.details()}")

    threads = [threading.Thread(target=good, args=(n,)) for n in range(4)] + [threading.Thread(target=bad)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []


def _two_shards(server) -> tuple[str, str, str]:
    """Two members on one shard and one on the other."""
    shard_for = server.server.coordinator.shard_for
    ids = [f"reuse-{n}" for n in range(50)]
    first = [m for m in ids if shard_for(m) == 0]
    other = next(m for m in ids if shard_for(m) == 1)
    return first[0], first[1], other


def test_an_id_is_an_idempotency_key_within_its_member_on_every_shard_and_reuse_is_reported(server):
    a, b, c = _two_shards(server)

    def purchase(member: str, paid: int) -> pb.Transaction:
        return pb.Transaction(txn_id="REUSED-1", member_id=member, occurred_at_ms=DAY, kind=pb.KIND_PURCHASE,
                              lines=[pb.LineItem(sku="S1", paid_minor=paid)])

    with PatronClient(server.address, retries=0) as client:
        first = client.submit([purchase(a, 2900), purchase(b, 5000), purchase(c, 10_000)])
        assert [(r.outcome, r.points) for r in first.results] == [(pb.OUTCOME_ACCEPTED, 20), (pb.OUTCOME_ACCEPTED, 50),
                                                                  (pb.OUTCOME_ACCEPTED, 100)]
        again = client.submit([purchase(c, 1), purchase(b, 1), purchase(a, 1)])
        assert [(r.outcome, r.points) for r in again.results] == [(pb.OUTCOME_DUPLICATE, 100),
                                                                  (pb.OUTCOME_DUPLICATE, 50),
                                                                  (pb.OUTCOME_DUPLICATE, 20)]
        refund = pb.Transaction(txn_id="R-1", member_id=b, occurred_at_ms=DAY, kind=pb.KIND_REFUND,
                                refund_of="REUSED-1", amount_minor=5000)
        assert [r.points for r in client.submit([refund]).results] == [-50]  # b's own purchase
        assert [client.member(m).points for m in (a, b, c)] == [20, 0, 100]
        client.run_midnight(iso(parse_day(TEST_DAY) + 1))
    report = server.server.coordinator.folder.reports / f"reused-ids-{TEST_DAY}.jsonl"
    rows = {row["txn_id"]: row["members"] for row in map(json.loads, report.read_text().splitlines())}
    assert rows["REUSED-1"] == sorted([a, b, c])


numbers = st.one_of(st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -0.0]), st.floats())
attributes = st.dictionaries(texts, st.one_of(texts, numbers), max_size=4)


@settings(max_examples=25, deadline=None, suppress_health_check=FUNCTION_SCOPED)
@given(member_id=texts, fields=st.fixed_dictionaries({"birthday": texts, "source": texts, "channel": texts}),
       values=attributes)
def test_operator_calls_with_extreme_values_never_answer_internal(server, member_id, fields, values):
    with PatronClient(server.address, retries=0) as client:
        codes = [code_of(call) for call in (lambda: client.enroll(member_id, attributes=values, **fields),
                                          lambda: client.adjust(member_id or "m-op", TOP, "probe"),
                                          lambda: client.member(member_id))]
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}

