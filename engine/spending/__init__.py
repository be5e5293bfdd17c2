"""Spending (docs/rules.md, "Spending"): redeeming points, points as cash, stored value, coupons."""
