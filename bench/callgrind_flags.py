"""A handshake with `callgrind_control` through files, so that only a bench's measured parts are
counted: the bench writes DIR/ready and waits for DIR/go, measures, writes DIR/done and waits for
DIR/off, as many times as it has parts to count. Each side deletes the file it waited for.
`bench/callgrind_window.sh` is the other side."""

import time
from pathlib import Path

__all__ = ["signal"]


def signal(flags: Path | None, mine: str, theirs: str) -> None:
    """Say `mine` and wait for `theirs` (nothing without a folder: an ordinary run)."""
    if flags is None:
        return
    (flags / mine).write_text("")
    while not (flags / theirs).exists():
        time.sleep(0.05)
    (flags / theirs).unlink()
