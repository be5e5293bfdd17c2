"""Tiers: the condition each is judged on and the sums behind it (moving members: `tier_changes.py`)."""

from engine.members import Member
from engine.periods import Period, longest_days, parse_validity, parse_window, valid_through, window_start
from engine.rules import Rules, Tier
from engine.transactions import TxnRecord
from engine.types import Day
from engine.window_sums import WindowSums

__all__ = ["TierLadder", "TierRule", "counted_since", "reset_since", "validity_from"]

_LIFETIME_SUMS = {"growth": 0, "points": 1, "spend": 2, "recharge": 3}
"""A metric's lifetime sum as the number `TierLadder.value` branches on (`TierRule.lifetime_sum`)."""
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
        self.slot = -1
        """Its window's place in the ladder's `sums`; -1 for a lifetime window."""
        self.single = not cumulative
        self.lifetime_sum = _LIFETIME_SUMS.get(self.metric, -1)
        """Which lifetime sum of a member is its figure without a window: an int, so that reading
        it compiled is a C branch to a C field, not a name looked up and read by name."""


class TierLadder:
    """The tiers lowest first, and what members must keep so they can be judged on them."""

    def __init__(self, rules: Rules) -> None:
        names = [t.name for t in rules.tiers]
        policy = rules.tier_policy
        self.tiers = [TierRule(i, t, names, policy.reset_growth_on_upgrade) for i, t in enumerate(rules.tiers)]
        self.names = names
        self.on_change = policy.on_change
        self.batch = policy.on_change == "batch"
        """Tiers move only at midnight runs: asked at every transaction, a C flag compiled (a str
        compare is a call of about 85 instructions)."""
        self.on_expiry = policy.on_expiry
        self.periodic = policy.periodic
        upper = self.tiers[1:]
        self.sums = WindowSums()
        """Kept current for every windowed condition, tags' too (`also_keep`)."""
        for tier in self.tiers:
            if not tier.window.endless:
                tier.slot = self.sums.slot(tier.metric, tier.window)
        self.window_metrics = frozenset(t.metric for t in upper
                                        if not t.window.endless and t.metric != "single_purchase")
        self.windows_earned = _windows_earned(self.window_metrics)
        singles = [t.threshold for t in upper if t.metric == "single_purchase"]
        singles += [t.extension.threshold for t in self.tiers
                    if t.extension and t.extension.metric == "single_purchase"]
        self.single_minimum = min(singles) if singles else None
        self.keep_days = max([longest_days(t.window) for t in upper if not t.window.endless], default=0)
        self.above = [tuple(self.tiers[:index:-1]) for index in range(len(self.tiers))]
        """Per tier, the tiers above it, highest first: what a transaction may move a member up to."""
        self.paid_skus = {t.paid_upgrade_sku: i for i, t in enumerate(rules.tiers) if t.paid_upgrade_sku}

    def also_keep(self, metrics: frozenset[str], days: int) -> None:
        """Per-day sums that other windowed conditions (tags) read, kept with the tiers' own."""
        self.window_metrics |= metrics
        self.windows_earned = _windows_earned(self.window_metrics)
        self.keep_days = max(self.keep_days, days)

    # -- the sums behind conditions --------------------------------------------------

    def record(self, member: Member, metric: str, day: Day, amount: int) -> None:
        """Add to the per-day sums of a metric that a windowed condition reads."""
        if metric not in self.window_metrics or not amount:
            return
        windows = member.windows
        days = windows.get(metric)
        if days is None:
            days = windows[metric] = {}
        count = days.get(day)  # one lookup for both questions: is the day new, and its sum so far
        if count is None:
            if amount < 0 and days and day < max(days) - self.keep_days:
                return  # a refund of an order whose day the window no longer holds: kept, that lone
                # negative day hid older ones from a publish that looks further back (a review)
            horizon = day - self.keep_days
            for old in [d for d in days if d < horizon]:
                self.sums.pruned(member, metric, days, old, days.pop(old))
            days[day] = amount
        else:
            days[day] = count + amount
        self.sums.added(member, metric, days, day, amount)

    def record_single(self, member: Member, day: Day, eligible: int, txn_id: str) -> None:
        if self.single_minimum is None or eligible < self.single_minimum:
            return
        horizon = day - self.keep_days
        # a list, not a generator: a generator is a closure, which a cpdef method cannot hold
        kept = [s for s in member.singles if s[0] >= horizon or not self.keep_days]
        member.singles = (*kept, [day, eligible, txn_id])

    def value(self, member: Member, rule: TierRule, as_of: Day) -> int:
        """The member's figure for a tier's metric over its window, as of a local day."""
        if rule.single:
            best = self._best_single(member, rule, as_of)
            return best[1] if best else 0
        if rule.slot >= 0:  # a window: a lifetime one is the only kind the ladder gives no slot
            return self.sums.total(member, rule.slot, as_of)
        which = rule.lifetime_sum
        if which == 0:
            return member.growth
        if which == 1:
            return member.total_points
        if which == 2:
            return member.total_spend
        if which == 3:
            return member.total_recharge
        raise KeyError(rule.metric)

    def holds(self, member: Member, rule: TierRule, as_of: Day) -> bool:
        return self.value(member, rule, as_of) >= rule.threshold

    def _best_single(self, member: Member, rule: TierRule, as_of: Day) -> list | None:
        start = window_start(rule.window, as_of) if rule.slot < 0 else self.sums.start(rule.slot, as_of)
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


def _windows_earned(metrics: frozenset[str]) -> bool:
    """Whether a windowed condition reads points or growth, which every earning adds to: asked
    at every transaction (award.count_earned), a C flag compiled instead of two set lookups."""
    return "points" in metrics or "growth" in metrics


def validity_from(ladder: TierLadder, tier: int, day: Day) -> Day:
    """The last valid day of `tier` entered on `day`; 0 for a permanent one (the lowest always)."""
    rule = ladder.tiers[tier]
    return 0 if rule.permanent else valid_through(rule.validity, day)


def reset_since(member: Member) -> None:
    member.since_points = member.since_growth = member.since_spend = 0
    member.since_recharge = member.since_single = 0
    member.since_began += 1


def counted_since(member: Member, record: TxnRecord) -> bool:
    """Whether what `record`'s transaction added is in the member's `since_*` sums: dated from
    their start, and applied after it (the sums began afresh neither at nor since its own upgrade)."""
    return record.day >= member.tier_since and record.since_began in (-1, member.since_began)
