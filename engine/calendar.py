"""Local days in the programme's timezone, and the date arithmetic of windows and validity."""

from calendar import monthrange
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from engine.types import Day

__all__ = [
    "LocalCalendar",
    "add_months",
    "date_span",
    "day_of_date",
    "end_of_month",
    "iso",
    "month_index",
    "parse_day",
]

_UTC = UTC


def day_of_date(d: date) -> Day:
    return d.toordinal()


@lru_cache(maxsize=4096)
def iso(day: Day) -> str:
    """Cached: reports, notices and summaries name the same few hundred days over and over."""
    return date.fromordinal(day).isoformat()


def parse_day(text: str) -> Day:
    """A date written YYYY-MM-DD, and only so (ValueError otherwise): `date.fromisoformat` alone
    also reads 20261202 and 2026-W49-3, and a midnight run or a report was asked for by them."""
    digits = text[:4] + text[5:7] + text[8:]
    if len(text) != 10 or text[4] != "-" or text[7] != "-" or not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"expected a date as YYYY-MM-DD, got {text!r}")
    return date.fromisoformat(text).toordinal()


def add_months(day: Day, months: int) -> Day:
    """The same day of the month `months` later (or earlier), clamped to that month's end."""
    d = date.fromordinal(day)
    year, month0 = divmod(d.year * 12 + d.month - 1 + months, 12)
    last = monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(d.day, last)).toordinal()


def end_of_month(day: Day) -> Day:
    d = date.fromordinal(day)
    return date(d.year, d.month, monthrange(d.year, d.month)[1]).toordinal()


def month_index(day: Day) -> int:
    """Months since year 0: equal for two days of the same calendar month."""
    d = date.fromordinal(day)
    return d.year * 12 + d.month - 1


class LocalCalendar:
    """Maps UTC milliseconds to local days; remembers recent day boundaries because
    a batch's timestamps cluster on a few days and zone lookups are slow."""

    def __init__(self, timezone_name: str) -> None:
        self.zone = ZoneInfo(timezone_name)
        self._spans: list[tuple[int, int, Day]] = []

    def day_of(self, ms: int) -> Day:
        for start, end, day in self._spans:
            if start <= ms < end:
                return day
        return self._remember(ms)

    def midnight_ms(self, day: Day) -> int:
        """UTC milliseconds of local 00:00 on `day`."""
        d = date.fromordinal(day)
        local = datetime(d.year, d.month, d.day, tzinfo=self.zone)
        return int(local.timestamp() * 1000)

    def within(self, day: Day, ms: int) -> int:
        """`ms`, or the nearest instant of local day `day` when it falls outside it: "now" on a
        business day that the clock is ahead of or behind."""
        return max(self.midnight_ms(day), min(ms, self.midnight_ms(day + 1) - 1))

    def today(self, now_ms: int) -> Day:
        return self.day_of(now_ms)

    def _remember(self, ms: int) -> Day:
        local = datetime.fromtimestamp(ms / 1000, tz=_UTC).astimezone(self.zone)
        day = local.date().toordinal()
        span = (self.midnight_ms(day), self.midnight_ms(day + 1), day)
        self._spans.insert(0, span)
        del self._spans[8:]
        return day


def local_date(day: Day) -> date:
    return date.fromordinal(day)


def weekday(day: Day) -> int:
    """0 for Monday … 6 for Sunday."""
    return (day + 6) % 7


def days_between(first: Day, last: Day) -> timedelta:
    return timedelta(days=last - first)


MOST_DATES_SHOWN = 10
"""A midnight run over years (a test system's `--allow-future`) lists thousands of dates: past
this many, the first and last are shown with the count."""


def date_span(dates: list[str]) -> list[str]:
    """Still a list of strings, for scripts that read it: the first, how many between, the last (a
    run's log line of 2,721 dates was 38 KB: an SRE probe)."""
    return dates if len(dates) <= MOST_DATES_SHOWN else [dates[0], f"... {len(dates) - 2:,} dates ...", dates[-1]]
