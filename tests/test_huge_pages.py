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

# Objects of about 120 MB, allocated in order and all freed together, so their arenas empty; then
# as many again. With "force", the allocator is installed whatever use_huge_pages said, so it runs
# on a kernel without huge pages too (on ordinary pages).
MEASURE = textwrap.dedent("""
    import json, logging, resource, sys
    from actors.object_memory import use_huge_pages

    def memory():
        fields = dict(line.split(":") for line in open("/proc/self/smaps_rollup") if line.count(":") == 1)
        return {key: int(fields[key].split()[0]) // 1024 for key in ("Rss", "AnonHugePages", "LazyFree")}

    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    before = [str(n) * 3 for n in range(100_000)]  # arenas taken before the allocator changes
    said = use_huge_pages(logging.getLogger("test"))
    from actors import huge_pages
    seen = {"said": said, "installed": huge_pages.installed()}
    if sys.argv[1:] == ["force"]:
        huge_pages.install()
    objects = [(n, str(n)) for n in range(800_000)]
    seen["held"], seen["counts_held"] = memory(), huge_pages.counts()
    del objects, before
    seen["freed"], seen["counts_freed"] = memory(), huge_pages.counts()
    again = [None] * 800_000  # the list's own memory before the count: only the objects' pages
    faulted = faults()
    for n in range(800_000):
        again[n] = (n, str(n))
    seen["again_faults"] = faults() - faulted
    seen["again"], seen["counts_again"] = memory(), huge_pages.counts()
    print(json.dumps(seen))
""")


# 120 arenas of 100-byte objects, every other arena's objects in the other list, so freeing one
# list empties arenas whose partner (the other half of their huge page) stays in use.
ALTERNATE = textwrap.dedent("""
    import json
    from actors import huge_pages

    def huge_mib():
        return next(int(line.split()[1]) // 1024 for line in open("/proc/self/smaps_rollup")
                    if line.startswith("AnonHugePages:"))

    huge_pages.install()
    lists, which = ([], []), 0
    arenas = start = huge_pages.counts()[1]
    while arenas < start + 120:
        lists[which].append(bytes(100))
        if (now := huge_pages.counts()[1]) != arenas:  # this object opened an arena: the other list's
            arenas, which = now, which ^ 1
            lists[which].append(lists[which ^ 1].pop())
    seen = {"full": huge_mib()}
    lists[0].clear()
    seen["kept"] = huge_pages.counts()[2]
    lists[0].extend(bytes(100) for _ in range(len(lists[1])))
    seen["again"] = huge_mib()
    print(json.dumps(seen))
""")


# What replay sets up, as `patron replay` does.
REPLAY = textwrap.dedent("""
    import json, logging
    from actors import huge_pages
    from actors.object_memory import prepare_to_replay

    said = prepare_to_replay(logging.getLogger("test"))
    print(json.dumps({"said": said, "installed": huge_pages.installed()}))
""")


def measured(*args: str, huge_pages: str | None = "on", script: str = MEASURE) -> dict:
    """The script's answer in a fresh interpreter; PATRON_HUGE_PAGES as given (None: not set)."""
    env = {key: value for key, value in os.environ.items() if key != "PATRON_HUGE_PAGES"}
    if huge_pages is not None:
        env["PATRON_HUGE_PAGES"] = huge_pages
    run = subprocess.run([sys.executable, "-c", script, *args], check=False, cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _taken_back(memory: dict) -> int:
    """MiB the process holds that the kernel may not take back without asking (Rss less LazyFree)."""
    return memory["Rss"] - memory["LazyFree"]


def test_arenas_given_back_return_their_memory_and_are_handed_out_again():
    seen = measured("force")
    regions, in_use, _ = seen["counts_held"]
    assert in_use >= 100  # the 120 MB of objects, 1 MiB an arena
    # pymalloc gave the emptied arenas back, and their memory is the kernel's to take (MADV_FREE)
    assert _taken_back(seen["held"]) - _taken_back(seen["freed"]) >= 80
    assert seen["counts_freed"][1] < 10
    # the next objects take the same arenas again before any new region
    assert seen["counts_again"][0] == regions
    assert seen["counts_again"][1] >= 100


def test_arenas_handed_out_again_are_not_faulted_in_and_cleared_anew():
    """Emptied with MADV_DONTNEED (planted), the 120 arenas taken again faulted in 60 huge pages,
    each cleared by the kernel (about 30,000 faults on ordinary pages); freed lazily, none while
    the machine has memory to spare (on ordinary pages about 500: the 4 KiB pages of the last
    arenas that the first objects never reached)."""
    seen = measured("force")
    assert seen["counts_again"][1] >= 100
    assert seen["again_faults"] < (20 if OFFERED else 3_000)


@pytest.mark.skipif(not OFFERED, reason="the kernel offers no transparent huge pages: see the test below")
def test_python_objects_land_on_huge_pages_and_stay_there_when_arenas_are_reused():
    seen = measured()
    assert seen["said"] == "on"
    assert seen["held"]["AnonHugePages"] >= 80  # most of the 120 MB of objects
    assert seen["again"]["AnonHugePages"] >= 80  # emptied whole, then faulted in as huge pages again


def test_an_arena_given_back_beside_one_in_use_is_kept_whole_and_handed_out_first():
    """Emptying half a huge page would split it for good: the arena handed out again would be on
    ordinary pages (planted, `AnonHugePages` fell from 120 to 2 MiB)."""
    seen = measured(script=ALTERNATE)
    assert seen["kept"] >= 50  # about one arena in two given back, each beside one in use
    if OFFERED:
        assert seen["full"] >= 100
        assert seen["again"] >= 0.9 * seen["full"]


def test_the_operator_or_the_kernel_can_leave_python_s_allocator_as_it_is():
    seen = measured(huge_pages="off")
    assert seen["said"] == "off: PATRON_HUGE_PAGES=off"
    assert not seen["installed"]
    if not OFFERED:
        assert measured()["said"].startswith("off: the kernel's transparent huge pages are")


def test_replay_keeps_ordinary_pages_unless_the_operator_says_on():
    """Replay pays the first touch of every page it uses (bench/RESULTS.md, "Replay on ordinary pages")."""
    assert measured(script=REPLAY, huge_pages=None) == {"said": "off: this process's default", "installed": False}
    assert measured(script=REPLAY, huge_pages="off")["said"] == "off: PATRON_HUGE_PAGES=off"
    asked = measured(script=REPLAY, huge_pages="on")
    assert asked["installed"] == OFFERED
    assert asked["said"] == "on" if OFFERED else asked["said"].startswith("off: the kernel's transparent huge pages")
    assert measured(script=REPLAY, huge_pages="false")["said"].startswith("off: this process's default")


@pytest.mark.parametrize(("text", "mode"), [("always [madvise] never\n", "madvise"),
                                            ("[always] madvise never", "always"),
                                            ("always madvise [never]", "never"), ("", None)])
def test_the_kernel_setting_is_the_bracketed_word(tmp_path, text, mode):
    setting = tmp_path / "enabled"
    setting.write_text(text)
    assert kernel_mode(setting) == mode
    assert kernel_mode(tmp_path / "absent") is None
