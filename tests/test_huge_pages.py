"""Python's objects on huge pages (actors/huge_pages.pyx): in a fresh interpreter each, since the
allocator, once installed, is the process's for good."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from actors.object_memory import kernel_mode

ROOT = Path(__file__).parents[1]
OFFERED = kernel_mode() not in (None, "never")

# Objects of about 120 MB, allocated in order and all freed together, so their arenas empty.
MEASURE = textwrap.dedent("""
    import json, logging, sys
    from actors.object_memory import use_huge_pages

    def memory():
        fields = dict(line.split(":") for line in open("/proc/self/smaps_rollup") if line.count(":") == 1)
        return {key: int(fields[key].split()[0]) // 1024 for key in ("Rss", "AnonHugePages")}

    before = [str(n) * 3 for n in range(100_000)]  # arenas taken before the allocator changes
    said = use_huge_pages(logging.getLogger("test"))
    from actors import huge_pages
    objects = [(n, str(n)) for n in range(800_000)]
    held = memory()
    counts_held = huge_pages.counts() if huge_pages.installed() else None
    del objects, before
    freed = memory()
    again = [(n, str(n)) for n in range(800_000)]
    counts_again = huge_pages.counts() if huge_pages.installed() else None
    print(json.dumps({"said": said, "held": held, "freed": freed, "counts_held": counts_held,
                      "counts_again": counts_again}))
""")


def measured(**env: str) -> dict:
    run = subprocess.run([sys.executable, "-c", MEASURE], check=False, cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={**os.environ, **env})
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.skipif(not OFFERED, reason="the kernel offers no transparent huge pages: see the test below")
def test_python_objects_land_on_huge_pages_and_their_memory_goes_back_when_freed():
    seen = measured()
    assert seen["said"] == "on"
    assert seen["held"]["AnonHugePages"] >= 40  # most of the 120 MB of objects
    # pymalloc gave the emptied arenas back and their memory left the process
    assert seen["held"]["Rss"] - seen["freed"]["Rss"] >= 40
    regions, in_use, spare = seen["counts_held"]
    assert in_use >= 40
    assert spare == 0
    # the next objects take the kept arenas again before any new region
    assert seen["counts_again"][0] == regions
    assert seen["counts_again"][2] < seen["counts_held"][1]


def test_without_huge_pages_in_the_kernel_the_process_says_so_and_runs_as_before():
    """On a kernel that offers them this is the operator's switch; both ways nothing is installed."""
    seen = measured(PATRON_HUGE_PAGES="off")
    assert seen["said"] == "off: PATRON_HUGE_PAGES=off"
    assert seen["counts_held"] is None
    if not OFFERED:
        assert measured()["said"].startswith("off: the kernel's transparent huge pages are")


@pytest.mark.parametrize(("text", "mode"), [("always [madvise] never\n", "madvise"),
                                            ("[always] madvise never", "always"),
                                            ("always madvise [never]", "never"), ("", None)])
def test_the_kernel_setting_is_the_bracketed_word(tmp_path, text, mode):
    setting = tmp_path / "enabled"
    setting.write_text(text)
    assert kernel_mode(setting) == mode
    assert kernel_mode(tmp_path / "absent") is None
