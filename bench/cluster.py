"""A real two-node Ray cluster on this machine, for tests and `patron bench scaling`, started
as an operator starts one: `ray start --head` and `ray start --address` as processes, each node
with its own temp dir, loopback address (127.0.0.1 and 127.0.0.2), `patron-node` label and data
root. Token authentication is on, with a token of its own (never ~/.ray). Every process a node
started is ended by pid at the end, workers included (they run in sessions of their own)."""

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from actors.server import ray_environment
from bench.machine import processes

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Node:
    def __init__(self, name: str, root: Path, ip: str, args: list[str], env: dict[str, str]) -> None:
        self.name, self.root, self.ip = name, root, ip
        self.data = root / "data"
        root.mkdir(parents=True, exist_ok=True)
        # short: Ray's socket paths under it must stay within AF_UNIX's 107 bytes
        self.temp = Path(tempfile.mkdtemp(prefix=f"patron-{name}-", dir="/tmp"))
        self.log = root / "ray-start.log"
        command = [RAY, "start", "--block", "--node-ip-address", ip, "--temp-dir", str(self.temp),
                   "--labels", f"patron-node={name}", "--dashboard-agent-listen-port", "0",
                   "--disable-usage-stats", *args]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                            env={**env, "PATRON_NODE_DATA": str(self.data)})

    def pids(self) -> list[int]:
        """Every live process of this node: its `ray start` session, and the workers its raylet
        started (in sessions of their own), known by this node's own temp dir."""
        found = []
        for info in processes().values():
            if info.state == "Z":
                continue
            if info.session == self.process.pid:
                found.append(info.pid)
                continue
            with contextlib.suppress(OSError):
                if str(self.temp) in Path(f"/proc/{info.pid}/cmdline").read_text():
                    found.append(info.pid)
        return found

    def kill(self, timeout: float = 10.0) -> None:
        """kill -9 of every process of the node, as a machine's loss would do it, until none is left."""
        deadline = time.monotonic() + timeout
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)


class LocalCluster:
    """A head (node `a`) and a second node (`b`), each with `cpus` CPUs for Ray."""

    def __init__(self, root: Path, cpus: int = 2) -> None:
        self.root = root
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, **ray_environment(), "RAY_AUTH_MODE": "token",
                    "RAY_AUTH_TOKEN": secrets.token_hex(16),
                    # a lost node is known in ~3 s rather than ~30 s (Ray's defaults, for real networks)
                    "RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "1000",
                    "RAY_health_check_failure_threshold": "3"}
        self.env.pop("RAY_AUTH_TOKEN_PATH", None)
        self.cpus = cpus
        self.nodes: dict[str, Node] = {}
        """The live node of each name; `started` has every node ever started, lost ones too."""
        self.started: list[Node] = []
        try:
            self.nodes["a"] = Node("a", root / "a", "127.0.0.1", [
                "--head", "--port", str(self.port), "--include-dashboard", "false",
                "--dashboard-port", str(free_port()), "--num-cpus", str(cpus)], self.env)
            self.started.append(self.nodes["a"])
            self.wait_for_nodes({"a"})
            self.add("b")
        except BaseException:  # nothing half-started stays behind
            self.stop()
            raise

    def add(self, name: str) -> Node:
        """Start (or start again) the second node under the same name, data root and address."""
        node = Node(name, self.root / name, "127.0.0.2", ["--address", self.address, "--num-cpus",
                                                           str(self.cpus)], self.env)
        self.nodes[name] = node
        self.started.append(node)
        self.wait_for_nodes(set(self.nodes))
        return node

    def wait_for_nodes(self, names: set[str], timeout: float = 90.0) -> None:
        """Until the GCS lists a live node for every name (asked from a process of its own: this
        one may be connected to another Ray)."""
        script = f"""
import sys, time, ray
ray.init(address={self.address!r}, logging_level="ERROR")
deadline = time.monotonic() + {timeout}
while time.monotonic() < deadline:
    if set({sorted(names)!r}) <= {{n["Labels"].get("patron-node") for n in ray.nodes() if n["Alive"]}}:
        sys.exit(0)
    time.sleep(0.5)
sys.exit(1)
"""
        answer = subprocess.run([sys.executable, "-c", script], env=self.env, capture_output=True, text=True,
                                timeout=timeout + 60, check=False)
        if answer.returncode:
            raise TimeoutError(f"the nodes {sorted(names)} did not join within {timeout:.0f} s: "
                               f"{answer.stderr[-2000:]}; see {self.root}/*/ray-start.log")

    def stop(self) -> None:
        """Second node first, then the head; SIGTERM, then SIGKILL for what is left."""
        for node in reversed(self.started):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.process.wait(5)
            node.kill()
            shutil.rmtree(node.temp, ignore_errors=True)

    def leftovers(self) -> list[int]:
        return [pid for node in self.started for pid in node.pids()]
