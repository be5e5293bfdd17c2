"""A rules document compiled for scoring: sets, fractions and caches built once per version."""

from engine.anomaly import AnomalyRule
from engine.calendar import LocalCalendar
from engine.expiry import ExpiryPolicy
from engine.lines import LineRules
from engine.multipliers import MultiplierTable
from engine.rounding import exact, rounded, rounder
from engine.rules import Rules
from engine.spending.coupon_rules import CouponRules
from engine.spending.member_prices import TierDiscounts
from engine.spending.redemption_window import RedemptionWindow
from engine.tags import TagRules
from engine.tiers import TierLadder
from engine.why import WhyLabels

__all__ = ["Programme"]


class Programme:
    def __init__(self, rules: Rules) -> None:
        points = rules.points
        self.rules = rules
        self.version = rules.version
        self.calendar = LocalCalendar(rules.timezone)
        self.round = rounder(points.rounding)
        self.halves_up = points.rounding == "half_up"
        """Which `round` is, for `rounded` (a C call compiled, where `round` is a Python one)."""
        self.carries = points.rounding == "carry"
        self.lines = LineRules(rules.filters, rules.product_rules, rules.currency_minor_per_major)
        self.spend_unit = points.spend.unit_minor if points.spend else 0
        self.spend_per_unit = points.spend.per_unit if points.spend else 0
        self.per_order = points.per_order
        self.pending_days = points.pending_days
        self.multipliers = MultiplierTable(rules.multipliers, points.multiplier_stacking)
        self.expiry = ExpiryPolicy(points.expiry)
        self._growth_setup(rules)
        self.events = {e.type: e for e in rules.events}
        self.max_lateness = rules.max_lateness_days
        self.anomaly = AnomalyRule(rules.anomaly, keep_days=self.max_lateness + 1)
        self.ladder = TierLadder(rules)
        self.tags = TagRules(rules.tags, self.ladder.sums)
        self.ladder.also_keep(self.tags.window_metrics, self.tags.keep_days)
        self.allow_negative = rules.allow_negative_points
        self.enrolls_unknown = rules.unknown_member == "enroll"
        self.default_tiers = {c: self.ladder.names.index(t) for c, t in rules.default_tier_by_channel.items()}
        self.coupons = CouponRules(rules)
        self.redemption_window = RedemptionWindow(rules.redemption)
        self.discounts = TierDiscounts(rules)
        self.why = WhyLabels(rules)
        """For reading the why of this version's ledger entries (engine/why.py)."""

    def _growth_setup(self, rules: Rules) -> None:
        growth = rules.growth
        self.growth_from_points = growth.source == "points"
        ratio = exact(growth.per_point if growth.per_point is not None else 1)
        self.growth_num, self.growth_den = ratio.numerator, ratio.denominator
        self.growth_unit = growth.unit_minor or 1
        self.growth_per_unit = growth.per_unit or 0

    def growth_for_points(self, points: int) -> int:
        if points <= 0:
            return 0
        if self.growth_den == 1:  # a whole number per point (the usual 1): every rounding of n/1 is n
            return points * self.growth_num
        return rounded(points * self.growth_num, self.growth_den, self.halves_up)

    def growth_for_spend(self, eligible: int) -> int:
        return rounded(eligible, self.growth_unit, self.halves_up) * self.growth_per_unit

    def spend_points(self, unclaimed: int, carry: int) -> tuple[int, int]:
        """Points of the spend rule on unclaimed eligible spend, and the carry left after it."""
        if not self.spend_unit:
            return 0, carry
        if self.carries:
            owed = unclaimed + carry
            if owed < 0:  # a refund's spend below one unit, still being repaid (refunds.py)
                return 0, owed
            units, left = divmod(owed, self.spend_unit)
            return units * self.spend_per_unit, left
        return rounded(unclaimed, self.spend_unit, self.halves_up) * self.spend_per_unit, 0

    def default_tier(self, channel: str) -> int:
        return self.default_tiers.get(channel, 0)
