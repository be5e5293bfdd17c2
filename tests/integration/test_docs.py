"""docs/api.md's grpcurl cookbook, run command by command against a real server: every command
succeeds and the sample answers it shows are what the server answers. grpcurl itself is used
when installed, else tests/grpcurl.py (the same calls, through reflection as grpcurl makes them)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from client import PatronClient
from engine.calendar import parse_day
from tests.builders import ms

ROOT = Path(__file__).parents[2]
API = ROOT / "docs" / "api.md"


def cookbook() -> tuple[list[str], list[dict]]:
    """The cookbook's shell blocks that call grpcurl, and the sample answers (json blocks)."""
    text = API.read_text(encoding="utf-8")
    blocks = re.findall(r"```(\w+)\n(.*?)```", text, flags=re.S)
    return ([body for lang, body in blocks if lang == "sh" and "grpcurl" in body],
            [json.loads(body) for lang, body in blocks if lang == "json"])


def printed_objects(output: str) -> list[dict]:
    decoder, found = json.JSONDecoder(), []
    for match in re.finditer(r"^\{", output, flags=re.M):
        found.append(decoder.raw_decode(output, match.start())[0])
    return found


def grpcurl_on_path(folder: Path) -> dict:
    env = dict(os.environ)
    if shutil.which("grpcurl"):
        return env
    shim = folder / "grpcurl"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tests.grpcurl "$@"\n')
    shim.chmod(0o755)
    env["PATH"] = f"{folder}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_every_grpcurl_command_of_the_api_docs_works_and_answers_as_shown(start_server, tmp_path):
    commands, samples = cookbook()
    assert len(commands) >= 8
    assert len(samples) >= 2
    server = start_server(shards=2, start_date=parse_day("2026-12-03"))
    script = "set -eu\n" + "\n".join(commands)
    script = script.replace("$(date +%s%3N)", str(ms("2026-12-03 10:00"))).replace("127.0.0.1:50051", server.address)
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=grpcurl_on_path(tmp_path), capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "patron.v1.Ingest\n" in done.stdout
    assert "patron.v1.Members.ListLedger\n" in done.stdout
    answers = printed_objects(done.stdout)
    for sample in samples:
        assert sample in answers
    with PatronClient(server.address) as client:
        assert (client.member("M1").status, list(client.member("M1").tags)) == ("active", ["vip"])
        assert [e.ref for e in client.ledger("M1") if e.kind == "adjust"] == ["ADJ-1"]
        assert client.member("M2").points > 0
