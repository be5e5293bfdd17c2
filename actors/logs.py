"""Process settings every patron process shares: structured JSON logs, garbage collection.
In `patron serve` every line on stderr is one JSON object: patron's own logs, other libraries'
warnings (Ray's included) and what the shard actors' processes write."""

import gc
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["JsonFormatter", "Throttled", "collect_in_small_steps", "collect_rarely", "configure_logging",
           "ray_output_as_json", "without_colour"]

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": _timestamp(record.created),
                "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        # Ray's record factory adds private fields (_ray_timestamp_ns) to every record
        line.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


def configure_logging(level: str | None = None) -> None:
    """JSON lines on stderr at `level`, else PATRON_LOG_LEVEL, else INFO (DEBUG adds a line per
    batch with its id, shards, size and seconds)."""
    level = level or os.environ.get("PATRON_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    patron = logging.getLogger("patron")
    patron.handlers[:] = [handler]
    patron.setLevel(level)
    patron.propagate = False
    others = logging.getLogger()  # Ray, grpc, asyncio: their warnings as JSON lines too
    others.handlers[:] = [handler]
    others.setLevel(logging.WARNING)


class Throttled:
    """A warning that comes thousands of times a second when it comes at all (overload refusals):
    written the first time, then at most once per `seconds`, with how many were not written
    since the last line. Writing each would cost the event loop more than the refusal itself."""

    def __init__(self, logger: logging.Logger, seconds: float = 10.0, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.logger = logger
        self.seconds = seconds
        self.clock = clock
        self.unwritten = 0
        self.next = 0.0

    def warning(self, message: str) -> None:
        now = self.clock()
        if now < self.next:
            self.unwritten += 1
            return
        self.logger.warning(message, extra={"unwritten_since_last": self.unwritten} if self.unwritten else None)
        self.unwritten, self.next = 0, now + self.seconds


def collect_rarely() -> None:
    """patron's records form no reference cycles, yet members hold small dicts and lists the
    cyclic collector keeps walking; collecting far less often saves 20-30% of CPU."""
    gc.set_threshold(200_000, 50, 1_000)


def collect_in_small_steps() -> None:
    """A gateway's garbage is not records but the cycles each refused call leaves (its exception
    and traceback, grpc.aio's state for the call), which reference counting cannot free. At
    collect_rarely's 200,000 the young generation's collection held the event loop 75-100 ms
    every 8-10 s under overload, and every call arriving meanwhile waited for it; at 10,000 it
    takes a few milliseconds, for the same garbage in all. What the process keeps for its whole
    life is frozen once it has started (`gc.freeze`), so older generations' rare collections do
    not walk it."""
    gc.set_threshold(10_000, 50, 1_000)


_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def without_colour(text: str) -> str:
    """Ray's text without its terminal colour codes."""
    return _COLOUR.sub("", text)
_AUTOSCALER_TROUBLE = re.compile(r"Error|Warning|WARNING|ERROR")


def ray_output_as_json(data: dict, ignore_prefix: bool = False) -> None:
    """What Ray forwards to the driver from worker processes (the shard actors' log lines,
    anything else they print), from the raylet (a worker died) and from the autoscaler: one
    JSON line each on stderr, instead of Ray's coloured `(ShardActor pid=...)` prefixes and
    "repeated Nx across cluster" summaries. Lines that are JSON already (patron's logs in a
    shard) keep their fields and gain the process id."""
    source = {"pid": data.get("pid"), **({"actor": data["actor_name"]} if data.get("actor_name") else {})}
    logger = {"raylet": "ray.raylet", "autoscaler": "ray.autoscaler"}.get(str(data.get("pid")), "ray.worker")
    out = []
    for raw in data.get("lines", []):
        text = without_colour(raw).rstrip()
        if not text or (logger == "ray.autoscaler" and not _AUTOSCALER_TROUBLE.search(text)):
            continue  # its status report every 5 s: an embedded Ray has nothing to scale
        try:
            line = json.loads(text)
        except ValueError:
            line = None
        if not isinstance(line, dict):
            line = {"ts": _timestamp(time.time()), "level": "warning" if data.get("is_err") else "info",
                    "logger": logger, "msg": text}
        out.append(json.dumps({**line, **source}, default=str))
    if out:
        sys.stderr.write("\n".join(out) + "\n")
        sys.stderr.flush()
