"""A member's per-day figures summed over a window as of a day, kept current instead of re-added.

Members store what windowed conditions (tiers, tags) read as per-day amounts per metric
(`Member.windows`). Adding up to a year of days at every purchase and every midnight visit was
a large part of both, so the sum is derived once per member and window and then kept current:
an amount recorded on a day inside the window is added to it, a day pruned is taken out, and
when the as-of day moves the sum slides by the days that came in and went out. Nothing of it
is stored: a member read from storage starts with no sums and gets them on first use, and a new
rules version (a new ladder) starts with none."""

from engine.members import Member
from engine.periods import Period, window_start
from engine.types import Day, MemberId

__all__ = ["WindowSums"]

_MOST_MEMBERS = 200_000
"""Members whose sums are kept (about 250 bytes each) before all are dropped and derived again on use."""

_FEW_DAYS = 4
"""A member with no more days than this has its sums added up at each ask instead of kept: a
midnight run over cold members asks once each, and keeping them cost more than adding."""


class _Window:
    def __init__(self, metric: str, period: Period) -> None:
        self.metric = metric
        self.period = period
        self.starts: dict[Day, Day] = {}

    def start(self, as_of: Day) -> Day:
        """Remembered: month arithmetic is slow and a batch asks about the same few days."""
        start = self.starts.get(as_of)
        if start is None:
            if len(self.starts) > 4_096:
                self.starts.clear()
            start = self.starts[as_of] = window_start(self.period, as_of)
        return start


class WindowSums:
    """Invariant: an entry `[days, as_of, start, total]` for a member and window has `total` equal to
    the sum of `days` over [start, as_of], as long as `days` is the member's current dict for the
    window's metric and every change to it goes through `added` and `pruned`. An entry whose dict
    was replaced (a member reloaded, a metric dropped) is derived afresh."""

    def __init__(self) -> None:
        self.windows: list[_Window] = []
        self._by_metric: dict[str, tuple[int, ...]] = {}
        self._entries: dict[MemberId, list[list | None]] = {}
        """Per member, an entry or None per slot: one lookup finds all of a member's sums."""

    def slot(self, metric: str, period: Period) -> int:
        """The number by which conditions on one metric over one window ask for its sum."""
        for index, window in enumerate(self.windows):
            if window.metric == metric and window.period == period:
                return index
        self.windows.append(_Window(metric, period))
        self._entries.clear()  # sized to the slots there were
        index = len(self.windows) - 1
        self._by_metric[metric] = (*self._by_metric.get(metric, ()), index)
        return index

    def start(self, slot: int, as_of: Day) -> Day:
        return self.windows[slot].start(as_of)

    def total(self, member: Member, slot: int, as_of: Day) -> int:
        """The member's sum of the window's metric over the window, as of `as_of`."""
        window = self.windows[slot]
        windows = member.windows
        days = windows.get(window.metric)
        if not days:
            return 0
        mine = self._entries.get(member.member_id)
        if mine is None and len(days) <= _FEW_DAYS:  # as cheap to add as to look up: nothing kept to free later
            start = window.starts.get(as_of)  # `window.start`, without a call for the common case
            if start is None:
                start = window.start(as_of)
            total = 0
            for day, amount in days.items():
                if start <= day <= as_of:
                    total += amount
            return total
        entry = None if mine is None else mine[slot]
        if entry is not None and entry[0] is days:
            if entry[1] == as_of:
                return entry[3]
            start = window.start(as_of)
            if abs(as_of - entry[1]) + abs(start - entry[2]) < len(days):  # fewer days to probe than to add
                entry[3] = _slid(days, entry, as_of, start)
                return entry[3]
        else:
            start = window.start(as_of)
        total = 0
        for day, amount in days.items():
            if start <= day <= as_of:
                total += amount
        if mine is None:
            if len(self._entries) > _MOST_MEMBERS:
                self._entries.clear()
            mine = self._entries[member.member_id] = [None] * len(self.windows)
        mine[slot] = [days, as_of, start, total]
        return total

    def added(self, member: Member, metric: str, days: dict[Day, int], day: Day, amount: int) -> None:
        """`amount` was just added to `days[day]`, the member's dict for `metric`."""
        mine = self._entries.get(member.member_id)
        if mine is None:
            return
        for slot in self._by_metric.get(metric, ()):
            entry = mine[slot]
            if entry is not None and entry[0] is days and entry[2] <= day <= entry[1]:
                entry[3] += amount

    def forget(self, member_id: MemberId) -> None:
        """Drop a member's sums (a member put back as storage has it, or let go from memory):
        they hold its day dicts, and would only be derived afresh anyway."""
        self._entries.pop(member_id, None)

    def pruned(self, member: Member, metric: str, days: dict[Day, int], day: Day, amount: int) -> None:
        """`day`, which held `amount`, was just removed from `days`."""
        self.added(member, metric, days, day, -amount)


def _slid(days: dict[Day, int], entry: list, as_of: Day, start: Day) -> int:
    """The entry's total moved to [start, as_of]: plus the days that came in at the end, minus
    those that left at the start (either may move back: a quote or a report asks about the past)."""
    total = entry[3] + _between(days, entry[1] + 1, as_of + 1) - _between(days, entry[2], start)
    entry[1], entry[2] = as_of, start
    return total


def _between(days: dict[Day, int], first: Day, end: Day) -> int:
    """The sum of `days` from `first` up to, not including, `end`; negated when `end` comes first."""
    if end == first:
        return 0
    if end < first:
        return -_between(days, end, first)
    get = days.get
    total = 0
    for day in range(first, end):
        total += get(day, 0)
    return total
