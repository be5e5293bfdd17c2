"""Full disks, full maps and overload: a batch is refused whole, nothing of it applied, the
server keeps serving and recovers."""

import contextlib
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from client import PatronClient
from engine.calendar import parse_day
from proto import patron_pb2 as pb
from tests.builders import ms
from tests.calls import answer_before_the_body


def purchases(prefix: str, count: int, paid: int = 2900) -> list[dict]:
    return [{"txn_id": f"{prefix}-{n}", "member_id": f"{prefix}-m{n}", "occurred_at_ms": ms("2026-11-17 10:00"),
             "kind": "purchase", "lines": [{"sku": "A", "paid_minor": paid}]} for n in range(count)]


@contextlib.contextmanager
def small_filesystem(where: Path, size: str):
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                      capture_output=True, check=False).returncode != 0:
        pytest.skip("this machine does not allow mounting a small filesystem; "
                    "test_a_map_at_its_ceiling_refuses_batches_and_keeps_serving covers the same path")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def test_a_full_disk_refuses_whole_batches_keeps_serving_reads_and_recovers(start_server, tmp_path):
    with small_filesystem(tmp_path / "small", "3m") as disk:
        server = start_server(data=disk / "data", shards=1, start_date=parse_day("2026-11-17"))
        with PatronClient(server.address, retries=0) as client:
            assert client.submit(purchases("first", 1)).results[0].points == 20
            refused = None
            for batch in range(200):
                try:
                    client.submit(purchases(f"b{batch}", 400))
                except grpc.RpcError as error:
                    refused = (batch, error)
                    break
            assert refused is not None, "the small filesystem never filled"
            batch, error = refused
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "the disk is full" in error.details()
            assert client.member(f"b{batch}-m0") is None          # nothing of the refused batch
            assert client.member("first-m0").points == 20          # reads keep working
            metrics = server.server.metrics.registry
            assert metrics.get_sample_value("patron_storage_full_total") >= 1  # PatronStorageFull's (an outside probe)
            with pytest.raises(grpc.RpcError) as no_room:  # was INTERNAL, and left its partial copy on the disk
                client.checkpoint()
            assert no_room.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, no_room.value.details()
            # no partial copy left, and the failure noted: with no room for its reason, as an empty file
            assert [path.name for path in (disk / "data" / "checkpoints").iterdir()] == ["last-failure.json"]
            assert metrics.get_sample_value("patron_checkpoint_failures_total") == 1
            assert metrics.get_sample_value("patron_checkpoint_last_failure_timestamp_seconds") > 0
            full = metrics.get_sample_value("patron_storage_full_total")
            with pytest.raises(grpc.RpcError) as no_run:  # at night no batch comes to count it (an outside probe)
                client.run_midnight("2026-11-18")
            assert no_run.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, no_run.value.details()
            assert metrics.get_sample_value("patron_storage_full_total") == full + 1
            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
            again = client.submit(purchases(f"b{batch}", 400))
            assert {r.outcome for r in again.results} == {1}       # all accepted: none was applied before
            before = time.time()
            client.checkpoint()
            assert metrics.get_sample_value("patron_checkpoint_last_success_timestamp_seconds") >= before
            assert metrics.get_sample_value("patron_checkpoint_last_failure_timestamp_seconds") == 0


def test_a_map_at_its_ceiling_refuses_batches_and_keeps_serving(start_server):
    server = start_server(shards=1, map_bytes=256 << 10, max_map_bytes=512 << 10,
                          start_date=parse_day("2026-11-17"))
    with PatronClient(server.address, retries=0) as client:
        client.submit(purchases("first", 1))
        with pytest.raises(grpc.RpcError) as raised:
            _submit_until_refused(client, 100)
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "the shard's map is full" in raised.value.details()
        assert client.member("first-m0").points == 20
        assert client.serving()


def _submit_until_refused(client: PatronClient, batches: int) -> None:
    for batch in range(batches):
        client.submit(purchases(f"b{batch}", 500))


def test_overload_is_refused_quickly_instead_of_queued_without_bound(start_server):
    server = start_server(shards=1, in_flight_per_shard=1, queue_per_shard=2, start_date=parse_day("2026-11-17"))
    answers: list[tuple[str, float]] = []

    def send(n: int) -> None:
        started = time.perf_counter()
        with PatronClient(server.address, retries=0) as client:
            try:
                client.submit(purchases(f"o{n}", 1000))
                answers.append(("ok", time.perf_counter() - started))
            except grpc.RpcError as error:
                answers.append((error.code().name, time.perf_counter() - started))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    refused = [seconds for code, seconds in answers if code == "RESOURCE_EXHAUSTED"]
    assert len(answers) == 24
    assert refused, "nothing was refused: the lane queued without bound"
    assert {code for code, _ in answers} <= {"ok", "RESOURCE_EXHAUSTED"}
    assert min(refused) < 1.0
    with PatronClient(server.address) as client:
        assert client.serving()
        refused_batches = [n for n in range(24) if client.member(f"o{n}-m0") is None]
        assert len(refused_batches) == len(refused)  # a refused batch left nothing behind


def test_an_overload_refusal_says_how_soon_room_is_likely(start_server):
    """A refusal for a full queue carries RETRY_AFTER: the shard's smoothed time per call, after
    which the call in progress has ended and room freed; before any call has ended (a burst
    against a fresh server, no warm-up), how long the call in progress has run. Each refusal is
    counted, though it is answered without raising."""
    from client.patron_client import retry_after

    server = start_server(shards=1, in_flight_per_shard=1, queue_per_shard=2, start_date=parse_day("2026-11-17"))
    lane = server.server.coordinator.lanes[0]
    with PatronClient(server.address, retries=0, timeout=60) as client:
        burst = [client.batch(purchases(f"o{n}", 1000)) for n in range(24)]
        lines = [{"sku": f"S{n}", "paid_minor": 100} for n in range(8)]
        long = client.batch([txn | {"lines": lines} for txn in purchases("long", 10_000)])
        smoothed = lane.call_seconds  # of the start-up's calls, if any
        first = client.ingest.SubmitBatch.future(long, timeout=60)
        # the burst meets a call that has run longer than the calls before it took
        _wait_for(lambda: bool(lane.started) and time.monotonic() - lane.started[0] > smoothed + 0.05)
        calls = [client.ingest.SubmitBatch.future(request, timeout=60) for request in burst]
        refusals = [error for call in [first, *calls] if (error := call.exception()) is not None]
    assert refusals, "nothing was refused"
    assert {error.code() for error in refusals} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    # on a slow turn of the gateway's loop more than 8 of the burst may still be read, and those
    # are refused by the burst's bound (refusals_first.py), which gives no hint: only the lane's count
    hints = [retry_after(error) for error in refusals if "queued batches" in error.details()]
    assert hints, [error.details() for error in refusals]
    assert all(hint > smoothed + 0.04 for hint in hints), (smoothed, hints)
    assert lane.call_seconds > 0
    counted = server.server.coordinator.metrics.registry.get_sample_value(
        "patron_batches_refused_total", {"code": "RESOURCE_EXHAUSTED"})
    assert counted == len(refusals)


def test_a_full_disk_under_one_shard_says_which_part_of_a_batch_was_committed(start_server, tmp_path):
    """Two shards, only shard 1's LMDB on a small filesystem: a batch spanning both is half
    committed when that disk fills. The refusal says so, and resending the whole batch is safe."""
    from actors.routing import even_layout, shard_of

    layout = even_layout(2)
    data = tmp_path / "data"
    (data / "shards").mkdir(parents=True)

    def member_on(shard: int, name: str) -> str:
        return next(m for n in range(1000) if shard_of(layout, m := f"{name}-{n}") == shard)

    def batch(number: int) -> list[dict]:
        txns = purchases(f"b{number}", 400)
        txns = [t for t in txns if shard_of(layout, t["member_id"]) == 1]
        small = purchases(f"b{number}-small", 1)[0] | {"member_id": member_on(0, f"b{number}-s")}
        return [*txns[:len(txns) // 2], small, *txns[len(txns) // 2:]]

    with small_filesystem(data / "shards" / "001", "3m") as disk:
        server = start_server(data=data, shards=2, start_date=parse_day("2026-11-17"))
        with PatronClient(server.address, retries=0) as client:
            refused = None
            for number in range(200):
                try:
                    client.submit(batch(number), batch_id=f"b{number}")
                except grpc.RpcError as error:
                    refused = (number, error)
                    break
            assert refused is not None, "the small filesystem never filled"
            number, error = refused
            txns = batch(number)
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            details = error.details()
            assert "the disk is full" in details
            assert f"batch 'b{number}': 1 of its {len(txns)} transactions committed" in details
            assert f"{len(txns) - 1} not applied (shard 1: the disk is full" in details
            assert "resending the whole batch is safe" in details
            small = txns[len(txns) // 2]
            others = [t for t in txns if t is not small]
            assert client.member(small["member_id"]).points == 20            # what the answer says was committed
            assert {client.member(t["member_id"]) for t in others} == {None}  # and what it says was not
            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
            again = client.submit(txns, batch_id=f"b{number}")
            outcomes = {r.txn_id: r.outcome for r in again.results}
            assert outcomes.pop(small["txn_id"]) == pb.OUTCOME_DUPLICATE
            assert set(outcomes.values()) == {pb.OUTCOME_ACCEPTED}


def test_when_every_shard_is_full_a_batch_is_refused_before_it_is_read(start_server):
    """A shard given no call slot never drains its queue, so two batches fill it; the next is
    refused RESOURCE_EXHAUSTED on arrival, before its body is even sent (none of it is parsed)."""
    server = start_server(shards=1, in_flight_per_shard=0, queue_per_shard=2, start_date=parse_day("2026-11-17"))
    lane = server.server.coordinator.lanes[0]
    with PatronClient(server.address, retries=0, timeout=60) as client:
        stuck = [client.ingest.SubmitBatch.future(client.batch(purchases(f"q{n}", 10)), timeout=60)
                 for n in range(2)]
        deadline = time.monotonic() + 30
        while not lane.full() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lane.full()
        assert answer_before_the_body(server.address, "/patron.v1.Ingest/SubmitBatch") == \
            grpc.StatusCode.RESOURCE_EXHAUSTED
        for call in stuck:
            call.cancel()


def test_a_batch_refused_on_its_metadata_sends_little_of_its_body(start_server):
    """The server grants a call 16 KB before its handler reads it: ten 1 MB batches refused on
    their metadata cost the client (and the server) well under 1 MB each. With gRPC's default
    windows, grown by bandwidth-delay probing, each sent its whole megabyte."""
    if shutil.which("ss") is None:
        pytest.skip("needs `ss` (iproute2) to count the bytes a socket sent")
    server = start_server(shards=1, in_flight_per_shard=0, queue_per_shard=1, start_date=parse_day("2026-11-17"))
    port = server.address.rsplit(":", 1)[1]
    with PatronClient(server.address, retries=0, timeout=60) as client, \
            grpc.insecure_channel(server.address, options=[("grpc.max_send_message_length", 8 << 20)]) as channel:
        stuck = client.ingest.SubmitBatch.future(client.batch(purchases("stuck", 10)), timeout=60)
        _wait_for(server.server.coordinator.lanes[0].full)
        submit = channel.unary_unary("/patron.v1.Ingest/SubmitBatch")
        codes = []
        for n in range(11):
            if n == 1:
                before = _bytes_sent_to(port)
            try:
                submit(bytes(1 << 20), timeout=20)
            except grpc.RpcError as error:
                codes.append(error.code())
        time.sleep(0.5)  # what was sent has left
        sent = _bytes_sent_to(port) - before
        stuck.cancel()
    assert codes == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 11
    assert sent < 10 * (256 << 10), f"{sent / 10:,.0f} bytes sent per refused 1 MB batch"


def _bytes_sent_to(port: str) -> int:
    """Bytes this machine's sockets connected to `port` have sent (TCP_INFO through ss)."""
    listing = subprocess.run(["ss", "-tinH", "state", "established", f"( dport = :{port} )"],
                             capture_output=True, text=True, check=True).stdout
    return sum(int(found) for found in re.findall(r"bytes_sent:(\d+)", listing))


def test_a_batch_let_in_on_its_metadata_keeps_its_room_while_its_body_arrives(start_server):
    """Admission reserves the room it saw: a batch let in before its body is read is queued once
    read, and a batch arriving meanwhile is refused at once (before, it took the room and the
    first was refused after its body had been sent and read). An unreadable batch gives its
    room back. Until routed, it counts among the few a burst may let in at once."""
    server = start_server(shards=1, in_flight_per_shard=0, queue_per_shard=1, start_date=parse_day("2026-11-17"))
    lane, metrics = server.server.coordinator.lanes[0], server.server.metrics.registry
    gate = server.server.ingest.refusals_first
    body_sent = threading.Event()
    with PatronClient(server.address, retries=0, timeout=60) as client, \
            grpc.insecure_channel(server.address) as channel:
        submit = channel.stream_unary("/patron.v1.Ingest/SubmitBatch")
        with pytest.raises(grpc.RpcError) as unreadable:
            submit(iter([b"\xff not a batch"]), timeout=20)
        assert unreadable.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # grpc.aio sends an abort's status before the handler's own `finally` runs: until it has,
        # the unreadable call still counts in flight and would pass for the batch below.
        _wait_for(lambda: metrics.get_sample_value("patron_batches_in_flight") == 0)
        assert gate.reading == 0  # the unreadable batch gave its room back

        def held_back() -> Iterator[bytes]:
            body_sent.wait(60)
            yield client.batch(purchases("first", 10)).SerializeToString()

        let_in = submit.future(held_back(), timeout=60)
        try:
            _wait_for(lambda: metrics.get_sample_value("patron_batches_in_flight") == 1 or let_in.done())
            assert not let_in.done(), f"the first batch was answered {let_in.code()} before its body was sent"
            assert gate.reading == 1  # being read: it counts against a burst's batches let in
            with pytest.raises(grpc.RpcError) as raised:
                client.ingest.SubmitBatch(client.batch(purchases("second", 10)), timeout=20)
            assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            body_sent.set()
            _wait_for(lambda: lane.waiting == 1 or let_in.done())
            assert not let_in.done(), f"the batch let in was answered {let_in.code()} once read"
            assert gate.reading == 0  # routed: room for the next batch let in
        finally:
            body_sent.set()
            let_in.cancel()


def _wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_the_overload_bench_client_times_each_refusal_from_its_own_send(start_server):
    """`patron bench overload`'s callers: a refused caller sends its batch again after a pause (as
    PatronClient does), and each refusal is timed from its own send, not from the batch's first."""
    import multiprocessing

    from bench.clients import Job, _Submitter
    from bench.streams import Batch

    server = start_server(shards=1, in_flight_per_shard=0, queue_per_shard=2, start_date=parse_day("2026-11-17"))
    lane = server.server.coordinator.lanes[0]
    with PatronClient(server.address, retries=0, timeout=60) as client:
        stuck = [client.ingest.SubmitBatch.future(client.batch(purchases(f"q{n}", 10)), timeout=60) for n in range(2)]
        deadline = time.monotonic() + 30
        while not lane.full() and time.monotonic() < deadline:
            time.sleep(0.05)
        batches = [Batch(client.batch(purchases(f"s{n}", 10), batch_id=f"s{n}").SerializeToString(), 10, n)
                   for n in range(3)]
        job = Job(server.address, kind="submit", window=2, seconds=1.0, pause=0.1)
        submitter = _Submitter(job, batches, multiprocessing.Value("q", 0), multiprocessing.Event())
        started = time.monotonic()
        report = submitter.run(started)
        took = time.monotonic() - started
        for call in stuck:
            call.cancel()
    assert report.failed == 0
    assert not report.error
    assert not report.answered
    # each caller backs off as PatronClient does (0.1, 0.2, 0.4 s on average, each drawn between
    # half and one and a half): at least three calls in the second, at most five
    assert 2 * 3 <= len(report.refusals) <= 2 * 5
    # each caller's refusals and pauses follow each other within the run; timed from a batch's
    # first send instead, they would add up to several times the run
    assert sum(report.refusals) <= job.window * took


def test_a_start_on_a_full_disk_names_what_it_could_not_write(tmp_path):
    # it said only "No space left on device" (an outside probe)
    import sys

    with small_filesystem(tmp_path / "small", "1m") as disk:
        (disk / "data").mkdir()
        with open(disk / "filler", "wb") as filler, contextlib.suppress(OSError):
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        done = subprocess.run([sys.executable, "-m", "cli.main", "serve", "--data", str(disk / "data"), "--rules",
                               str(Path(__file__).parents[2] / "examples" / "rules.toml"), "--grpc-port", "0",
                               "--metrics-port", "-1"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [said] = done.stderr.splitlines()
    assert f"cannot write {disk / 'data' / 'serve.pid'} (No space left on device)" in said, said


@pytest.mark.parametrize("flag", ["--results-out", "--members-out", "--ledger-out"])
def test_a_replay_on_a_full_disk_names_the_output_it_could_not_write(tmp_path, flag):
    # it said only "No space left on device", naming no file (an outside probe)
    import json
    import sys

    stream = tmp_path / "stream.jsonl"
    stream.write_text("".join(json.dumps(txn) + "\n" for txn in purchases("r", 3000)))
    outputs = {name: tmp_path / f"{name[2:]}.jsonl" for name in ("--results-out", "--members-out", "--ledger-out")}
    with small_filesystem(tmp_path / "small", "64k") as disk:
        outputs[flag] = disk / "out.jsonl"
        rules = Path(__file__).parents[2] / "examples" / "rules.toml"
        done = subprocess.run([sys.executable, "-m", "cli.main", "replay", "--rules", str(rules), "--transactions",
                               str(stream), *[part for name, path in outputs.items() for part in (name, str(path))]],
                              capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"patron: {flag} {disk / 'out.jsonl'}: No space left on device; the replay "
                                        f"stopped, and the file holds only part of its output"]
