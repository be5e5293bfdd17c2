"""`patron serve` writes JSON lines on stderr, all of them (Ray's own output included), and
banners and live counts on stdout."""

import contextlib
import gc
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time

from actors.logs import Throttled, collect_in_small_steps, ray_output_as_json
from tests.conftest import EXAMPLE_RULES, TEST_DAY


def test_every_stderr_line_of_serve_is_json_from_start_through_load_to_stop(tmp_path):
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    command = [sys.executable, "-m", "cli.main", "serve", "--data", str(tmp_path / "data"), "--rules",
               str(EXAMPLE_RULES), "--grpc-port", "0", "--metrics-port", "0", "--midnight", "manual",
               "--demo", "2000", "--start-date", TEST_DAY]
    environment = {**os.environ, "PATRON_LOG_LEVEL": "DEBUG"}  # a line per batch as well
    environment.pop("PATRON_SHARD_PRIORITY", None)  # the default, which the shards' lines must say
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        serve = subprocess.Popen(command, stdout=stdout, stderr=stderr, start_new_session=True, env=environment)
    try:
        deadline = time.monotonic() + 180
        while "the demo load of 2,000 transactions is in" not in out.read_text():
            assert serve.poll() is None, err.read_text()
            assert time.monotonic() < deadline, out.read_text() + err.read_text()
            time.sleep(0.2)
        # Ray's log monitor forwards workers' lines about once a second: the stop waits for every
        # shard's first line, so that what the shard actors write is among the lines checked
        shards = json.loads((tmp_path / "data" / "layout.json").read_text())["shards"]
        while err.read_text().count('"msg": "shard ready"') < shards:
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.2)
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=90) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(serve.pid, signal.SIGKILL)
    lines = err.read_text().splitlines()
    logs = [json.loads(line) for line in lines]  # fails on the first line that is not JSON
    assert all({"ts", "level", "logger", "msg"} <= set(log) for log in logs)
    shards = [log for log in logs if log["msg"] == "shard ready"]
    assert len(shards) >= 1  # what the shard actors log reaches serve's stderr, as JSON
    assert all("pid" in log for log in shards)
    assert {log["priority"] for log in shards} == {"idle"}  # each shard gives way to the gateway
    assert any(log["msg"] == "batch acknowledged" for log in logs)
    banner = out.read_text()
    assert "patron is serving" in banner
    assert "patron: stopped; every shard closed cleanly" in banner


def forwarded(data: dict) -> list[dict]:
    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer):
        ray_output_as_json(data)
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_ray_worker_output_becomes_json_lines_without_prefixes_or_colours():
    patron_line = json.dumps({"ts": "2026-12-01T10:00:00.000+00:00", "level": "warning", "logger": "patron.shard",
                              "msg": "slow batch", "shard": 1})
    got = forwarded({"pid": 4242, "actor_name": "ShardActor", "is_err": True,
                     "lines": [patron_line, "\x1b[33mTraceback (most recent call last):\x1b[0m", "", "  File x"]})
    assert got[0] == {**json.loads(patron_line), "pid": 4242, "actor": "ShardActor"}
    assert [(line["level"], line["logger"], line["msg"], line["pid"]) for line in got[1:]] == [
        ("warning", "ray.worker", "Traceback (most recent call last):", 4242),
        ("warning", "ray.worker", "  File x", 4242)]


def test_the_autoscalers_status_report_is_left_out_and_its_trouble_kept():
    got = forwarded({"pid": "autoscaler", "is_err": False,
                     "lines": ["======== Autoscaler status ========", "Node status", " 0.0/2.0 CPU",
                               "Warning: the head node is out of memory"]})
    assert [line["msg"] for line in got] == ["Warning: the head node is out of memory"]


def test_a_warning_that_floods_is_written_once_per_interval_with_how_many_were_not(caplog):
    clock = [100.0]
    refusals = Throttled(logging.getLogger("throttled.test"), seconds=10, clock=lambda: clock[0])
    with caplog.at_level(logging.WARNING, logger="throttled.test"):
        for step in range(30):  # 30 refusals a second apart
            clock[0] = 100.0 + step
            refusals.warning(f"refused {step}")
    assert [(r.getMessage(), getattr(r, "unwritten_since_last", 0)) for r in caplog.records] == [
        ("refused 0", 0), ("refused 10", 9), ("refused 20", 9)]


def test_a_gateways_collector_frees_the_cycles_refusals_leave_a_few_thousand_at_a_time():
    """The young generation is collected before 10,000 objects are pending, so no collection holds
    the event loop long (at 200,000 one took 75-100 ms under overload)."""
    collected: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "stop" and info["generation"] == 0:
            collected.append(info["collected"])

    thresholds = gc.get_threshold()
    gc.collect()
    collect_in_small_steps()
    gc.callbacks.append(count)
    try:
        for _ in range(30_000):  # 60,000 objects in cycles, as a refused call's exception leaves
            first: list = []
            second = [first]
            first.append(second)
        del first, second
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*thresholds)
    assert len(collected) >= 5, f"{len(collected)} young collections for 60,000 objects in cycles"
    assert max(collected) < 12_000
