"""What a rules document's types cannot say about spending: checks across keys."""

from engine.messages import either, listed_twice, shown
from engine.rules import CashRules, Coupon, RechargeBonus, Rules, Tag

__all__ = ["spending_problems"]


def spending_problems(rules: Rules, unusable: frozenset[str] = frozenset()) -> list[str]:
    """`unusable`: top-level keys whose value was not usable (told already): a name that refers to
    their coupons is not judged; nor a tier's name with no tiers at all, as in rule_checks (each
    would be one more problem that only says the same: "expected the name of a tier (none)")."""
    problems = _cash(rules.redemption.cash) + _fixed_amounts(rules.stored_value.fixed_amounts)
    coupon_ids = None if "coupons" in unusable else tuple(c.id for c in rules.coupons)
    tier_names = tuple(t.name for t in rules.tiers) if rules.tiers else None
    problems += _unique([c.id for c in rules.coupons], "coupons", "id")
    for index, coupon in enumerate(rules.coupons):
        problems += _coupon(coupon, f"coupons[{index}]", tier_names)
    problems += _unique([b.name for b in rules.recharge_bonuses], "recharge_bonuses", "name")
    for index, bonus in enumerate(rules.recharge_bonuses):
        problems += _bonus(bonus, f"recharge_bonuses[{index}]", tier_names, coupon_ids)
    problems += _unique([t.name for t in rules.tags], "tags", "name")
    for index, tag in enumerate(rules.tags):
        problems += _tag(tag, f"tags[{index}]")
    return problems


def _cash(cash: CashRules | None) -> list[str]:
    if cash is None:
        return []
    path = "redemption.cash"
    if cash.mode == "tiered":
        problems = [f'{path}.{key}: not used with mode "tiered"; remove it'
                    for key in ("points_per_unit", "unit_minor") if getattr(cash, key) is not None]
        if not cash.steps:
            problems.append(f'{path}.steps: missing; expected at least one step with mode "tiered"')
        return problems + _ascending_steps(cash)
    problems = [f'{path}.{key}: missing; expected an integer with mode "ratio"'
                for key in ("points_per_unit", "unit_minor") if getattr(cash, key) is None]
    if cash.steps:
        problems.append(f'{path}.steps: not used with mode "ratio"; remove them')
    return problems


def _ascending_steps(cash: CashRules) -> list[str]:
    """A step that asks more points must be worth more, or the member would never want it."""
    problems = []
    for index, (lower, step) in enumerate(zip(cash.steps, cash.steps[1:], strict=False), start=1):
        if step.points <= lower.points or step.value_minor <= lower.value_minor:
            problems.append(f"redemption.cash.steps[{index}]: steps go from fewest points to most, each worth "
                            f"more; expected more than {lower.points} points and {lower.value_minor} minor, "
                            f"got {step.points} and {step.value_minor}")
    return problems


def _fixed_amounts(amounts: list[int]) -> list[str]:
    return listed_twice(amounts, "stored_value.fixed_amounts")


_KIND_KEYS = {"voucher": "value_minor", "discount": "percent", "gift": "gift_sku"}


def _coupon(coupon: Coupon, path: str, tier_names: tuple[str, ...] | None) -> list[str]:
    problems = []
    for kind, key in _KIND_KEYS.items():
        given = getattr(coupon, key) not in (None, "")
        if kind == coupon.kind and not given:
            problems.append(f"{path}.{key}: missing; expected it with kind {shown(kind)}")
        if kind != coupon.kind and given:
            problems.append(f"{path}.{key}: not used with kind {shown(coupon.kind)}; remove it")
    problems += _validity(coupon, path)
    if coupon.issue_on == "upgrade" and not coupon.tiers:
        problems.append(f'{path}.tiers: missing; expected the tiers whose upgrade issues it, with issue_on = "upgrade"')
    if coupon.issue_on != "upgrade" and coupon.tiers:
        problems.append(f'{path}.tiers: used only with issue_on = "upgrade"; remove it')
    return problems + _names(coupon.tiers, f"{path}.tiers", tier_names, "tiers")


def _validity(coupon: Coupon, path: str) -> list[str]:
    fixed = coupon.valid_from is not None or coupon.valid_to is not None
    relative = coupon.valid_after_days is not None or coupon.valid_days is not None
    if fixed and relative:
        return [f"{path}: a validity is fixed (valid_from, valid_to) or relative (valid_after_days, valid_days), "
                f"not both; remove one"]
    if fixed:
        missing = [k for k in ("valid_from", "valid_to") if getattr(coupon, k) is None]
        if missing:
            return [f"{path}.{k}: missing; expected a date with a fixed validity" for k in missing]
        if coupon.valid_from > coupon.valid_to:
            return [f"{path}.valid_to: expected a date on or after valid_from ({coupon.valid_from}), "
                    f"got {coupon.valid_to}"]
        return []
    if coupon.valid_days is None:
        return [f"{path}: missing validity; expected valid_from and valid_to, or valid_days "
                f"(and valid_after_days)"]
    return []


def _bonus(bonus: RechargeBonus, path: str, tier_names: tuple[str, ...] | None,
           coupon_ids: tuple[str, ...] | None) -> list[str]:
    problems = _names(bonus.tiers, f"{path}.tiers", tier_names, "tiers")
    problems += _names(bonus.coupons, f"{path}.coupons", coupon_ids, "coupons")
    if bonus.upgrade_to is not None and tier_names is not None and bonus.upgrade_to not in tier_names:
        problems.append(f"{path}.upgrade_to: expected the name of a tier ({either(tier_names)}), "
                        f"got {shown(bonus.upgrade_to)}")
    if bonus.from_ and bonus.to and bonus.from_ > bonus.to:
        problems.append(f"{path}.to: expected a date on or after from ({bonus.from_}), got {bonus.to}")
    return problems


def _tag(tag: Tag, path: str) -> list[str]:
    conditions = [k for k in ("recency_days", "purchases", "spend_minor") if getattr(tag, k) is not None]
    if len(conditions) != 1:
        return [f"{path}: expected exactly one of recency_days, purchases or spend_minor, "
                f"got {either(tuple(conditions)) if conditions else 'none'}"]
    if conditions[0] == "recency_days" and tag.window is not None:
        return [f"{path}.window: not used with recency_days; remove it"]
    if conditions[0] != "recency_days" and tag.window is None:
        return [f'{path}.window: missing; expected "lifetime", "N months" or "N days" with {conditions[0]}']
    return []


def _names(given: list[str], path: str, known: tuple[str, ...] | None, what: str) -> list[str]:
    """Names not among those `known` (None: not known, not judged)."""
    if known is None:
        return []
    return [f"{path}[{index}]: expected the name of one of the {what} ({either(known)}), got {shown(name)}"
            for index, name in enumerate(given) if name not in known]


def _unique(names: list[str], table: str, key: str) -> list[str]:
    seen: set[str] = set()
    problems = []
    for index, name in enumerate(names):
        if not name or name in seen:
            problems.append(f"{table}[{index}].{key}: expected a unique, non-empty {key}, got {shown(name)}")
        seen.add(name)
    return problems
