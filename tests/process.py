"""`patron serve` as a separate process, the way operators run it, for crash and signal tests."""

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
from tests.conftest import TEST_DAY

_LISTENING = re.compile(r"gRPC\s+127\.0\.0\.1:(\d+)")


class ServeProcess:
    def __init__(self, data: Path, *args: str, rules: Path | None = None, log: Path | None = None,
                 env: dict[str, str] | None = None, wait: bool = True, cwd: Path | None = None) -> None:
        """wait=False: back at once, without the address (for a kill during the start). cwd: run
        the installed `patron` command from that folder (`data` may then be relative to it), as an
        operator does; else `python -m cli.main` from here."""
        self.log = log or (cwd or Path()).joinpath(data).parent / f"serve-{time.monotonic_ns()}.log"
        program = [str(Path(sys.executable).with_name("patron"))] if cwd else [sys.executable, "-m", "cli.main"]
        command = [*program, "serve", "--data", str(data), "--grpc-port", "0",
                   "--metrics-port", "-1", "--midnight", "manual", *args]
        if "--start-date" not in args:  # never the real clock: see tests.conftest.TEST_DAY
            command += ["--start-date", TEST_DAY]
        if rules is not None:
            command += ["--rules", str(rules)]
        self.output = open(self.log, "ab")  # noqa: SIM115 - closed in wait()
        # its own session: at the end of a test the whole group goes, Ray's agents included
        self.process = subprocess.Popen(command, stdout=self.output, stderr=subprocess.STDOUT,
                                        start_new_session=True, env=env, cwd=cwd)
        self.address = f"127.0.0.1:{self._port()}" if wait else ""

    def _port(self, timeout: float = 120.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = _LISTENING.search(self.log.read_text(errors="replace"))
            if found:
                return int(found.group(1))
            if self.process.poll() is not None:
                self.kill_everything()  # what serve started before it ended (Ray), and its log closed
                raise RuntimeError(f"patron serve exited early:\n{self.log.read_text(errors='replace')}")
            time.sleep(0.1)
        raise TimeoutError(f"patron serve did not start within {timeout:.0f} s")

    def client(self) -> PatronClient:
        client = PatronClient(self.address, timeout=20, retries=0)
        client.wait_until_serving()
        return client

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> None:
        """kill -9 of the serve process alone, as a crash would do it."""
        self.process.kill()
        self.wait()

    def kill_everything(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if not self.output.closed:
            self.wait()

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self.output.close()

    def session(self) -> dict[int, str]:
        """pid -> command line of every live process in serve's session (it has one of its own):
        Ray's processes stay in it, however deep below serve they were started."""
        found = {}
        for info in processes().values():
            if info.session == self.process.pid and info.state != "Z":
                with contextlib.suppress(OSError):  # it ended meanwhile
                    found[info.pid] = Path(f"/proc/{info.pid}/cmdline").read_text().replace("\0", " ").strip()
        return found

    def text(self) -> str:
        return self.log.read_text(errors="replace")
