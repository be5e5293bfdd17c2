"""What the clients saw over time: answered transactions per second and batch latency percentiles."""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Timeline", "percentile"]


class _Answers(Protocol):
    started: list[float]
    answered: list[float]
    sizes: list[int]


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of sorted `values` (share in 0..1); 0 when there are none."""
    if not values:
        return 0.0
    rank = max(1, math.ceil(share * len(values)))
    return values[min(rank, len(values)) - 1]


@dataclass(frozen=True)
class Timeline:
    """Answers as (seconds after `start` it came, transactions, latency), sorted by time."""

    start: float
    answers: list[tuple[float, int, float]]

    @classmethod
    def of(cls, reports: Iterable[_Answers], start: float) -> "Timeline":
        answers = [(answered - start, size, answered - started) for report in reports
                   for started, answered, size in zip(report.started, report.answered, report.sizes, strict=True)]
        return cls(start, sorted(answers))

    @property
    def transactions(self) -> int:
        return sum(size for _, size, _ in self.answers)

    @property
    def seconds(self) -> float:
        """From the start to the last answer."""
        return self.answers[-1][0] if self.answers else 0.0

    def rate(self) -> float:
        return self.transactions / self.seconds if self.seconds else 0.0

    def between(self, first: float, last: float) -> int:
        """Transactions answered from `first` to `last` (time.monotonic() values)."""
        first, last = first - self.start, last - self.start
        return sum(size for at, size, _ in self.answers if first <= at < last)

    def rate_between(self, first: float, last: float) -> float:
        return self.between(first, last) / (last - first) if last > first else 0.0

    def latencies(self) -> list[float]:
        return sorted(latency for _, _, latency in self.answers)

    def per_second(self) -> list[tuple[int, int]]:
        """(second, transactions answered in it) for every second up to the last answer."""
        counts = [0] * (math.floor(self.seconds) + 1) if self.answers else []
        for at, size, _ in self.answers:
            counts[max(0, math.floor(at))] += size
        return list(enumerate(counts))

    def latency_per_second(self) -> list[tuple[int, float, float]]:
        """(second, p50, p99) of the latencies of the batches answered in that second."""
        seconds: dict[int, list[float]] = {}
        for at, _, latency in self.answers:
            seconds.setdefault(max(0, math.floor(at)), []).append(latency)
        return [(second, percentile(sorted(values), 0.50), percentile(sorted(values), 0.99))
                for second, values in sorted(seconds.items())]
