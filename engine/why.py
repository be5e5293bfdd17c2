"""Why a purchase earned what it did, in a line a member can read: "120 from 'spend 10 per 10.00' × 1.2
'winter campaign'". The labels are made once per rules version; a purchase only joins them."""

from decimal import Decimal

from engine.rules import Multiplier, ProductRule, SpendRule

__all__ = ["anomaly_note", "claim_label", "event_why", "factor_label", "money", "no_points", "purchase_why",
           "spend_label"]

_ANOMALY = {"flagged": "flagged abnormal", "held": "held until an operator releases them",
            "blocked": "blocked while abnormal"}


def money(minor: int, minor_per_major: int) -> str:
    """10.00 for 1000 fen; a currency whose minor unit is not a power of ten shows minor units."""
    digits = len(str(minor_per_major)) - 1
    if minor_per_major != 10 ** digits:
        return f"{minor} minor"
    if not digits:
        return str(minor)
    major, rest = divmod(minor, minor_per_major)
    return f"{major}.{rest:0{digits}d}"


def number(value: Decimal) -> str:
    """A factor or percent as the rules wrote it, without trailing zeros: 1.2, 2, 0.5."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def spend_label(rule: SpendRule, minor_per_major: int) -> str:
    return f"'spend {rule.per_unit} per {money(rule.unit_minor, minor_per_major)}'"


def claim_label(rule: ProductRule, position: int, minor_per_major: int) -> str:
    """Product rules have no names: a rule is its place in the document and what it matches."""
    match = rule.match
    matched = ", ".join(match.sku + match.product_id + match.category + match.name_contains)
    if rule.mode == "fixed":
        gives = f"{rule.points or 0} each"
    elif rule.mode == "per_amount":
        gives = f"{rule.per_unit or 0} per {money(rule.unit_minor or 1, minor_per_major)}"
    else:
        gives = f"{number(rule.percent or Decimal(0))}%"
    return f"'{rule.priority} rule {position}: {matched}, {gives}'"


def factor_label(applied: list[Multiplier], multiply: bool) -> str:
    """The multipliers that applied, with their factors; under `max` the one used comes first and
    the others are named as not stacked."""
    if not applied:
        return ""
    named = [f"× {number(m.factor)} '{m.name}'" for m in applied]
    if multiply or len(named) == 1:
        return " " + " ".join(named)
    best = max(range(len(applied)), key=lambda i: applied[i].factor)  # the first of equal factors
    others = ", ".join(n for i, n in enumerate(named) if i != best)
    return f" {named[best]} (not stacked: {others})"


def purchase_why(parts: list[str], factor: str, per_order: int, carried: str) -> str:
    """`parts` are "N from 'label'" before multipliers: the product rules that claimed lines, then
    the spend rule; `carried` is the spend a `carry` programme brought from earlier purchases."""
    base = " + ".join(parts) or "0: no rule gives points for these lines"
    if carried:
        base += f" (with {carried} carried)"
    if factor and len(parts) > 1:
        base = f"({base})"
    text = base + factor
    return f"{text} + {per_order} per order" if per_order else text


def event_why(points: int, event_type: str, silent_tier: str) -> str:
    """`silent_tier` names the member's tier when it earns no points."""
    return no_points(silent_tier) if silent_tier else f"{points} from event '{event_type}'"


def no_points(tier: str) -> str:
    return f"tier '{tier}' earns no points"


def anomaly_note(reason: str, threshold: int) -> str:
    """What the daily anomaly threshold did to the points, after the purchase's own why."""
    action = _ANOMALY.get(reason)
    return f"; {action} (daily threshold {threshold})" if action else ""
