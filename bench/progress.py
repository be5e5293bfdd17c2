"""A single updating stderr line for long runs: done/total, rate and elapsed time."""

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Redraws at most every `every` seconds on a terminal; elsewhere (logs, pipes) it writes a
    plain line every `every_plain` seconds so a log file stays readable."""

    def __init__(self, label: str, total: int, unit: str = "transactions", stream: TextIO | None = None,
                 every: float = 0.5, every_plain: float = 5.0) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every = every if self.tty else every_plain
        self.started = time.monotonic()
        self.shown_at = 0.0
        self.done = 0
        self.note = ""
        self.written: tuple[int, str] | None = None
        """What the last line written to a log said was done."""

    def update(self, done: int, note: str = "") -> None:
        self.done, self.note = done, note
        now = time.monotonic()
        if now - self.shown_at >= self.every:
            self.shown_at = now
            self._show(now)

    def close(self) -> None:
        self._show(time.monotonic(), final=True)

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        total = f"/{self.total:,}" if self.total else ""
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        note = f", {self.note}" if self.note else ""
        return (f"{self.label}: {self.done:,}{total} {self.unit}{share}, {self.done / elapsed:,.0f}/s, "
                f"{elapsed:.0f} s{note}")

    def _show(self, now: float, final: bool = False) -> None:
        text = self.line(now)
        if self.tty:
            self.stream.write("\r\x1b[K" + text + ("\n" if final else ""))
        elif not (final and (self.done, self.note) == self.written):  # a close right after the last line: once
            self.stream.write(text + "\n")
        self.written = (self.done, self.note)
        self.stream.flush()
