"""No orphans: the processes of `patron serve`'s embedded Ray die with it, even after kill -9.

Ray has the kernel kill its own children (GCS, raylet, monitors) when the serve process dies,
but not its agents (DashboardAgent and RuntimeEnvAgent, about 190 MB): they are the raylet's
children, notice its death, and then spend 60 s trying to report it to a GCS that is already
gone. Ray gives no option to leave them out. So serve starts this small watcher with a pipe
only serve writes to; the pipe closes when serve ends, however it ends, and the watcher then
kills every process serve's Ray had started that is still there. Each is known by its pid and
its start time, so a pid the system has since reused is never touched.

The watcher runs this file as a script: it reads `pid start-time` lines until the pipe closes.
"""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

__all__ = ["Reaper", "descendants"]


class Reaper:
    """The watcher process, and the pipe that tells it which processes to clean up."""

    def __init__(self) -> None:
        # it ignores Ctrl-C and SIGTERM sent to the whole group: serve stops Ray itself then,
        # and the watcher is still there to clean up should serve not get that far
        self.process = subprocess.Popen([sys.executable, "-I", __file__], stdin=subprocess.PIPE)

    def watch(self, pids: list[int]) -> None:
        """Processes to kill once serve is gone (those that have ended already are skipped)."""
        assert self.process.stdin is not None
        lines = [f"{pid} {started}\n" for pid in pids if (started := start_time(pid))]
        self.process.stdin.write("".join(lines).encode())
        self.process.stdin.flush()

    def close(self) -> None:
        """After a clean stop: Ray is down, so the watcher finds nothing left and exits."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)


def descendants(root: int) -> list[int]:
    """Every process below `root` (its children, theirs, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, frontier = [], [root]
    while frontier:
        below = children.get(frontier.pop(), [])
        found += below
        frontier += below
    return found


def start_time(pid: int) -> str:
    """When the process started (clock ticks since boot), or "" when there is no such process."""
    fields = _stat(pid)
    return fields[19] if fields else ""


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat from the state on (the name before it may hold spaces and parentheses)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return text[text.rindex(")") + 2:].split()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    watched = [line.split() for line in sys.stdin if line.strip()]  # until serve's end closes the pipe
    for pid, started in watched:
        if start_time(int(pid)) == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


if __name__ == "__main__":
    main()
