"""Interaction events (sign-in, review…): fixed points and growth, capped per day, month and lifetime."""

from engine.calendar import month_index
from engine.members import EventCounts, Member
from engine.rules import EventRule
from engine.types import Day

__all__ = ["count_event", "is_capped"]


def is_capped(member: Member, rule: EventRule, day: Day) -> bool:
    """A cap of 0 means none. Counts are kept per day and month, so a late event is
    judged against the day and month it occurred in."""
    counts = member.events.get(rule.type)
    if counts is None:
        return False
    return bool(
        (rule.per_day and counts.days.get(day, 0) >= rule.per_day)
        or (rule.per_month and counts.months.get(month_index(day), 0) >= rule.per_month)
        or (rule.lifetime and counts.lifetime >= rule.lifetime)
    )


def count_event(member: Member, rule: EventRule, day: Day, keep_days: int) -> None:
    """Count an event that gave something; forget days and months no late event can reach."""
    counts = member.events.get(rule.type)
    if counts is None:
        counts = member.events[rule.type] = EventCounts()
    month = month_index(day)
    if day not in counts.days:
        # A late event may be dated up to keep_days back, into a month long before this one when
        # the programme's lateness is a month or more (an outside probe: 3 counted against 2).
        oldest = day - keep_days
        counts.days = {d: n for d, n in counts.days.items() if d >= oldest}
        counts.months = {m: n for m, n in counts.months.items() if m >= month_index(oldest)}
    counts.days[day] = counts.days.get(day, 0) + 1
    counts.months[month] = counts.months.get(month, 0) + 1
    counts.lifetime += 1
