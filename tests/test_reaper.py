"""The watcher that kills what serve's Ray left (actors/reaper.py): what it counts as ended."""

import os
import subprocess
import sys
import time

from actors.reaper import _ended, _list, start_time


def test_a_zombie_or_a_process_gone_counts_as_ended_and_is_not_listed_again():
    # a reviewer: a pid whose process ended between listing and reading was kept with no start
    # time, then "killed" every tenth of a second for 10 s, and a zombie was waited for alike
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while not _ended(child.pid) and time.monotonic() < deadline:  # a zombie until waited for
        time.sleep(0.05)
    assert _ended(child.pid)
    assert start_time(child.pid) != ""
    child.wait()
    assert _ended(child.pid)
    assert start_time(child.pid) == ""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        known: dict[int, str] = {}
        _list(known, os.getpid())
        assert known.get(sleeper.pid) == start_time(sleeper.pid) != ""
        assert "" not in known.values()
        assert not _ended(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()
