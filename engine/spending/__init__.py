"""Spending (SPEC 11): redeeming points, points as cash, stored value, coupons."""
