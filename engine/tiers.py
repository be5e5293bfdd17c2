"""Tiers: the condition each is judged on, the sums behind it, and moving members up and down."""

from typing import TYPE_CHECKING

from engine.calendar import iso
from engine.members import Member
from engine.notices import TIER_CHANGED
from engine.periods import Period, longest_days, parse_validity, parse_window, valid_through, window_start
from engine.rules import Rules, Tier
from engine.spending.coupons import issue_on_upgrade
from engine.types import Day

if TYPE_CHECKING:
    from engine.book import Book

__all__ = ["TierLadder", "TierRule", "enter_tier", "tier_after_transaction"]

_LIFETIME_FIELD = {"growth": "growth", "points": "total_points", "spend": "total_spend",
                   "recharge": "total_recharge"}
_SINCE_FIELD = {"growth": "since_growth", "points": "since_points", "spend": "since_spend",
                "recharge": "since_recharge", "single_purchase": "since_single"}


class TierRule:
    def __init__(self, index: int, tier: Tier, names: list[str], resets_growth: bool) -> None:
        self.index = index
        self.name = tier.name
        self.metric = tier.metric or ""
        self.window: Period = parse_window(tier.window) or Period("lifetime")
        self.threshold = tier.threshold or 0
        self.validity: Period = parse_validity(tier.validity) or Period("permanent")
        self.extension = tier.extension
        self.next_day = tier.effective == "next_day"
        self.earns_points = tier.earns_points
        self.downgrade_to = names.index(tier.downgrade_to) if tier.downgrade_to else None
        cumulative = self.metric != "single_purchase"
        self.permanent = index == 0 or self.validity.endless or (self.window.endless and cumulative)
        self.resets_growth = resets_growth and self.metric == "growth"
        self._starts: dict[Day, Day] = {}

    def window_start(self, as_of: Day) -> Day:
        """Remembered: month arithmetic is slow and a batch asks about the same few days."""
        start = self._starts.get(as_of)
        if start is None:
            if len(self._starts) > 4_096:
                self._starts.clear()
            start = self._starts[as_of] = window_start(self.window, as_of)
        return start


class TierLadder:
    """The tiers lowest first, and what members must keep so they can be judged on them."""

    def __init__(self, rules: Rules) -> None:
        names = [t.name for t in rules.tiers]
        policy = rules.tier_policy
        self.tiers = [TierRule(i, t, names, policy.reset_growth_on_upgrade) for i, t in enumerate(rules.tiers)]
        self.names = names
        self.on_change = policy.on_change
        self.on_expiry = policy.on_expiry
        self.periodic = policy.periodic
        upper = self.tiers[1:]
        self.window_metrics = frozenset(t.metric for t in upper
                                        if not t.window.endless and t.metric != "single_purchase")
        singles = [t.threshold for t in upper if t.metric == "single_purchase"]
        singles += [t.extension.threshold for t in self.tiers
                    if t.extension and t.extension.metric == "single_purchase"]
        self.single_minimum = min(singles) if singles else None
        self.keep_days = max([longest_days(t.window) for t in upper if not t.window.endless], default=0)
        self.paid_skus = {t.paid_upgrade_sku: i for i, t in enumerate(rules.tiers) if t.paid_upgrade_sku}

    def also_keep(self, metrics: frozenset[str], days: int) -> None:
        """Per-day sums that other windowed conditions (tags) read, kept with the tiers' own."""
        self.window_metrics |= metrics
        self.keep_days = max(self.keep_days, days)

    # -- the sums behind conditions --------------------------------------------------

    def record(self, member: Member, metric: str, day: Day, amount: int) -> None:
        """Add to the per-day sums of a metric that a windowed condition reads."""
        if metric not in self.window_metrics or not amount:
            return
        days = member.windows.get(metric)
        if days is None:
            days = member.windows[metric] = {}
        if day not in days:
            horizon = day - self.keep_days
            for old in [d for d in days if d < horizon]:
                del days[old]
        days[day] = days.get(day, 0) + amount

    def record_single(self, member: Member, day: Day, eligible: int, txn_id: str) -> None:
        if self.single_minimum is None or eligible < self.single_minimum:
            return
        horizon = day - self.keep_days
        member.singles = [s for s in member.singles if s[0] >= horizon or not self.keep_days]
        member.singles.append([day, eligible, txn_id])

    def value(self, member: Member, rule: TierRule, as_of: Day) -> int:
        """The member's figure for a tier's metric over its window, as of a local day."""
        if rule.metric == "single_purchase":
            best = self._best_single(member, rule, as_of)
            return best[1] if best else 0
        if rule.window.endless:
            return getattr(member, _LIFETIME_FIELD[rule.metric])
        days = member.windows.get(rule.metric)
        if not days:
            return 0
        start = rule.window_start(as_of)
        total = 0
        for day, amount in days.items():
            if start <= day <= as_of:
                total += amount
        return total

    def holds(self, member: Member, rule: TierRule, as_of: Day) -> bool:
        return self.value(member, rule, as_of) >= rule.threshold

    def _best_single(self, member: Member, rule: TierRule, as_of: Day) -> list | None:
        start = rule.window_start(as_of)
        fitting = [s for s in member.singles if start <= s[0] <= as_of]
        return max(fitting, key=lambda s: s[1]) if fitting else None

    def since(self, member: Member, metric: str) -> int:
        return getattr(member, _SINCE_FIELD[metric])

    def best_match(self, member: Member, as_of: Day) -> int:
        """Matched from the highest tier down: the first whose condition holds, else the lowest."""
        for rule in self.tiers[:0:-1]:
            if self.holds(member, rule, as_of):
                return rule.index
        return 0

    def kept_until_validity_ends(self, tier: int) -> bool:
        """A tier bought with a single purchase (used once) or with growth that was then reset
        cannot be re-judged on its own condition; it stays until its validity ends."""
        rule = self.tiers[tier]
        return rule.metric == "single_purchase" or rule.resets_growth


def reset_since(member: Member) -> None:
    member.since_points = member.since_growth = member.since_spend = 0
    member.since_recharge = member.since_single = 0


def enter_tier(book: "Book", member: Member, target: int, day: Day, cause: str, ref: str,
               note: str = "") -> None:
    """Move a member to a tier on `day`, starting its validity and the `since` sums afresh."""
    ladder = book.programme.ladder
    rule = ladder.tiers[target]
    previous = member.tier
    growth = 0
    if target > previous and rule.resets_growth and member.growth:
        growth = -member.growth
        member.growth = 0
        member.windows.pop("growth", None)
    if target > previous and rule.metric == "single_purchase":
        _use_single(member, ladder, rule, day)
    member.tier = target
    member.tier_since = day
    member.tier_until = 0 if rule.permanent else valid_through(rule.validity, day)
    if member.next_tier <= target:
        member.next_tier = 0
    reset_since(member)
    book.write(member, day, cause, ref, "tier", growth=growth, tier_from=previous, tier_to=target, note=note)
    if target != previous:
        names = ladder.names
        book.notify(TIER_CHANGED, member.member_id, day, from_tier=names[previous], to_tier=names[target],
                    direction="up" if target > previous else "down",
                    valid_until=iso(member.tier_until) if member.tier_until else "", cause=cause, ref=ref, note=note)
    if target > previous and book.programme.coupons.on_upgrade:
        issue_on_upgrade(book, member, target, day, cause, ref)


def _use_single(member: Member, ladder: TierLadder, rule: TierRule, day: Day) -> None:
    used = ladder._best_single(member, rule, day)
    if used is not None:
        member.singles = [s for s in member.singles if s is not used]


def tier_after_transaction(book: "Book", member: Member, day: Day, ref: str, lowered: bool = False) -> None:
    """`realtime` and `upgrade_only` move up at once (a `next_day` tier waits for midnight);
    `realtime` also moves down after a transaction that lowered a metric. `batch` waits."""
    ladder = book.programme.ladder
    if ladder.on_change == "batch":
        return
    as_of = max(day, book.today)
    for rule in ladder.tiers[: member.tier : -1]:
        if not ladder.holds(member, rule, as_of):
            continue
        if not rule.next_day:
            enter_tier(book, member, rule.index, as_of, "txn", ref)
            return
        member.next_tier = max(member.next_tier, rule.index)
    if lowered and ladder.on_change == "realtime" and member.tier and not ladder.kept_until_validity_ends(member.tier):
        target = ladder.best_match(member, as_of)
        if target < member.tier:
            enter_tier(book, member, target, as_of, "txn", ref)
