"""Full disks, full maps and overload: a batch is refused whole, nothing of it applied, the
server keeps serving and recovers."""

import contextlib
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest

from client import PatronClient
from engine.calendar import parse_day
from tests.builders import ms


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
            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
            again = client.submit(purchases(f"b{batch}", 400))
            assert {r.outcome for r in again.results} == {1}       # all accepted: none was applied before


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
