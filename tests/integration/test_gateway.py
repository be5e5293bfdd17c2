"""The gateway's contract: answers in order, bad requests answered INVALID_ARGUMENT, health and
reflection for standard tools."""

import queue
import random
import threading
import time
from types import SimpleNamespace

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from bench.cluster import free_port
from client import PatronClient, patron_client
from client.patron_client import transaction_message
from engine.calendar import parse_day
from proto import patron_pb2 as pb
from proto import patron_pb2_grpc as rpc
from tests.builders import ms
from tests.conftest import TEST_DAY, two_shard_server

DAY = ms(f"{TEST_DAY} 10:00")  # the business day every server of this module is pinned to
METHODS = [(service.full_name, method.name, method.client_streaming, method.server_streaming)
           for module in (pb, health_pb2, reflection_pb2)  # gRPC's own too: they need no token (an outside probe)
           for service in module.DESCRIPTOR.services_by_name.values() for method in service.methods]


def purchase(txn_id: str, member: str, paid: int = 2900) -> dict:
    return {"txn_id": txn_id, "member_id": member, "occurred_at_ms": DAY, "kind": "purchase",
            "lines": [{"sku": "A", "paid_minor": paid}]}


@pytest.fixture(scope="module")
def server(ray_session, tmp_path_factory):
    """One server for the module (each test names its own members): a start costs about a second."""
    yield from two_shard_server(tmp_path_factory, "gateway", max_batch=50)


def test_results_come_back_in_batch_order_across_shards(server):
    txns = [purchase(f"order-t{n}", f"order-m{n % 17}", 1000 * (n + 1)) for n in range(40)]
    with PatronClient(server.address) as client:
        ack = client.submit(txns, batch_id="b1")
    assert ack.batch_id == "b1"
    assert [(r.txn_id, r.points) for r in ack.results] == [(f"order-t{n}", 10 * (n + 1)) for n in range(40)]


def test_one_bad_transaction_never_sinks_its_batch(server):
    with PatronClient(server.address) as client:
        ack = client.submit([purchase("t1", "bad-m1"), {"txn_id": "t2", "member_id": "", "kind": "purchase"},
                             purchase("t3", "bad-m2"), {"txn_id": "t4", "member_id": "bad-m3", "kind": "bogus"}])
        assert [(r.outcome, r.reason) for r in ack.results] == [
            (pb.OUTCOME_ACCEPTED, ""), (pb.OUTCOME_REJECTED, "missing_member_id"),
            (pb.OUTCOME_ACCEPTED, ""), (pb.OUTCOME_REJECTED, "unknown_kind")]
        assert client.member("bad-m2").points == 20


def test_stream_acknowledgements_come_back_in_the_order_batches_were_sent(server):
    with PatronClient(server.address) as client:
        batches = [client.batch([purchase(f"b{b}-t{n}", f"s-m{n}") for n in range(10)], f"b{b}") for b in range(12)]
        assert [ack.batch_id for ack in client.stream(batches, window=4)] == [f"b{b}" for b in range(12)]


def test_a_batch_over_the_limit_is_invalid_argument_and_changes_nothing(server):
    with PatronClient(server.address) as client:
        with pytest.raises(grpc.RpcError) as raised:
            client.submit([purchase(f"t{n}", "big-m1") for n in range(51)], batch_id="big")
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "has 51 transactions; the limit is 50" in raised.value.details()
        assert client.member("big-m1") is None


@pytest.mark.parametrize(("service", "method", "client_streaming", "server_streaming"), METHODS)
def test_garbage_bytes_to_any_method_are_invalid_argument_and_the_server_stays_up(
        server, service, method, client_streaming, server_streaming, caplog):
    garbage = b"\xff\xff\xff\xff this is not protobuf"
    with grpc.insecure_channel(server.address) as channel:
        path = f"/{service}/{method}"
        if client_streaming:
            call = channel.stream_stream(path) if server_streaming else channel.stream_unary(path)
            request = iter([garbage])
        else:
            call = channel.unary_stream(path) if server_streaming else channel.unary_unary(path)
            request = garbage
        with pytest.raises(grpc.RpcError) as raised:
            _drain(call(request, timeout=10))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with PatronClient(server.address) as client:
        assert client.serving()
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []  # no traceback logged


def _drain(answer: object) -> None:
    """A streamed answer raises when iterated; a unary one has raised already."""
    if hasattr(answer, "__iter__") and not isinstance(answer, bytes):
        list(answer)


def test_health_reports_serving_for_the_server_and_each_service(server):
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "patron.v1.Ingest", "patron.v1.Members", "patron.v1.Admin", "patron.v1.Events",
                     "patron.v1.Wallet"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_a_health_method_patron_lacks_is_unimplemented_without_an_error_logged(server, caplog):
    """Health.List (newer than the servicer) answered UNIMPLEMENTED with a traceback at error level,
    to anyone: health needs no token (an outside probe)."""
    with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as raised:
        health_pb2_grpc.HealthStub(channel).List(health_pb2.HealthListRequest(), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []


def test_reflection_lists_patrons_services(server):
    with grpc.insecure_channel(server.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for s in next(answers).list_services_response.service}
    assert {"patron.v1.Ingest", "patron.v1.Members", "patron.v1.Admin", "patron.v1.Events", "patron.v1.Wallet",
            "grpc.health.v1.Health"} <= names


def test_every_read_of_a_client_with_several_gateways_moves_on_from_one_that_does_not_answer(server, monkeypatch):
    # ledger, subscribe and health stayed on a dead gateway for ever (an outside probe)
    monkeypatch.setattr(patron_client, "random", SimpleNamespace(randrange=lambda n: 0, uniform=random.uniform))
    dead = f"127.0.0.1:{free_port()}"
    reads = {"ledger": lambda client: client.ledger("nobody"),
             "subscribe": lambda client: next(client.subscribe()),
             "status": lambda client: client.status()}
    for name, read in reads.items():
        with PatronClient([dead, server.address], retries=0) as client:
            with pytest.raises(grpc.RpcError) as refused:
                read(client)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, name
            assert client.address == server.address, name
    with PatronClient([dead, server.address]) as client:
        assert not client.serving()  # the dead one, left for the next
        client.wait_until_serving(timeout=30)
        assert client.address == server.address


def test_a_batch_too_large_to_send_is_not_sent_again(server, monkeypatch):
    # the client's pauses, in this thread only: `time.sleep` is the process's, and a server or Ray
    # thread sleeping meanwhile was counted as a retry (and spun without its pauses: a CI run)
    pauses: list[float] = []
    caller, sleep = threading.get_ident(), time.sleep

    def paused(seconds: float) -> None:
        if threading.get_ident() == caller:
            pauses.append(seconds)
        else:
            sleep(seconds)

    monkeypatch.setattr(patron_client.time, "sleep", paused)
    with PatronClient(server.address, max_message_bytes=2_000) as client, pytest.raises(grpc.RpcError) as refused:
        client.submit([purchase(f"huge-t{n:090d}", "huge-m") for n in range(40)])
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert pauses == []  # retried for about 10 s before


def test_an_open_stream_ends_at_its_next_batch_once_the_server_begins_to_stop(start_server):
    # gRPC's grace let an open stream go on taking new batches for 30 s after SIGTERM (an outside probe)
    running = start_server(shards=2, start_date=parse_day(TEST_DAY))  # the day DAY's purchases are dated
    outgoing: queue.Queue = queue.Queue()
    with grpc.insecure_channel(running.address) as channel:
        answers = rpc.IngestStub(channel).StreamBatches(iter(outgoing.get, None), timeout=60)
        outgoing.put(pb.TransactionBatch(batch_id="before", transactions=[
            transaction_message(purchase("stop-t1", "stop-m1"))]))
        assert next(answers).batch_id == "before"
        stopper = threading.Thread(target=running.stop)
        stopper.start()
        deadline = time.monotonic() + 30
        while not running.server.ingest.stopping:
            assert time.monotonic() < deadline, "the server did not begin to stop"
            time.sleep(0.01)
        outgoing.put(pb.TransactionBatch(batch_id="after", transactions=[
            transaction_message(purchase("stop-t2", "stop-m2"))]))
        with pytest.raises(grpc.RpcError) as ended:
            next(answers)
        outgoing.put(None)
        stopper.join(timeout=60)
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "patron is stopping" in ended.value.details()
    with PatronClient(start_server(data=running.server.config.data, start_date=parse_day(TEST_DAY)).address) as client:
        assert client.member("stop-m1") is not None
        assert client.member("stop-m2") is None  # not applied, as the answer said


def test_streamed_batches_count_as_in_flight_until_settled(server, monkeypatch):
    # only SubmitBatch counted: the dashboard's panel read 0 under a full streamed load (an outside probe)
    import asyncio

    from actors.gateway import IngestService

    running = server  # the module's other tests leave no batch in flight
    release, settle = threading.Event(), IngestService._settle

    async def held(self, *args):
        while not release.is_set():
            await asyncio.sleep(0.01)
        return await settle(self, *args)

    monkeypatch.setattr(IngestService, "_settle", held)
    gauge = running.server.coordinator.metrics.batches_in_flight
    with PatronClient(running.address) as client:
        batches = [client.batch([purchase(f"f{b}", f"flight-m{b}")], f"f{b}") for b in range(3)]
        acks: list = []
        sender = threading.Thread(target=lambda: acks.extend(client.stream(batches, window=8)))
        sender.start()
        deadline = time.monotonic() + 30
        try:
            while gauge._value.get() != 3:
                assert time.monotonic() < deadline, f"in flight: {gauge._value.get()}"
                time.sleep(0.01)
        finally:
            release.set()  # a failure must not leave the server's stop waiting on held batches
            sender.join(timeout=30)
    assert [ack.batch_id for ack in acks] == ["f0", "f1", "f2"]
    assert gauge._value.get() == 0


def test_a_drain_answers_every_call_with_health_not_serving_before_the_port_closes(start_server):
    # the port closed at once: a load balancer's probe never saw NOT_SERVING (an outside probe)
    running = start_server(shards=1, drain_seconds=6, start_date=parse_day(TEST_DAY))
    stopper = threading.Thread(target=running.stop)
    with grpc.insecure_channel(running.address) as channel, PatronClient(running.address, retries=0) as client:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
        stopper.start()
        deadline = time.monotonic() + 10
        while health.Check(health_pb2.HealthCheckRequest()).status != health_pb2.HealthCheckResponse.NOT_SERVING:
            assert time.monotonic() < deadline, "health did not turn NOT_SERVING"
            time.sleep(0.05)
        [result] = client.submit([purchase("drain-t1", "drain-m1")]).results  # still answered meanwhile
        assert result.outcome == pb.OUTCOME_ACCEPTED
        stopper.join(timeout=90)
    assert not stopper.is_alive()
