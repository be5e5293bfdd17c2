"""`patron serve` as operators run it: SIGTERM drains and closes cleanly, a restart on the
same folder serves the same state, and kill -9 loses nothing that was acknowledged."""

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from bench.workload import Workload, generate, write_jsonl
from cli.replay import ReplayFiles, replay_files
from tests.conftest import EXAMPLE_RULES

WORKLOAD = Workload(transactions=6_000, members=900, days=1, start="2026-11-17", seed=11)


def batches(client, size: int = 150) -> list:
    return list(client.batches(generate(WORKLOAD), size))


def replay_members(tmp_path) -> dict[str, dict]:
    stream = tmp_path / "stream.jsonl"
    write_jsonl(stream, WORKLOAD)
    members = tmp_path / "members.jsonl"
    replay_files(ReplayFiles(rules=EXAMPLE_RULES, transactions=stream, members_out=members,
                             results_out=tmp_path / "results.jsonl"))
    return {m["member_id"]: m for m in map(json.loads, members.read_text().splitlines())}


def same_as_replay(client, expected: dict[str, dict]) -> None:
    with ThreadPoolExecutor(8) as pool:  # read in parallel, each member checked as before
        answers = pool.map(client.member, expected)
        for (member_id, member), got in zip(expected.items(), answers, strict=True):
            assert (member_id, got.tier, got.points, got.growth, got.abnormal) == (
                member_id, member["tier"], member["points"], member["growth"], member["abnormal"])


def test_sigterm_finishes_batches_in_flight_closes_cleanly_and_a_restart_serves_the_same(tmp_path, serve_process):
    data = tmp_path / "data"
    serve = serve_process(data, "--start-date", "2026-11-17", rules=EXAMPLE_RULES)
    client = serve.client()
    stream = batches(client)
    acked: list = []
    sending = threading.Thread(target=_send_until_refused, args=(client, stream, acked))
    sending.start()
    ended: list = []
    listening = threading.Thread(target=_subscribe_until_cut, args=(serve.address, ended))
    listening.start()
    while len(acked) < 5:
        sending.join(0.05)
    assert serve.terminate() == 0
    sending.join(30)
    listening.join(30)
    assert "stopped; every shard closed cleanly" in serve.text()
    # a subscriber is told at once, and does not hold the stop for gRPC's grace of 30 s (an outside probe)
    [(code, details)] = ended
    assert (code, "patron is stopping" in details) == (grpc.StatusCode.UNAVAILABLE, True), details
    # restarted by the installed command from a folder of another patron's source, the data named
    # from there: the shards import what serve imports (Ray puts the folder serve starts in first
    # on its workers' import path; this one's engine cannot be imported), and the folder is the same
    elsewhere = tmp_path / "elsewhere"
    for package in ("engine", "actors", "storage"):
        (elsewhere / package).mkdir(parents=True)
        (elsewhere / package / "__init__.py").write_text("raise ImportError('another source tree was imported')\n")
    restarted = serve_process(Path("..") / "data", cwd=elsewhere)
    with restarted.client() as again:
        for ack, batch in zip(acked, stream, strict=False):  # every acknowledged one is there, as answered
            resent = again.submit(batch)
            assert [(r.txn_id, r.points) for r in resent.results if r.outcome == 2] == [
                (r.txn_id, r.points) for r in ack.results if r.outcome in (1, 2)]
    restarted.terminate()


def test_kill_9_loses_nothing_that_was_acknowledged(tmp_path, serve_process):
    data = tmp_path / "data"
    expected = replay_members(tmp_path)
    serve = serve_process(data, "--start-date", "2026-11-17", rules=EXAMPLE_RULES)
    client = serve.client()
    stream = batches(client)
    acked: list = []
    sending = threading.Thread(target=_send_until_refused, args=(client, stream, acked))
    sending.start()
    while len(acked) < len(stream) // 3:
        sending.join(0.01)
    serve.kill()
    sending.join(30)
    # restarted by the installed command from a folder of another patron's source, the data named
    # from there: the shards import what serve imports (Ray puts the folder serve starts in first
    # on its workers' import path; this one's engine cannot be imported), and the folder is the same
    elsewhere = tmp_path / "elsewhere"
    for package in ("engine", "actors", "storage"):
        (elsewhere / package).mkdir(parents=True)
        (elsewhere / package / "__init__.py").write_text("raise ImportError('another source tree was imported')\n")
    restarted = serve_process(Path("..") / "data", cwd=elsewhere)
    with restarted.client() as again:
        for batch in stream[len(acked):]:  # the client resends everything not acknowledged
            again.submit(batch)
        for ack, batch in zip(acked, stream, strict=False):
            assert [r.txn_id for r in ack.results] == [t.txn_id for t in batch.transactions]
        same_as_replay(again, expected)
    restarted.terminate()


def _subscribe_until_cut(address: str, ended: list) -> None:
    """A notifier reading events as a raw gRPC client does: how its stream ends."""
    from proto import patron_pb2 as pb
    from proto import patron_pb2_grpc as rpc

    with grpc.insecure_channel(address) as channel:
        try:
            for _ in rpc.EventsStub(channel).Subscribe(pb.SubscribeRequest(), timeout=120):
                pass
        except grpc.RpcError as error:
            ended.append((error.code(), error.details()))


def _send_until_refused(client, stream: list, acked: list) -> None:
    for batch in stream:
        try:
            acked.append(client.submit(batch))
        except grpc.RpcError:
            return


def test_kill_9_of_serve_alone_leaves_no_ray_process_of_its_session(tmp_path, serve_process):
    serve = serve_process(tmp_path / "data", "--shards", "1", "--start-date", "2026-11-17", rules=EXAMPLE_RULES)
    serve.client().close()
    started = set(serve.session().values())
    assert {"ray::DashboardAgent", "ray::RuntimeEnvAgent"} <= started, started  # Ray's agents, among others
    serve.kill()
    deadline = time.monotonic() + 30  # Ray's agents on their own linger 60 s
    while (left := serve.session()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == {}


def test_kill_9_of_serve_while_it_starts_leaves_no_ray_process_of_its_session(tmp_path):
    from tests.process import ServeProcess

    serve = ServeProcess(tmp_path / "data", "--shards", "2", rules=EXAMPLE_RULES, wait=False)
    try:
        deadline = time.monotonic() + 60
        while "ray::DashboardAgent" not in serve.session().values() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "ray::DashboardAgent" in serve.session().values(), serve.text()
        serve.kill()  # Ray is up, its shards are not: the start is cut short
        assert "gRPC" not in serve.text()
        deadline = time.monotonic() + 30  # Ray's agents on their own linger 60 s
        while (left := serve.session()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert left == {}
    finally:
        serve.kill_everything()


def test_serve_whose_own_ray_dies_stops_with_a_failure_so_that_it_is_started_again(tmp_path, serve_process):
    # its raylet killed, serve stayed up NOT_SERVING for good, and systemd's Restart=on-failure never
    # restarted it (an outside probe)
    serve = serve_process(tmp_path / "data", "--shards", "1", "--start-date", "2026-11-17", rules=EXAMPLE_RULES)
    serve.client().close()
    [raylet] = [pid for pid, command in serve.session().items() if command.split(" ")[0].endswith("/raylet")]
    os.kill(raylet, signal.SIGKILL)
    assert serve.wait(timeout=90) == 1
    said = serve.text()
    assert "raylet (exit -9) of serve's Ray died; stopping, to be started again" in said
    assert "Traceback" not in said
