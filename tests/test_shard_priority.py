"""A shard's threads give way to the gateway's (actors/shard_priority.py): in a fresh interpreter
each, since a process that lowers its own priority cannot raise it again."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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
    assert seen["policies"] == [os.SCHED_OTHER] * 3


def test_a_misspelt_setting_is_an_error_and_taken_as_idle():
    seen = _report("nice")
    assert seen["said"] == "idle"
    assert seen["policies"] == [os.SCHED_IDLE] * 3
    assert seen["errors"] == ["PATRON_SHARD_PRIORITY is idle or ray; taken as idle"]
