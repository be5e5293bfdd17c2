"""A client patron did not write: examples/node (Node's @grpc/grpc-js with proto/patron.proto)
enrolls a member, submits a batch and reads the member back from a real server."""

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from client import PatronClient
from engine.calendar import parse_day
from tests.builders import ms

NODE_EXAMPLE = Path(__file__).parents[2] / "examples" / "node"


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=NODE_EXAMPLE, capture_output=True, text=True, timeout=timeout, check=False)


def test_the_node_example_started_before_its_server_retries_then_enrolls_submits_and_reads_back(start_server):
    # CI installs nothing by hand: the example's pinned packages come from its package-lock.json,
    # and a machine where npm cannot install them fails here rather than skipping the contract
    assert shutil.which("node"), "node is needed for examples/node"
    assert shutil.which("npm"), "npm is needed for examples/node"
    installed = _run(["npm", "ci", "--no-audit", "--no-fund"], timeout=300)
    assert installed.returncode == 0, installed.stderr
    with socket.socket() as probe:  # a free loopback port for the server to take a moment later
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Started before the server listens, as a till is across a restart: its first calls are
    # refused (UNAVAILABLE) and it tries again instead of failing.
    node = subprocess.Popen(["node", "client.js", "--address", f"127.0.0.1:{port}", "--member", "M-NODE-1",
                             "--occurred-at-ms", str(ms("2026-12-03 10:00"))],
                            cwd=NODE_EXAMPLE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PATRON_RETRIES": "40"})  # a loaded machine starts slowly
    try:
        time.sleep(0.5)
        assert node.poll() is None, node.communicate()
        server = start_server(shards=2, grpc_port=port, start_date=parse_day("2026-12-03"))
        out, err = node.communicate(timeout=60)
    finally:
        node.kill()
    assert node.returncode == 0, err
    enrolled, ack, shown = (json.loads(line) for line in out.splitlines())
    assert enrolled == {"enrolled": True, "tier": "Basic"}
    [result] = ack["results"]
    # 120.00 at 10 points per 10.00, × 1.2 for the winter campaign; int64 comes back as a string
    assert (result["outcome"], result["points"], result["reason"]) == ("OUTCOME_ACCEPTED", "144", "")
    member = shown["member"]
    assert (member["member_id"], member["tier"], member["points"], member["birthday"]) == (
        "M-NODE-1", "Basic", "144", "03-05")
    with PatronClient(server.address) as client:
        assert client.member("M-NODE-1").points == 144

