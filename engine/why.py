"""Why a purchase or an event earned what it did, in a line a member can read: "120 from 'spend 10
per 10.00' × 1.2 'winter campaign'".

Scoring keeps only the parts on the ledger entry (`Why`: a few numbers, and places in the rules
document), and that is what is stored; the line is made when an entry is read (`why_text`), with
the labels of the rules version that scored it (`WhyLabels`, made once per version). Making the
line for every purchase cost scoring several per cent, and most entries are never read."""

from decimal import Decimal

from msgspec import Struct

from engine.rules import Multiplier, ProductRule, Rules, SpendRule

__all__ = ["Why", "WhyLabels", "money", "why_text"]

_ANOMALY = {"flagged": "flagged abnormal", "held": "held until an operator releases them",
            "blocked": "blocked while abnormal"}


class Why(Struct, array_like=True, gc=False):
    """What made an entry's points, as scoring found them. Stored with the entry, so fields are
    only ever appended; what they point to is in the rules of the entry's `rule_version`."""

    spend: int = -1
    """Points from the spend rule, before multipliers; -1 when it saw no spend (product rules
    claimed every line)."""
    multipliers: tuple[int, ...] = ()
    """The places of the multipliers that applied in the rules' list (0 is the first)."""
    claims: dict[int, int] | None = None
    """Points from each product rule that claimed lines, by the rule's place in the document
    (1 is the first), in the order the purchase's lines met them."""
    carried: int = 0
    """Spend (minor units) that a `carry` programme brought from earlier purchases."""
    anomaly: str = ""
    """The daily threshold's verdict on these points: flagged, held or blocked."""
    tier: int = -1
    """The member's tier, when it earns no points (then nothing else made points)."""
    event: str = ""
    """The event type, for an event's entry."""


class WhyLabels:
    """The names a why line uses, made once per rules version; a factor's text once per set of
    multipliers."""

    def __init__(self, rules: Rules) -> None:
        points = rules.points
        self.minor_per_major = rules.currency_minor_per_major
        self.spend = spend_label(points.spend, self.minor_per_major) if points.spend else ""
        self.claims = {position: claim_label(rule, position, self.minor_per_major)
                       for position, rule in enumerate(rules.product_rules, 1)}
        self.multipliers = rules.multipliers
        self.multiply = points.multiplier_stacking == "multiply"
        self.per_order = points.per_order
        self.threshold = rules.anomaly.daily_points_threshold if rules.anomaly else 0
        self.tiers = [t.name for t in rules.tiers]
        self.events = {e.type: e.points for e in rules.events}
        self._factors: dict[tuple[int, ...], str] = {}

    def factor(self, applied: tuple[int, ...]) -> str:
        found = self._factors.get(applied)
        if found is None:
            found = factor_label([self.multipliers[i] for i in applied if i < len(self.multipliers)], self.multiply)
            self._factors[applied] = found
        return found

    def tier(self, index: int) -> str:
        return self.tiers[index] if 0 <= index < len(self.tiers) else str(index)


def why_text(why: "Why | str", labels: WhyLabels | None) -> str:
    """The line for an entry's why; a text is an entry stored before the parts were, kept as it
    was made. Without the labels of the entry's rules version there is no line."""
    if isinstance(why, str):
        return why
    if labels is None:
        return ""
    if why.tier >= 0:
        text = f"tier '{labels.tier(why.tier)}' earns no points"
    elif why.event:
        text = f"{labels.events.get(why.event, 0)} from event '{why.event}'"
    else:
        text = _purchase(why, labels)
    action = _ANOMALY.get(why.anomaly)
    return f"{text}; {action} (daily threshold {labels.threshold})" if action else text


def _purchase(why: Why, labels: WhyLabels) -> str:
    """The parts before multipliers (the product rules that claimed lines, then the spend rule),
    the multipliers, then per-order points."""
    claims = labels.claims
    parts = [f"{points} from {claims.get(position) or repr(f'rule {position}')}"
             for position, points in why.claims.items()] if why.claims else []
    if labels.spend and why.spend >= 0:
        parts.append(f"{why.spend} from {labels.spend}")
    base = " + ".join(parts) or "0: no rule gives points for these lines"
    if why.carried > 0 and labels.spend:
        base += f" (with {money(why.carried, labels.minor_per_major)} carried)"
    elif why.carried < 0 and labels.spend:
        base += f" (less {money(-why.carried, labels.minor_per_major)} of refunded spend carried)"
    factor = labels.factor(why.multipliers) if why.multipliers else ""
    if factor and len(parts) > 1:
        base = f"({base})"
    text = base + factor
    return f"{text} + {labels.per_order} per order" if labels.per_order else text


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
