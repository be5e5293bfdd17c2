"""Checks of what an operator gives the patron command, made where it is read: argument types
(argparse turns their ArgumentTypeError into its usage line and exit 2) and text files. A bad
value is told in its own words before any work starts, not as an error from deep inside."""

import argparse
import codecs
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from engine.calendar import parse_day
from engine.errors import PatronError
from engine.messages import not_utf8
from engine.rules import MAX_AMOUNT

__all__ = ["BOM", "address", "day", "day_text", "host", "past_bom", "path", "port", "request_id", "signed_points",
           "utf8_file", "utf8_text", "whole"]


def whole(unit: str, least: int = 0, most: int | None = None) -> Callable[[str], int]:
    """A whole number of `unit` from `least` (to `most`)."""
    bounds = f"from {least:,} to {most:,}" if most is not None else f"{least:,} or more"

    def parse(text: str) -> int:
        try:
            count = int(text)
        except ValueError:
            count = None
        if count is None or count < least or (most is not None and count > most):
            raise argparse.ArgumentTypeError(f"expected a whole number of {unit}, {bounds}, got {text!r}")
        return count
    return parse


def port(least: int = 0) -> Callable[[str], int]:
    """A TCP port; `least` -1 lets -1 mean "off"."""
    check = whole("", least, 65_535)

    def parse(text: str) -> int:
        try:
            return check(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"expected a port from {least} to 65535, got {text!r}") from None
    return parse


def day(text: str) -> int:
    """A date as the engine's day number."""
    try:
        return parse_day(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def day_text(text: str) -> str:
    """A date checked as `day` does, kept as the text (for what takes ISO dates)."""
    day(text)
    return text


def address(text: str) -> str:
    """A gRPC target such as 127.0.0.1:50051: gRPC itself would take an empty or spaced one and
    answer with lines of its C core's log, or only after its retries."""
    if _blank_or_spaced(text) or not _port_in_range(text):
        raise argparse.ArgumentTypeError(f"expected patron's address as HOST:PORT (e.g. 127.0.0.1:50051), "
                                         f"got {text!r} (from --address, or PATRON_ADDRESS when it is not given)")
    return text


def path(text: str) -> Path:
    """A file or folder named: an empty name (an unset variable, `--data "$PATRON_DATA"`) is
    refused, where Path("") is the current folder and serve made its data folder there (an
    outside probe)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a file or folder's path, got {text!r}")
    return Path(text)


def _port_in_range(target: str) -> bool:
    """A port, where the target ends with one, is 1 to 65535: gRPC tried 127.0.0.1:99999 for its
    retries and said "connection refused" (an outside probe)."""
    head, _, port = target.rpartition(":")
    return not (head and port.isdigit() and not target.startswith("unix:")) or 1 <= int(port) <= 65535


def host(text: str) -> str:
    """An address to listen on: an empty one was refused as "listen on  without authentication"."""
    if _blank_or_spaced(text):
        raise argparse.ArgumentTypeError(f"expected an address to listen on (e.g. 127.0.0.1 or 0.0.0.0), got {text!r}")
    return text


def signed_points(text: str) -> int:
    """Points added (or, negative, taken away) by hand: not 0, and within SPEC §2's bounds."""
    try:
        points = int(text)
    except ValueError:
        points = 0
    if not points or abs(points) > MAX_AMOUNT:
        raise argparse.ArgumentTypeError(f"expected a whole number of points other than 0, from -10^15 to 10^15, "
                                         f"got {text!r}")
    return points


def request_id(text: str) -> str:
    """An idempotency key given: an empty one (a script's unset variable) would be taken as none,
    and the adjustment sent under a new id, applied a second time."""
    if _blank_or_spaced(text):  # one too long is the engine's to refuse (id_too_long), nothing changed
        raise argparse.ArgumentTypeError(f"expected a request id without spaces, got {text!r}")
    return text


def _blank_or_spaced(text: str) -> bool:
    return not text or any(c.isspace() for c in text)


def utf8_text(path: Path) -> str:
    """A text file the command reads whole; one that is not UTF-8 is named, with where it fails."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise PatronError(f"{path}: {not_utf8(error)}") from None


BOM = codecs.BOM_UTF8
"""What some editors (Windows' Notepad, Excel's "UTF-8" CSV) put before UTF-8 text."""


def past_bom(source: BinaryIO) -> BinaryIO:
    """The stream past a byte order mark at its start (`import` took a file with one, `send` and
    `replay` rejected its first line `malformed`: an outside probe); at its start otherwise, a
    pipe included (what was read of it is kept)."""
    head = source.peek(len(BOM))[:len(BOM)] if hasattr(source, "peek") else b""
    if head == BOM:
        source.read(len(BOM))
    return source


def utf8_file(path: Path, block: int = 1 << 20) -> None:
    """A file read line by line (send, replay) checked whole before anything is sent or written:
    one that is not UTF-8 text (a binary file, UTF-16) is one error naming where it fails, not a
    run with every line `malformed` and exit 0. A pipe cannot be read twice, so it is not checked
    here: its lines that are not UTF-8 are rejected `malformed` as they come."""
    with open(path, "rb") as source:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            return
        decoder, fed, buffer = codecs.getincrementaldecoder("utf-8")(), 0, bytearray(block)
        while True:  # into one buffer: a new block each time was half the check's time, in page faults
            size = source.readinto(buffer)
            data = buffer if size == block else buffer[:size]
            # bytes of a character cut by the block's end wait in the decoder: offsets count from them
            held = len(decoder.getstate()[0])
            if data and not held and data.isascii():  # most files: the bytes tested, no text made (a tenth of the time)
                fed += len(data)
                continue
            try:
                decoder.decode(data, final=not data)
            except UnicodeDecodeError as error:
                raise PatronError(f"{path}: {not_utf8(error, fed - held)}") from None
            if not data:
                return
            fed += len(data)

