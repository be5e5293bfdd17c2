"""The compiled engine against its .py, the specification, in a child process: the tests that
compare the two run one script twice, the second time with PATRON_PURE_ENGINE=1."""

import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[1]


def answer(call):
    """What a call gives, as plain data, or what it raises, as [type, message]: compiled must
    raise, or not, as the .py does."""
    try:
        return msgspec.to_builtins(call())
    except Exception as error:  # the point: the two engines are compared on their errors too
        return [type(error).__name__, str(error)]


def engine_environment(pure: bool) -> dict[str, str]:
    """This process's environment for a child that runs the engine compiled, or (`pure`) from its
    .py files, whatever PATRON_PURE_ENGINE the tests were started with."""
    env = {k: v for k, v in os.environ.items() if k != "PATRON_PURE_ENGINE"}
    return env | {"PATRON_PURE_ENGINE": "1"} if pure else env


def run_engine_script(script: str, data: object, pure: bool) -> dict:
    """Run `script` (it reads `data` as JSON on stdin and prints its answers as its last line, as
    JSON) with the engine compiled, or (`pure`) from its .py files."""
    env = engine_environment(pure)
    done = subprocess.run([sys.executable, "-c", script], input=json.dumps(data), capture_output=True, text=True,
                          env=env, timeout=600, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])
