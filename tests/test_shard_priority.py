"""A shard's threads give way to the gateway's (actors/shard_priority.py). Whatever really lowers
a policy runs in a fresh interpreter, since a process that lowers its own cannot raise it again;
the refusals are played in this one with the system call replaced, so nothing changes here."""

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from actors import shard_priority

ROOT = Path(__file__).parents[1]

# A thread started before the call and one started after it, so both the threads a process has
# and those it starts later are seen; each thread's policy is read by its native id.
REPORT = textwrap.dedent("""
    import json, logging, os, threading

    from actors.shard_priority import yield_to_the_gateway

    errors = []
    class Keep(logging.Handler):
        def emit(self, record):
            errors.append(record.getMessage())
    log = logging.getLogger("test")
    log.addHandler(Keep())

    def park():
        ids.append(threading.get_native_id())
        running.release()
        done.wait()

    done, running, ids = threading.Event(), threading.Semaphore(0), []
    threading.Thread(target=park).start()
    running.acquire()
    said = yield_to_the_gateway(log)
    threading.Thread(target=park).start()
    running.acquire()
    policies = [os.sched_getscheduler(thread) for thread in [threading.get_native_id(), *ids]]
    done.set()
    print(json.dumps({"said": said, "policies": policies, "errors": errors}))
""")


def _report(setting: str | None) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "PATRON_SHARD_PRIORITY"}
    if setting is not None:
        env["PATRON_SHARD_PRIORITY"] = setting
    done = subprocess.run([sys.executable, "-c", REPORT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    return json.loads(done.stdout)


@pytest.mark.parametrize("setting", [None, "", "idle"])
def test_every_thread_of_a_shard_now_and_later_runs_behind_the_others(setting):
    seen = _report(setting)
    assert seen == {"said": "idle", "policies": [os.SCHED_IDLE] * 3, "errors": []}


def test_the_operator_may_keep_rays_priority():
    seen = _report("ray")
    assert seen["said"] == "ray: PATRON_SHARD_PRIORITY=ray"
    assert seen["policies"] == [os.sched_getscheduler(0)] * 3  # the policy the test's process passed on


def test_a_misspelt_setting_is_an_error_and_taken_as_idle():
    seen = _report("nice")
    assert seen["said"] == "idle"
    assert seen["policies"] == [os.SCHED_IDLE] * 3
    assert seen["errors"] == ["PATRON_SHARD_PRIORITY is idle or ray; taken as idle"]


class Threads:
    """Stands in for the system: the threads `listdir` lists, listing after listing, and which of
    them `sched_setscheduler` refuses; it records the threads it was asked to change."""

    def __init__(self, listings: list[set[int]], refuse: set[int] = frozenset()) -> None:
        self.listings, self.refuse, self.changed = listings, refuse, []

    def listdir(self, path: str) -> list[str]:
        assert path == "/proc/self/task"
        listing = self.listings.pop(0) if len(self.listings) > 1 else self.listings[0]
        return [str(thread) for thread in listing]

    def sched_setscheduler(self, thread: int, policy: int, parameters: object) -> None:
        assert policy == os.SCHED_IDLE
        if thread in self.refuse:
            raise PermissionError(1, "Operation not permitted")
        self.changed.append(thread)


@pytest.fixture
def system(monkeypatch):
    def play(listings: list[set[int]], refuse: set[int] = frozenset()) -> Threads:
        threads = Threads(listings, refuse)
        monkeypatch.delenv("PATRON_SHARD_PRIORITY", raising=False)
        monkeypatch.setattr(shard_priority.os, "listdir", threads.listdir)
        monkeypatch.setattr(shard_priority.os, "sched_setscheduler", threads.sched_setscheduler)
        return threads
    return play


def test_threads_started_while_the_others_change_are_changed_too(system):
    threads = system([{1, 2}, {1, 2, 3}, {1, 2, 3, 4}, {1, 3, 4}])
    assert shard_priority.yield_to_the_gateway(logging.getLogger("test")) == "idle"
    assert sorted(threads.changed) == [1, 2, 3, 4]  # each once


def test_a_refusal_for_every_thread_leaves_rays_priority_and_says_why(system, caplog):
    threads = system([{1, 2}], refuse={1, 2})
    said = shard_priority.yield_to_the_gateway(logging.getLogger("test"))
    assert said == "ray: refused (PermissionError: [Errno 1] Operation not permitted)"
    assert threads.changed == []
    assert [record.priority for record in caplog.records if record.levelname == "ERROR"] == [said]


def test_a_refusal_for_some_threads_says_they_are_partly_idle(system, caplog):
    threads = system([{1, 2, 3}], refuse={2})
    said = shard_priority.yield_to_the_gateway(logging.getLogger("test"))
    assert said == "partly idle: refused for some threads (PermissionError: [Errno 1] Operation not permitted)"
    assert sorted(threads.changed) == [1, 3]
    assert [record.priority for record in caplog.records if record.levelname == "ERROR"] == [said]


def test_threads_that_cannot_be_listed_are_left_as_they_are(monkeypatch):
    def unlisted(path: str) -> list[str]:
        raise FileNotFoundError(2, "No such file or directory", path)

    def never(*_: object) -> None:
        raise AssertionError("no thread is changed when they cannot all be found")

    monkeypatch.delenv("PATRON_SHARD_PRIORITY", raising=False)
    monkeypatch.setattr(shard_priority.os, "listdir", unlisted)
    monkeypatch.setattr(shard_priority.os, "sched_setscheduler", never)
    said = shard_priority.yield_to_the_gateway(logging.getLogger("test"))
    assert said.startswith("ray: this process's threads cannot be listed")
