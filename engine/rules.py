"""The rules document: one loyalty programme as a retailer publishes it (TOML)."""

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct, field

from engine.periods import parse_validity, parse_window

__all__ = [
    "AnomalyRules",
    "CashRules",
    "CashStep",
    "Coupon",
    "DecimalBound",
    "EventRule",
    "ExpiryRules",
    "Extension",
    "Filters",
    "GrowthRules",
    "LineMatch",
    "Multiplier",
    "MultiplierWhen",
    "NotifyRules",
    "PointsRules",
    "ProductRule",
    "RechargeBonus",
    "RedemptionRules",
    "Rules",
    "SpendRule",
    "StoredValueRules",
    "Tag",
    "Tier",
    "TierPolicy",
    "Wording",
]

MAX_AMOUNT = 10**15
"""The bound on every amount, points figure and balance (docs/rules.md, units): far above any real one,
far below where 64-bit integers overflow."""

Count = Annotated[int, Meta(ge=0, le=MAX_AMOUNT)]
Positive = Annotated[int, Meta(gt=0, le=MAX_AMOUNT)]
Percent = Annotated[int, Meta(ge=1, le=100)]
DayOfMonth = Annotated[int, Meta(ge=1, le=31)]
Inventory = Annotated[int, Meta(ge=0, le=9_999_999_999)]
MOST_DAYS = 1_000_000
"""The longest day count the rules take, about 2,700 years: far beyond any real one ("never" is
a key of its own), and a day that far on from any time patron takes (2100 at the latest), or
from such a day (a coupon's `valid_after_days`, then its `valid_days`), is still a date the
calendar can name. Past the year 9999 it is not, and expiry, coupons and reminders would fail."""
Days = Annotated[int, Meta(ge=0, le=MOST_DAYS)]
PositiveDays = Annotated[int, Meta(gt=0, le=MOST_DAYS)]
Years = Annotated[int, Meta(ge=0, le=1000)]


class DecimalBound(Struct, frozen=True):
    """Bounds for a Decimal key (msgspec's Meta bounds only numeric types); validation reads it."""

    ge: int | None = None
    gt: int | None = None


class Wording:
    """The accepted wording of a text key, such as "3 months"; validation reads it."""

    def __init__(self, expected: str, parse: Callable[[str], object]) -> None:
        self.expected = expected
        self.parse = parse


WindowText = Annotated[str, Wording('"lifetime", "N months" or "N days" (N from 1 to 9,999)', parse_window)]
_VALIDITY_WORDS = '"permanent", "N days", "N months" or "N months end_of_month" (N from 1 to 9,999)'
ValidityText = Annotated[str, Wording(_VALIDITY_WORDS, parse_validity)]
Factor = Annotated[Decimal, DecimalBound(gt=0)]
NonNegativeDecimal = Annotated[Decimal, DecimalBound(ge=0)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
MetricName = Literal["growth", "points", "spend", "recharge", "single_purchase"]


class _Table(Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A TOML table: unknown keys are errors, values never change after loading."""


class SpendRule(_Table):
    unit_minor: Positive
    per_unit: Count


class ExpiryRules(_Table):
    policy: Literal["never", "jan1_after_years", "rolling_days", "annual_reset"] = "never"
    years: Years | None = None
    days: PositiveDays | None = None


class PointsRules(_Table):
    rounding: Literal["floor", "half_up", "carry"] = "floor"
    per_order: Count = 0
    pending_days: Days = 0
    multiplier_stacking: Literal["max", "multiply"] = "max"
    spend: SpendRule | None = None
    expiry: ExpiryRules = ExpiryRules()


class GrowthRules(_Table):
    source: Literal["points", "spend"] = "points"
    per_point: NonNegativeDecimal | None = None
    """None: 1 (left out, so that one given with source = "spend", where it does nothing, can be told)."""
    unit_minor: Positive | None = None
    per_unit: Count | None = None


class LineMatch(_Table):
    sku: list[str] = []
    category: list[str] = []
    name_contains: list[str] = []
    product_id: list[str] = []


class Filters(_Table):
    promotional_lines_earn: bool = True
    member_discounted_lines_earn: bool = True
    no_barcode_lines_earn: bool = True
    blacklist: LineMatch = LineMatch()
    whitelist: LineMatch = LineMatch()


class ProductRule(_Table):
    priority: Literal["special", "product"]
    match: LineMatch
    mode: Literal["fixed", "per_amount", "percent"]
    points: Count | None = None
    unit_minor: Positive | None = None
    per_unit: Count | None = None
    percent: NonNegativeDecimal | None = None


class MultiplierWhen(_Table):
    tiers: list[str] | None = None
    birthday: Literal["day", "month"] | None = None
    dates: list[date] | None = None
    weekdays: list[Weekday] | None = None
    from_: date | None = field(default=None, name="from")
    to: date | None = None


class Multiplier(_Table):
    name: str
    factor: Factor
    when: MultiplierWhen


class EventRule(_Table):
    type: str
    points: Count = 0
    growth: Count = 0
    per_day: Count = 0
    per_month: Count = 0
    lifetime: Count = 0


class AnomalyRules(_Table):
    daily_points_threshold: Positive
    action: Literal["flag", "block_earn", "block_earn_and_redeem", "hold"] = "flag"


class TierPolicy(_Table):
    on_change: Literal["realtime", "upgrade_only", "batch"] = "upgrade_only"
    on_expiry: Literal["reevaluate", "since_upgrade"] = "reevaluate"
    periodic: Literal["none", "monthly", "quarterly", "yearly"] = "none"
    reset_growth_on_upgrade: bool = False


class Extension(_Table):
    metric: MetricName
    threshold: Count


class Tier(_Table):
    """`discount_percent` is the share of the price a member of this tier pays (90: 10 % off);
    lines matching `discount_excludes` are never discounted."""

    name: str
    metric: MetricName | None = None
    window: WindowText = "lifetime"
    threshold: Count | None = None
    validity: ValidityText = "permanent"
    extension: Extension | None = None
    effective: Literal["immediate", "next_day"] = "immediate"
    earns_points: bool = True
    downgrade_to: str | None = None
    paid_upgrade_sku: str | None = None
    discount_percent: Percent = 100
    discount_excludes: LineMatch = LineMatch()


# -- spending (docs/rules.md, spending) -------------------------------------------------------------


class CashStep(_Table):
    points: Positive
    value_minor: Positive


class CashRules(_Table):
    """Points as cash at the till: `ratio` buys units of `unit_minor` for `points_per_unit`
    points each; `tiered` takes the largest step the offer and the order allow."""

    mode: Literal["ratio", "tiered"]
    points_per_unit: Positive | None = None
    unit_minor: Positive | None = None
    max_share_percent: Percent = 100
    steps: list[CashStep] = []


class RedemptionRules(_Table):
    """When a list is not empty, points are spent only on a local day matching an entry of one."""

    dates: list[date] = []
    days_of_month: list[DayOfMonth] = []
    weekdays: list[Weekday] = []
    cash: CashRules | None = None


class StoredValueRules(_Table):
    fixed_amounts: list[Positive] = []
    """Empty: any recharge amount; else only these."""


class RechargeBonus(_Table):
    name: str
    min_amount_minor: Positive
    bonus_minor: Count = 0
    points: Count = 0
    coupons: list[str] = []
    tiers: list[str] = []
    from_: date | None = field(default=None, name="from")
    to: date | None = None
    once_per_member: bool = False
    upgrade_to: str | None = None


class Coupon(_Table):
    """Validity is fixed (`valid_from` .. `valid_to`, inclusive) or relative to the issue day
    (from `valid_after_days` after it, for `valid_days` days), never both."""

    id: str
    kind: Literal["voucher", "discount", "gift"]
    value_minor: Positive | None = None
    percent: Annotated[int, Meta(ge=1, le=99)] | None = None
    gift_sku: str | None = None
    min_charge_minor: Count = 0
    designated: LineMatch = LineMatch()
    inventory: Inventory = 0
    """0: unlimited."""
    per_member: Count = 0
    """0: unlimited."""
    valid_from: date | None = None
    valid_to: date | None = None
    valid_after_days: Days | None = None
    valid_days: PositiveDays | None = None
    issue_on: Literal["api", "enroll", "upgrade"] = "api"
    tiers: list[str] = []


class Tag(_Table):
    """One condition: `recency_days`, or `purchases` / `spend_minor` within `window`."""

    name: str
    recency_days: PositiveDays | None = None
    purchases: Positive | None = None
    spend_minor: Positive | None = None
    window: WindowText | None = None


class NotifyRules(_Table):
    expiring_days: Days = 7
    birthday_days_before: Days = 7
    """0: no birthday notices."""
    retention_days: PositiveDays = 7


class Rules(_Table):
    version: Positive
    programme: str
    timezone: str
    tiers: list[Tier]
    currency_minor_per_major: Positive = 100
    unknown_member: Literal["enroll", "reject"] = "enroll"
    max_lateness_days: Days = 7
    allow_negative_points: bool = True
    default_tier_by_channel: dict[str, str] = {}
    points: PointsRules = PointsRules()
    growth: GrowthRules = GrowthRules()
    filters: Filters = Filters()
    product_rules: list[ProductRule] = []
    multipliers: list[Multiplier] = []
    events: list[EventRule] = []
    anomaly: AnomalyRules | None = None
    tier_policy: TierPolicy = TierPolicy()
    redemption: RedemptionRules = RedemptionRules()
    stored_value: StoredValueRules = StoredValueRules()
    recharge_bonuses: list[RechargeBonus] = []
    coupons: list[Coupon] = []
    tags: list[Tag] = []
    notify: NotifyRules = NotifyRules()


def build_rules(document: dict) -> Rules:
    """Turn an already checked document into the model (see validation.check_document)."""
    return msgspec.convert(document, Rules)
