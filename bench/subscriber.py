"""An Events subscriber in its own process, as a notifier would run: it reads from the oldest
event held, parses each event, and counts; it stops after `count` events or when told to."""

import multiprocessing as mp
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Received", "Subscriber"]


@dataclass
class Received:
    events: int
    seconds: float
    """From the first event to the last one counted."""
    error: str = ""
    cpu_seconds: float = 0.0
    """Of the subscriber process, from its start to its end."""

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


class Subscriber:
    def __init__(self, address: str, count: int = 0) -> None:
        context = mp.get_context("spawn")
        self._stop = context.Event()
        self._answers: Any = context.Queue()
        self.process = context.Process(target=_follow, args=(address, count, self._stop, self._answers), daemon=True)
        self.process.start()

    def wait(self, timeout: float) -> Received:
        """Once the count is reached; TimeoutError when it is not within `timeout` seconds."""
        try:
            received = self._answers.get(timeout=timeout)
        except Exception:
            self.stop()
            raise TimeoutError(f"the subscriber did not receive its events within {timeout:.0f} s") from None
        self.process.join(10)
        return received

    def stop(self) -> Received:
        self._stop.set()
        received = self._answers.get(timeout=60)
        self.process.join(10)
        return received


def _follow(address: str, count: int, stop: Any, answers: Any) -> None:
    from client import PatronClient

    client = PatronClient(address, retries=0)
    stream = client.subscribe(name="bench")
    threading.Thread(target=lambda: (stop.wait(), stream.cancel()), daemon=True).start()
    events, first, last, error = 0, 0.0, 0.0, ""
    try:
        for _ in stream:  # each event parsed, as a notifier would
            if not events:
                first = time.perf_counter()
            events += 1
            last = time.perf_counter()
            if events == count:
                break
    except Exception as failure:  # a cancelled stream ends this way too
        if not stop.is_set():
            error = f"{type(failure).__name__}: {failure}"
    stream.cancel()
    used = os.times()
    answers.put(Received(events, last - first, error, used.user + used.system))
    client.close()
