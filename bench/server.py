"""`patron serve` as a subprocess in its own session: start, find its port, crash, stop, clean up."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.machine import processes
from client import PatronClient

__all__ = ["Serve"]

_LISTENING = re.compile(r"gRPC\s+127\.0\.0\.1:(\d+)")


class Serve:
    """One server process; `kill_group()` removes it and every process of its session (Ray's)."""

    def __init__(self, data: Path, log: Path, *, rules: Path | None = None, shards: int = 0,
                 durability: str = "strict", start_date: str = "", hot_members: int = 0,
                 extra: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        command = [sys.executable, "-m", "cli.main", "serve", "--data", str(data), "--grpc-port", "0",
                   "--metrics-port", "-1", "--midnight", "manual", "--durability", durability]
        if rules is not None:
            command += ["--rules", str(rules)]
        if shards:
            command += ["--shards", str(shards)]
        if start_date:
            command += ["--start-date", start_date]
        if hot_members:
            command += ["--hot-members", str(hot_members)]
        command += extra
        self.log = log
        self.output = open(log, "ab")  # noqa: SIM115 - closed in wait()
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, stdout=self.output, stderr=subprocess.STDOUT,
                                        start_new_session=True, env=env)
        self.pid = self.process.pid
        self.address = ""

    def wait_for_port(self, timeout: float = 180.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = _LISTENING.search(self.log.read_text(errors="replace"))
            if found:
                self.address = f"127.0.0.1:{found.group(1)}"
                return self.address
            if self.process.poll() is not None:
                # what its session left (Ray's daemons) goes, and the log is closed: left open, it failed
                # the next test in the same worker with a ResourceWarning (a CI run, Ray's start timed out)
                self.kill_group()
                raise RuntimeError(f"patron serve exited early; see {self.log}:\n{self.tail()}")
            time.sleep(0.05)
        raise TimeoutError(f"patron serve did not listen within {timeout:.0f} s; see {self.log}")

    def client(self, timeout: float = 60.0) -> PatronClient:
        """A client once the server answers SERVING."""
        if not self.address:
            self.wait_for_port()
        client = PatronClient(self.address, timeout=timeout, retries=0)
        client.wait_until_serving(timeout=180)
        return client

    def crash(self) -> None:
        """kill -9 of the serve process alone, as a crash would do it."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM, then the whole session however it went."""
        code = None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.process.wait(timeout)
        self.kill_group()
        return code

    def kill_group(self) -> None:
        """Its process group, then anything left in its session (Ray's workers lead their own groups)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        for info in processes().values():
            if info.session == self.pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(info.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        self.output.close()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
