"""The daily anomaly threshold: flag, block or hold a member whose points in one local day exceed it."""

from enum import Enum

from engine.members import Member
from engine.rules import AnomalyRules
from engine.types import Day

__all__ = ["BLOCKED", "EARN", "FLAGGED", "HELD", "AnomalyRule", "Verdict"]


class Verdict(Enum):
    EARN = "earn"
    FLAGGED = "flagged"
    """This transaction crossed the threshold; the member is flagged and still earns."""
    BLOCKED = "blocked"
    HELD = "held"


# The verdicts by module names, which cost a purchase nothing: reading one from the class runs
# Python 3.11's EnumType.__getattr__ hook (about 850 instructions a read in compiled code).
EARN, FLAGGED, BLOCKED, HELD = Verdict.EARN, Verdict.FLAGGED, Verdict.BLOCKED, Verdict.HELD


class AnomalyRule:
    """The day's counter adds every point a member tried to earn that day (blocked and held
    ones too), so the report shows how far past the threshold the member went. Refunds
    never lower it. Counters are kept for the days a late transaction may still arrive."""

    def __init__(self, rules: AnomalyRules | None, keep_days: int) -> None:
        self.threshold = rules.daily_points_threshold if rules else 0
        self.action = rules.action if rules else "flag"
        self.blocks = self.action in ("block_earn", "block_earn_and_redeem")
        self.keep_days = keep_days

    def judge(self, member: Member, day: Day, points: int) -> Verdict:
        """Counts `points` for the day and says what becomes of them; sets `abnormal` on crossing."""
        if not self.threshold:
            return EARN
        counters = member.day_points
        if day not in counters:
            self._forget_old_days(counters, day)
            if member.cleared_days:
                member.cleared_days = tuple([d for d in member.cleared_days if d in counters])  # a list: compiled
        total = counters[day] = counters.get(day, 0) + points
        if member.abnormal:
            # still flagged from another day, it crosses on this one: this day's report names it
            # too (an outside probe: a member earning 200 over 100 was left out of the day's report)
            if total > self.threshold >= total - points and day not in member.flag_days:
                _flag_day(member, day)
                return self._crossing()
            return self._while_abnormal()
        if self._earns(member, day, total, points):
            # an operator cleared the member after it crossed this day, so the rest of the day
            # earns (SPEC §4: blocked "until an operator clears the flag"; an outside probe's member
            # was blocked again at its next purchase), late transactions after the day's report too
            # (a reviewer). A day flagged and not yet reported while the member is not abnormal was
            # cleared too, by a clear made before `cleared_days` was kept.
            return EARN
        member.abnormal = True
        _flag_day(member, day)
        return self._crossing()

    def foresee(self, member: Member, day: Day, points: int) -> Verdict:
        """What `judge` would answer for `points` now, changing nothing (a quote)."""
        if not self.threshold:
            return EARN
        total = member.day_points.get(day, 0) + points
        if member.abnormal:
            crosses = total > self.threshold >= total - points and day not in member.flag_days
            return self._crossing() if crosses else self._while_abnormal()  # as `judge` (a reviewer)
        if self._earns(member, day, total, points):
            return EARN
        return self._crossing()

    def _earns(self, member: Member, day: Day, total: int, points: int) -> bool:
        """For a member not flagged: the day stays under the threshold, or an operator cleared it
        (not yet reported: `flag_days`; or as it stands: it was over the threshold at the clear and
        still is, for a version that raised the threshold since makes a later crossing a first one)."""
        return (total <= self.threshold or day in member.flag_days
                or (total - points > self.threshold and day in member.cleared_days))

    def crossed_days(self, member: Member) -> tuple[Day, ...]:
        """The days the member's counters are over the threshold, in date order: what an operator's
        clear covers."""
        if not self.threshold:
            return ()
        return tuple(sorted([day for day, total in member.day_points.items() if total > self.threshold]))

    def _crossing(self) -> Verdict:
        return BLOCKED if self.blocks else HELD if self.action == "hold" else FLAGGED

    def _while_abnormal(self) -> Verdict:
        if self.blocks:
            return BLOCKED
        return HELD if self.action == "hold" else EARN

    def _forget_old_days(self, counters: dict[Day, int], day: Day) -> None:
        for old in [d for d in counters if d < day - self.keep_days]:
            del counters[old]


def _flag_day(member: Member, day: Day) -> None:
    """In date order: a midnight run's shortcut for a member brought through it early reads only
    the first (engine/midnight.py `visit`), and a day crossed later but dated earlier (tomorrow's
    transaction first) was reported a run late."""
    member.flag_days = tuple(sorted((*member.flag_days, day)))


def counted_in_day(points: int, reason: str) -> bool:
    """Whether a transaction that gave `points` for `reason` counted in its day's sum for the
    threshold, so is among the day's transactions in the report: replay's history and a shard's
    index (storage/index_history.py) read it alike."""
    return points > 0 or reason == "blocked"
