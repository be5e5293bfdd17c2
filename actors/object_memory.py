"""Where a process's Python objects live: pymalloc's arenas on transparent huge pages
(actors/huge_pages.pyx) in the processes that hold members for good (shards), unless the operator
says `PATRON_HUGE_PAGES=off` or the kernel offers none; ordinary pages in replay, unless the
operator says `PATRON_HUGE_PAGES=on`."""

import logging
import os
from pathlib import Path

from actors.logs import collect_rarely

__all__ = ["THP_SETTING", "kernel_mode", "prepare_to_hold_members", "prepare_to_replay", "use_huge_pages"]

THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def prepare_to_hold_members(log: logging.Logger) -> str:
    """What a process that holds members for good (a shard actor, the shard benches) sets before
    they load: the collector walking rarely, and its objects on huge pages (said as
    `use_huge_pages` says)."""
    collect_rarely()
    return use_huge_pages(log)


def prepare_to_replay(log: logging.Logger) -> str:
    """`prepare_to_hold_members` for replay (and the benches that run it), on ordinary pages unless
    PATRON_HUGE_PAGES=on. Replay is one pass whose heap only grows, so it pays the first touch of
    every page it uses and keeps it for seconds: where the host backs a guest's 2 MiB page only when
    it is first touched (a virtual machine whose free memory is reported back to its host), that
    cost 4.3 s of a 1,000,000-transaction replay's 20 CPU s, against 3% saved where it does not
    (bench/RESULTS.md, "Replay on ordinary pages")."""
    collect_rarely()
    return use_huge_pages(log, default="off")


def use_huge_pages(log: logging.Logger, default: str = "on") -> str:
    """Arenas taken from now on are on huge pages where the kernel can: 3-4% less CPU a transaction
    in a shard holding 100,000 members (bench/RESULTS.md, "Python's objects on huge pages").
    PATRON_HUGE_PAGES, when set, says on or off; else `default` does. Returns what was done, for
    the start's log line: "on" (the allocator is installed; the kernel decides page by page), or
    "off: why"."""
    setting = os.environ.get("PATRON_HUGE_PAGES", default)
    if setting == "off":
        return "off: PATRON_HUGE_PAGES=off" if "PATRON_HUGE_PAGES" in os.environ else "off: this process's default"
    if setting != "on":
        log.error(f"PATRON_HUGE_PAGES is on or off; taken as {default}", extra={"value": setting})
        if default == "off":
            return "off: this process's default (PATRON_HUGE_PAGES is on or off)"
    if (mode := kernel_mode()) in (None, "never"):
        return f"off: the kernel's transparent huge pages are {mode or 'not offered'}"
    try:
        from actors.huge_pages import install
    except ImportError as error:  # never silent, as for the other compiled parts
        log.error("actors/huge_pages is not built: Python's objects stay on ordinary pages, at about 3% more CPU "
                  "a transaction; reinstall with a C compiler present: pip install -e . (or make venv)",
                  extra={"reason": f"{type(error).__name__}: {error}"})
        return "off: not built"
    install()
    return "on"


def kernel_mode(setting: Path = THP_SETTING) -> str | None:
    """The kernel's transparent huge pages setting ("always", "madvise" or "never"), or None
    where there is none (another system, or a kernel built without them)."""
    try:
        text = setting.read_text()
    except OSError:
        return None
    chosen = [word[1:-1] for word in text.split() if word.startswith("[")]
    return chosen[0] if chosen else None
