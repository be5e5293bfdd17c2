"""Points as cash (docs/rules.md, "Spending"): how many points settle how much of an order, by ratio or by steps."""

from engine.rules import CashRules

__all__ = ["settle"]


def settle(cash: CashRules, offered: int, order_minor: int) -> tuple[int, int]:
    """(points spent, money value) for an order, with `offered` the points the member offers
    (whether it has them is the redeem's check); (0, 0) when nothing fits."""
    cap_num = order_minor * cash.max_share_percent  # the deduction may reach cap_num / 100
    if cash.mode == "ratio":
        per_unit, unit = cash.points_per_unit or 1, cash.unit_minor or 1
        units = min(offered // per_unit, cap_num // (100 * unit))
        return units * per_unit, units * unit
    fitting = [s for s in cash.steps if s.points <= offered and s.value_minor * 100 <= cap_num]
    if not fitting:
        return 0, 0
    step = max(fitting, key=lambda s: s.points)
    return step.points, step.value_minor
