"""Every command that talks to patron tries a refused or unreachable call again as README says:
against a real gRPC server on 127.0.0.1 that serves patron's methods and refuses the first call
of each with the code under test, then answers (the commands' answers here are empty messages)."""

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from cli.main import main
from proto import patron_pb2 as pb
from tests.conftest import EXAMPLE_RULES


class RefusingOnce:
    """patron's services, each method refusing its first call with `code`."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self.code, self.calls, self.lock = code, Counter(), threading.Lock()
        self.requests: dict[str, list[bytes]] = {}
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        for service in pb.DESCRIPTOR.services_by_name.values():
            handlers = {method.name: self._handler(method) for method in service.methods}
            self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
        self.address = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"
        self.server.start()

    def _refused(self, name: str, context: grpc.ServicerContext, request: bytes = b"") -> None:
        with self.lock:
            self.calls[name] += 1
            self.requests.setdefault(name, []).append(request)
            first = self.calls[name] == 1
        if first:
            context.abort(self.code, "refused once by the test's server")

    def _handler(self, method) -> grpc.RpcMethodHandler:
        answer = getattr(pb, method.output_type.name)
        if method.output_type.name == "Event":
            answer = lambda: pb.Event(position="7", kind="tier_changed", member_id="M1")  # noqa: E731

        def unary(request: bytes, context: grpc.ServicerContext) -> object:
            self._refused(method.name, context, request)
            return answer()

        def streamed(request: bytes, context: grpc.ServicerContext) -> Iterator:
            self._refused(method.name, context)
            yield answer()

        if method.client_streaming:
            return grpc.stream_stream_rpc_method_handler(lambda requests, context: iter(()))
        if method.server_streaming:
            return grpc.unary_stream_rpc_method_handler(streamed, response_serializer=lambda m: m.SerializeToString())
        return grpc.unary_unary_rpc_method_handler(unary, response_serializer=lambda m: m.SerializeToString())


@pytest.fixture
def refusing(request) -> Iterator[RefusingOnce]:
    server = RefusingOnce(request.param)
    yield server
    server.server.stop(None)


COMMANDS = {
    "status": (["status"], {"GetStatus"}),
    "checkpoint": (["checkpoint"], {"Checkpoint"}),
    "midnight": (["midnight", "--date", "2026-12-01"], {"RunMidnight", "GetStatus"}),
    "shards move": (["shards", "move", "3", "--to", "1"], {"MoveVirtualShard", "GetStatus"}),
    "shards rebalance": (["shards", "rebalance"], {"Rebalance", "GetStatus"}),
    "shards of": (["shards", "of", "M1"], {"GetStatus"}),
    "member show": (["member", "show", "M1", "--ledger"], {"GetMember", "ListLedger"}),
    "member tag": (["member", "tag", "M1", "--add", "vip", "--reason", "a test"], {"SetTags"}),
    "member tier": (["member", "tier", "M1", "Gold", "--reason", "a test"], {"SetTier"}),
    "member enroll": (["member", "enroll", "M1"], {"Enroll"}),
    "member status": (["member", "status", "M1", "freeze", "--reason", "a test"], {"SetStatus"}),
    "member adjust": (["member", "adjust", "M1", "--points", "5", "--reason", "a test"], {"GetMember", "Adjust"}),
    "anomalies": (["anomalies", "--date", "2026-12-01"], {"GetAnomalyReport"}),
    "member quote": (["member", "quote", "M1", "--line", "S:1:100"], {"Quote"}),
    "member coupons": (["member", "coupons", "M1"], {"ListCoupons"}),
    "rules publish": (["rules", "publish", str(EXAMPLE_RULES)], {"PublishRules"}),
    "events tail": (["events", "tail", "--count", "1"], {"Subscribe"}),
}
STARTS_A_JOB = {"checkpoint", "shards move", "shards rebalance"}
"""Sent again only when the server was not reached (UNAVAILABLE): a second start would be refused
as busy, or write a second checkpoint."""


def run(args: list[str], address: str) -> int:
    with pytest.raises(SystemExit) as ended:
        main([*args, "--address", address])
    return ended.value.code


def test_the_table_covers_every_command_that_talks_to_a_server_but_send_and_import():
    """send and import resend their batches and chunks themselves (tests/test_client.py, import's tests)."""
    from tests.test_cli_failures import REMOTE

    assert {name for name in COMMANDS} == {name.split(" --")[0] for name in REMOTE} - {"send", "import"}


@pytest.mark.parametrize("refusing", [grpc.StatusCode.UNAVAILABLE], indirect=True)
@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_tries_an_unreachable_call_again(name, refusing, monkeypatch, capsys):
    monkeypatch.setenv("PATRON_RETRIES", "2")
    args, methods = COMMANDS[name]
    assert run(args, refusing.address) == 0, capsys.readouterr().err
    assert {method: refusing.calls[method] for method in methods} == dict.fromkeys(methods, 2)


@pytest.mark.parametrize("refusing", [grpc.StatusCode.RESOURCE_EXHAUSTED], indirect=True)
@pytest.mark.parametrize("name", COMMANDS)
def test_a_refused_call_is_tried_again_where_repeating_it_is_harmless(name, refusing, monkeypatch, capsys):
    monkeypatch.setenv("PATRON_RETRIES", "2")
    args, methods = COMMANDS[name]
    code = run(args, refusing.address)
    said = capsys.readouterr().err
    if name in STARTS_A_JOB:
        assert code == 1
        assert said.startswith("patron: RESOURCE_EXHAUSTED: refused once by the test's server")
        assert sum(refusing.calls.values()) == 1
    else:
        assert code == 0, said
        assert {method: refusing.calls[method] for method in methods} == dict.fromkeys(methods, 2)


@pytest.mark.parametrize("refusing", [grpc.StatusCode.PERMISSION_DENIED], indirect=True)
def test_any_other_refusal_fails_at_once(refusing, monkeypatch, capsys):
    monkeypatch.setenv("PATRON_RETRIES", "8")
    assert run(["member", "show", "M1"], refusing.address) == 1
    assert capsys.readouterr().err.startswith("patron: PERMISSION_DENIED: ")
    assert refusing.calls == {"GetMember": 1}


@pytest.mark.parametrize("refusing", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED], indirect=True)
def test_an_adjustment_tried_again_carries_its_first_request_id(refusing, monkeypatch, capsys):
    """A new id at each try would apply the adjustment twice when the first was applied and only
    its answer lost."""
    monkeypatch.setenv("PATRON_RETRIES", "2")
    assert run(["member", "adjust", "M1", "--points", "5", "--reason", "a test"], refusing.address) == 0
    sent = [pb.AdjustRequest.FromString(request) for request in refusing.requests["Adjust"]]
    assert len(sent) == 2
    assert len({request.request_id for request in sent}) == 1
    assert sent[0].request_id.startswith("adj-")
    assert capsys.readouterr().err == ""  # the empty answer is no duplicate: nothing to tell


class HoldingAdjust:
    """patron's Members service on 127.0.0.1 that knows every member and holds each Adjust call
    until the test ends: an operator's Ctrl-C comes while it is in flight."""

    def __init__(self) -> None:
        self.arrived, self.release = threading.Event(), threading.Event()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handlers = {"GetMember": grpc.unary_unary_rpc_method_handler(
                        lambda request, context: pb.Member(member_id="M1"),
                        response_serializer=lambda m: m.SerializeToString()),
                    "Adjust": grpc.unary_unary_rpc_method_handler(
                        self._hold, response_serializer=lambda m: m.SerializeToString())}
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("patron.v1.Members", handlers),))
        self.address = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"
        self.server.start()

    def _hold(self, request: bytes, context: grpc.ServicerContext) -> pb.AdjustResponse:
        self.arrived.set()
        self.release.wait(60)
        return pb.AdjustResponse()


def test_an_adjustment_interrupted_in_flight_names_its_request_id():
    import signal
    import subprocess
    import sys

    # Ctrl-C's handler set in the command's process: one started from a background job (CI's, say)
    # inherits SIGINT ignored, and Python then installs none
    start = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); from cli.main import main; main()"
    holding = HoldingAdjust()
    command = subprocess.Popen([sys.executable, "-c", start, "member", "adjust", "M1", "--points", "5",
                                "--reason", "a test", "--address", holding.address],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holding.arrived.wait(60)
        command.send_signal(signal.SIGINT)
        out, err = command.communicate(timeout=60)
    finally:
        command.kill()  # after a failure above: no process or pipe left for a later test's warnings
        command.communicate()
        holding.release.set()
        holding.server.stop(None)
    assert (command.returncode, out) == (130, "")
    [line] = err.splitlines()
    assert line.startswith("patron: interrupted (request id adj-")
    assert "give --request-id adj-" in line


class _Feed:
    """Events and health on 127.0.0.1:`port`: SERVING, each subscription answered with the event
    after its position, then held open until the server stops (a restart)."""

    def __init__(self, port: int = 0) -> None:
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc

        from proto import patron_pb2_grpc as rpc

        sent = self.sent = threading.Event()

        def subscribe(self, request, context):
            position = str(int(request.after or 0) + 1)
            yield pb.Event(position=position, kind="tier_changed", member_id=f"M{position}")
            sent.set()
            while context.is_active():
                time.sleep(0.05)

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        checker = health.HealthServicer()
        checker.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(checker, self.server)
        rpc.add_EventsServicer_to_server(type("Events", (rpc.EventsServicer,), {"Subscribe": subscribe})(), self.server)
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.server.start()


def test_events_tail_waits_for_patron_through_a_restart_longer_than_the_retries(monkeypatch, capsys):
    # it gave up after the retries every command makes (about 10 s), shorter than a restart (an outside probe)
    monkeypatch.setenv("PATRON_RETRIES", "1")  # a fraction of a second: any restart is longer
    feed = _Feed()
    restarted: list[_Feed] = []

    def restart() -> None:
        feed.sent.wait(30)
        time.sleep(0.5)  # printed
        feed.server.stop(None).wait()
        time.sleep(2.0)
        restarted.append(_Feed(feed.port))

    restarting = threading.Thread(target=restart)
    restarting.start()
    try:
        code = run(["events", "tail", "--count", "2", "--patience", "30"], f"127.0.0.1:{feed.port}")
    finally:
        restarting.join()
        for server in [feed, *restarted]:
            server.server.stop(None)
    said = capsys.readouterr()
    assert code == 0, said.err
    import json

    assert [json.loads(line)["position"] for line in said.out.splitlines()] == ["1", "2"]
    assert f"patron at 127.0.0.1:{feed.port} is not answering; waiting up to 30 s, to go on after 1" in said.err


def test_import_waits_as_long_as_a_refusal_asks_before_it_sends_a_chunk_again(tmp_path, monkeypatch, capsys):
    # its pause was its own 0.1 s, the same for every chunk in flight, whatever the server asked (a probe)
    from client.patron_client import RETRY_AFTER

    calls: list[float] = []

    def chunk(request: bytes, context: grpc.ServicerContext) -> pb.ImportResponse:
        calls.append(time.monotonic())
        if len(calls) == 1:
            context.set_trailing_metadata(((RETRY_AFTER, "700"),))
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "full")
        return pb.ImportResponse(imported=1)

    def empty(answer: type) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(lambda request, context: answer(),
                                                   response_serializer=lambda m: m.SerializeToString())

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    for service in pb.DESCRIPTOR.services_by_name.values():  # every other call answered empty
        handlers = {method.name: empty(getattr(pb, method.output_type.name)) for method in service.methods}
        handlers["Import"] = grpc.unary_unary_rpc_method_handler(chunk,
                                                                 response_serializer=lambda m: m.SerializeToString())
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    server.start()
    rows = tmp_path / "members.jsonl"
    rows.write_text('{"member_id": "M1", "points": 10}\n')
    monkeypatch.chdir(tmp_path)
    try:
        assert run(["import", str(rows)], address) == 0
    finally:
        server.stop(None)
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.35  # half of the 700 ms asked, at least
