"""Computed tags (docs/rules.md, [[tags]]): what each condition means, and when it could next change for a member."""

import functools

from engine.calendar import add_months
from engine.errors import InvalidRequestError
from engine.members import Member
from engine.periods import Period, longest_days, parse_window, window_start
from engine.rules import Tag
from engine.types import Day
from engine.window_sums import WindowSums

__all__ = ["TagRule", "TagRules"]


class TagRule:
    """One tag's condition as judged. A plain class, not a Struct: compiled, an extension type whose
    fields are C struct members (tags.pxd), and setup.py leaves a module that declares a Struct pure."""

    __slots__ = ("amount", "condition", "name", "slot", "window")

    def __init__(self, name: str, condition: str, amount: int, window: Period, slot: int = -1) -> None:
        self.name = name
        self.condition = condition
        """`recency_days`, `purchases` or `spend_minor`."""
        self.amount = amount
        self.window = window
        self.slot = slot
        """Its window's place in the ladder's window sums; -1 for a lifetime window or recency."""


class TagRules:
    """The programme's computed tags, and what members must keep for them."""

    def __init__(self, tags: list[Tag], sums: WindowSums) -> None:
        self.sums = sums
        self.rules = sorted((_compiled(tag, sums) for tag in tags), key=lambda rule: rule.name)
        """In name order: the tags a member holds come out sorted."""
        self.names = frozenset(rule.name for rule in self.rules)
        windowed = [r for r in self.rules if r.condition != "recency_days"]
        self.window_metrics = frozenset(_METRIC[r.condition] for r in windowed)
        self.counts_purchases = any(r.condition == "purchases" for r in self.rules)
        self.keep_days = max((longest_days(r.window) for r in windowed if not r.window.endless), default=0)

    def computed(self, member: Member, as_of: Day) -> list[str]:
        return self.judged(member, as_of)[0]

    def judged(self, member: Member, as_of: Day) -> tuple[list[str], Day]:
        """The computed tags the member holds as of `as_of`, and the first run date on which one
        could change without a new transaction (a transaction wakes the member anyway; 0 when
        none can). One pass over the rules, each judged inline: a midnight visit asks for both."""
        held: list[str] = []
        check = 0
        for rule in self.rules:
            condition = rule.condition
            if condition == "recency_days":
                last = member.last_purchase if member.last_purchase > member.enrolled else member.enrolled
                if last <= as_of - rule.amount:
                    held.append(rule.name)
                elif not check or last + rule.amount + 1 < check:
                    check = last + rule.amount + 1
                continue
            if rule.slot < 0:  # a lifetime window (`window.endless`, a property: slower to ask)
                total = member.total_spend if condition == "spend_minor" else member.purchases
                if total >= rule.amount:
                    held.append(rule.name)
                continue
            if self.sums.total(member, rule.slot, as_of) >= rule.amount:
                held.append(rule.name)
                oldest = self._oldest_in_window(member, rule, as_of)
                if oldest is not None:
                    day = _leaves_window(rule.window, oldest) + 1
                    if not check or day < check:
                        check = day
        return held, check

    def _oldest_in_window(self, member: Member, rule: TagRule, as_of: Day) -> Day | None:
        if rule.slot < 0:
            return None
        start = self.sums.start(rule.slot, as_of)
        days = member.windows.get(_METRIC[rule.condition], {})
        get = days.get
        for day in range(start, min(as_of + 1, start + len(days))):  # found early by a regular: no scan
            if get(day):
                return day
        oldest = None
        for day, amount in days.items():
            if start <= day <= as_of and amount and (oldest is None or day < oldest):
                oldest = day
        return oldest


_METRIC = {"purchases": "purchases", "spend_minor": "spend"}


def _compiled(tag: Tag, sums: WindowSums) -> TagRule:
    for condition in ("recency_days", "purchases", "spend_minor"):
        amount = getattr(tag, condition)
        if amount is not None:  # validation makes sure exactly one is given
            window = parse_window(tag.window or "lifetime") or Period("lifetime")
            windowed = condition != "recency_days" and not window.endless
            slot = sums.slot(_METRIC[condition], window) if windowed else -1
            return TagRule(tag.name, condition, amount, window, slot)
    raise InvalidRequestError(f"tag {tag.name!r}: no condition")


@functools.lru_cache(maxsize=8_192)  # stepping through months is slow; members share their days
def _leaves_window(window: Period, day: Day) -> Day:
    """The first as-of date whose window no longer covers `day`."""
    if window.unit == "days":
        return day + window.count
    as_of = add_months(day, window.count)
    while window_start(window, as_of) <= day:  # months clamp at their end: step past it
        as_of += 1
    return as_of
