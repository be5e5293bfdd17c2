"""`make run` is a demo: its load goes only into an empty data folder, and `make reset` empties it."""

import shutil
import subprocess
import time
from pathlib import Path

from tests.conftest import EXAMPLE_RULES

ROOT = Path(__file__).parents[2]


def wait_for_text(process, text: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in process.text():
        assert time.monotonic() < deadline, f"{text!r} not printed within {timeout:.0f} s:\n{process.text()}"
        assert process.process.poll() is None, process.text()
        time.sleep(0.2)


def totals(process) -> tuple[int, int]:
    with process.client() as client:
        shards = client.status().shards
    return sum(s.members for s in shards), sum(s.transactions for s in shards)


def test_the_demo_load_runs_only_on_an_empty_data_folder(tmp_path, serve_process):
    data = tmp_path / "data"
    first = serve_process(data, "--demo", "300", rules=EXAMPLE_RULES)
    wait_for_text(first, "the demo load of 300 transactions is in")
    members, accepted = totals(first)
    assert members > 0
    assert accepted > 0
    assert first.terminate() == 0

    second = serve_process(data, "--demo", "300", rules=EXAMPLE_RULES)
    wait_for_text(second, f"no demo load: {data} already has {members:,} members")
    assert "start with a new --data folder" in second.text()  # `make reset` empties ./data, not this one
    assert totals(second) == (members, 0)
    assert second.terminate() == 0
    assert "the demo load of" not in second.text()


def test_make_reset_empties_the_data_folder_and_keeps_the_venv(tmp_path):
    (tmp_path / "data" / "shards").mkdir(parents=True)
    (tmp_path / "data" / "layout.json").write_text("{}")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / ".installed").write_text("")
    done = subprocess.run([shutil.which("make") or "make", "-f", str(ROOT / "Makefile"), "reset"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "data").exists()
    assert (tmp_path / ".venv" / ".installed").exists()


def test_the_readme_documents_the_demo_and_make_reset():
    readme = (ROOT / "README.md").read_text()
    assert "--demo N" in readme
    assert "make reset" in readme
