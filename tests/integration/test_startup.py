"""While the shards are starting, the port is open and every call answers UNAVAILABLE, which
clients retry; nothing answers INTERNAL."""

import asyncio
import threading
import time

import grpc

from actors.config import ServeConfig
from actors.server import Server
from client import PatronClient
from engine.calendar import parse_day
from proto import patron_pb2 as pb
from tests.conftest import EXAMPLE_RULES, TEST_DAY


def every_method(client: PatronClient) -> dict:
    """Each of patron's methods with a request that is fine once patron runs."""
    members, admin, ingest = client.members, client.admin, client.ingest
    batch = pb.TransactionBatch(batch_id="b1", transactions=[pb.Transaction(txn_id="t1", member_id="m1")])
    return {
        "SubmitBatch": lambda: ingest.SubmitBatch(batch, timeout=10),
        "StreamBatches": lambda: list(ingest.StreamBatches(iter([batch]), timeout=10)),
        "GetMember": lambda: members.GetMember(pb.GetMemberRequest(member_id="m1"), timeout=10),
        "ListLedger": lambda: list(members.ListLedger(pb.ListLedgerRequest(member_id="m1"), timeout=10)),
        "Enroll": lambda: members.Enroll(pb.EnrollRequest(member_id="m2"), timeout=10),
        "EnrollBatch": lambda: members.EnrollBatch(pb.EnrollBatchRequest(members=[pb.EnrollRequest(member_id="m3")]),
                                                   timeout=10),
        "SetStatus": lambda: members.SetStatus(pb.SetStatusRequest(member_id="m1", action=1), timeout=10),
        "Adjust": lambda: members.Adjust(pb.AdjustRequest(member_id="m1", request_id="r1", points=1, reason="x"),
                                         timeout=10),
        "PublishRules": lambda: admin.PublishRules(pb.PublishRulesRequest(rules_toml=""), timeout=10),
        "GetRules": lambda: admin.GetRules(pb.GetRulesRequest(), timeout=10),
        "RunMidnight": lambda: admin.RunMidnight(pb.RunMidnightRequest(date="2026-01-01"), timeout=10),
        "Checkpoint": lambda: admin.Checkpoint(pb.CheckpointRequest(), timeout=10),
        "GetStatus": lambda: admin.GetStatus(pb.GetStatusRequest(), timeout=10),
        "GetAnomalyReport": lambda: admin.GetAnomalyReport(pb.GetAnomalyReportRequest(date="2026-01-01"), timeout=10),
    }


def code_of(call) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_every_call_answers_unavailable_while_the_shards_are_starting(ray_session, tmp_path):
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = Server(ServeConfig(data=tmp_path / "data", rules=EXAMPLE_RULES, grpc_port=0, metrics_port=-1,
                                midnight="manual", start_date=parse_day(TEST_DAY)))
    starting = asyncio.run_coroutine_threadsafe(server.start(), loop)
    try:
        deadline = time.monotonic() + 60
        while not server.port and time.monotonic() < deadline and not starting.done():
            time.sleep(0.005)
        assert server.port, "the gRPC port did not open"
        rounds_while_starting, answers = 0, []
        with PatronClient(f"127.0.0.1:{server.port}", retries=0) as client:
            while not starting.done() and time.monotonic() < deadline:
                codes = {name: code_of(call) for name, call in every_method(client).items()}
                answers.append((server._started, codes))
                rounds_while_starting += all(code is grpc.StatusCode.UNAVAILABLE for code in codes.values())
        starting.result(timeout=60)
        assert rounds_while_starting >= 1, "no round of calls fell within the start-up"
        for started, codes in answers:
            assert grpc.StatusCode.INTERNAL not in codes.values(), codes
            if not started:
                assert set(codes.values()) == {grpc.StatusCode.UNAVAILABLE}, codes
    finally:
        if starting.done():
            asyncio.run_coroutine_threadsafe(server.stop(grace=5), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()  # left open, the loop and its two sockets were collected in whatever test ran next, failing it
