"""The `[[coupons]]` of a programme as scoring reads them (what each coupon means: docs/rules.md)."""

from engine.filters import Matcher
from engine.rules import Coupon, Rules

__all__ = ["CouponRules"]


class CouponRules:
    """The `[[coupons]]` of a programme, compiled once per rules version."""

    def __init__(self, rules: Rules) -> None:
        tiers = [t.name for t in rules.tiers]
        self.by_id = {c.id: c for c in rules.coupons}
        self.designated = {c.id: Matcher(c.designated) for c in rules.coupons}
        self.on_enroll = tuple(c for c in rules.coupons if c.issue_on == "enroll")
        self.limited = tuple(c for c in rules.coupons if c.inventory)
        """Coupons with a programme-wide inventory: the only ones whose issues are counted against it."""
        self.on_upgrade: dict[int, tuple[Coupon, ...]] = {}
        for coupon in rules.coupons:
            if coupon.issue_on == "upgrade":
                for name in coupon.tiers:
                    index = tiers.index(name)
                    self.on_upgrade[index] = (*self.on_upgrade.get(index, ()), coupon)
