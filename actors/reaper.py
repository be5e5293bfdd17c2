"""No orphans: the processes of `patron serve`'s embedded Ray die with it, even after kill -9.

Ray has the kernel kill its own children (GCS, raylet, monitors) when the serve process dies,
but not its agents (DashboardAgent and RuntimeEnvAgent, about 190 MB): they are the raylet's
children, notice its death, and then spend 60 s trying to report it to a GCS that is already
gone. Ray gives no option to leave them out. So serve starts this small watcher before Ray,
with a pipe only serve writes to; the pipe closes when serve ends, however it ends, and the
watcher then kills every process of serve's Ray that is still there.

It knows them two ways, because a kill -9 may come at any moment of the start:
- serve's descendants, listed every tenth of a second until serve says it has started (then
  once more): each by its pid and start time, so a pid the system has since reused is never
  touched;
- a mark in the environment, set before Ray starts and so inherited by every process it starts,
  however deep below serve: it covers a process born since the last listing. It is not enough
  alone: Ray's processes write their titles ("ray::DashboardAgent") over the memory /proc shows
  as their environment.

The watcher runs this file as a script, `python reaper.py MARK`, and reads the pipe.
"""

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["MARK", "Reaper"]

MARK = "PATRON_SERVE"
"""The environment variable every process of one serve's Ray carries: `PID.START-TIME` of serve."""

STARTED = b"started\n"


class Reaper:
    """The watcher process, and the pipe that tells it serve has started, then that it has ended."""

    def __init__(self) -> None:
        own = os.getpid()
        os.environ[MARK] = f"{own}.{start_time(own)}"  # before Ray: inherited by all it starts
        # it ignores Ctrl-C and SIGTERM sent to the whole group: serve stops Ray itself then,
        # and the watcher is still there to clean up should serve not get that far
        self.process = subprocess.Popen([sys.executable, "-I", __file__, os.environ[MARK]],
                                        stdin=subprocess.PIPE)

    def ray_started(self) -> None:
        """Ray's processes carry the mark now (those the raylet starts later inherit it from the
        raylet): it leaves serve's environment, so nothing else serve or a program embedding it
        starts is killed at its end."""
        os.environ.pop(MARK, None)

    def started(self) -> None:
        """Ray's processes are all up: the watcher lists them once more and stops looking."""
        assert self.process.stdin is not None
        self.process.stdin.write(STARTED)
        self.process.stdin.flush()

    def close(self) -> None:
        """After a clean stop: Ray is down, so the watcher finds nothing left and exits."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(30)


def main(mark: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    serve = os.getppid()
    known: dict[int, str] = {}
    looking = True
    while True:
        if looking:
            _list(known, serve)
        if select.select([0], [], [], 0.1 if looking else None)[0]:
            said = os.read(0, 64)
            if not said:  # serve has ended, however it ended
                break
            looking = looking and STARTED not in said
            if not looking:
                _list(known, serve)
    # the pipe closes a moment before the kernel ends Ray's raylet, which meanwhile may start
    # an agent again in place of one killed here: so look again until none is left
    spared = {os.getpid(), serve}
    for _ in range(100):
        found = {pid for pid, started in known.items() if start_time(pid) == started} | set(marked(mark))
        if not (found := {pid for pid in found - spared if not _ended(pid)}):
            return
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _list(known: dict[int, str], serve: int) -> None:
    """serve's descendants by pid and start time, each from the one read of /proc that listed it."""
    known.update(descendants(serve))


def _ended(pid: int) -> bool:
    """Gone, or a zombie: killed already, waiting for its parent (or a container's init) to reap it."""
    fields = _stat(pid)
    return not fields or fields[0] == "Z"


def marked(mark: str) -> list[int]:
    """Every process whose environment, as /proc shows it, holds MARK=mark."""
    wanted = f"{MARK}={mark}".encode()
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                environment = Path(f"/proc/{name}/environ").read_bytes()
            except OSError:  # ended meanwhile, or another user's
                continue
            if wanted in environment.split(b"\0"):
                found.append(int(name))
    return found


def descendants(root: int) -> dict[int, str]:
    """Every process below `root` (its children, theirs, ...) with its start time, from /proc;
    one that ended while /proc was read is not there."""
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (fields := _stat(int(name))):
            children.setdefault(int(fields[1]), []).append(int(name))
            started[int(name)] = fields[19]
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        below = children.get(frontier.pop(), [])
        found.update((pid, started[pid]) for pid in below)
        frontier += below
    return found


def start_time(pid: int) -> str:
    """When the process started (clock ticks since boot), or "" when there is no such process."""
    fields = _stat(pid)
    return fields[19] if fields else ""


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat from the state on (the name before it may hold spaces and parentheses)."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            text = file.read()
    except OSError:
        return []
    return text[text.rindex(")") + 2:].split()


if __name__ == "__main__":
    main(sys.argv[1])
