"""A member's state: tier, points as lots, growth, stored value, status and the sums tiers are judged on."""

from msgspec import Struct, field

from engine.types import Day, MemberId, Minor, TxnId

__all__ = ["POINTS_REMINDER", "CouponInstance", "EventCounts", "Held", "Lot", "Member", "Profile",
           "forget_points_reminder", "points_reminder_key"]


class Lot(Struct, array_like=True, gc=False):
    """Spendable points that expire together at 00:00 of `expires`."""

    expires: Day
    amount: int


class Held(Struct, array_like=True, gc=False):
    """Points earned but not yet spendable: released at the midnight run of `release`,
    or, when `release` is 0, held by the anomaly rule until an operator decides."""

    release: Day
    expires: Day
    amount: int
    txn_id: TxnId


class EventCounts(Struct, array_like=True, gc=False):
    """How often one event type gave something: per recent day, per recent month, ever."""

    days: dict[Day, int] = {}
    months: dict[int, int] = {}
    lifetime: int = 0


class Profile(Struct, array_like=True, omit_defaults=True, gc=False):
    """What enrollment records about a member; scoring reads only the birthday."""

    birthday: str = ""
    """MM-DD, or empty when unknown."""
    source: str = ""
    content: str = ""
    campaign: str = ""
    channel: str = ""
    attributes: dict[str, str | int | float] = {}
    dates: tuple[str, ...] = ()
    """The names of the attributes sent as dates (their text YYYY-MM-DD), sorted: read back as
    dates, not text (appended: records before it read none). A tuple: an empty one is shared, where
    each member would hold an empty list of its own for the collector to track."""


class CouponInstance(Struct, array_like=True, gc=False):
    """One coupon given to a member: `code` is `<coupon id>-<member id>-<n>`; `status` is
    unused, used, expired or void; valid from `valid_from` through `valid_to` (local days)."""

    code: str
    coupon_id: str
    status: str
    valid_from: Day
    valid_to: Day
    issued_by: str = ""
    """The transaction (or trigger) that issued it."""


class Member(Struct, array_like=True, gc=False):
    """Invariants: `points == sum(lot amounts) - debt`; `pending == sum(held amounts)`;
    every balance equals the sum of the member's ledger entries. Stored value is
    `stored_value` (principal, money paid in) plus `bonus_value` (given by recharge bonuses)."""

    member_id: MemberId
    enrolled: Day
    tier: int = 0
    tier_since: Day = 0
    """Day of the last upgrade, extension or downgrade: where `since_*` sums start."""
    tier_until: Day = 0
    """Last valid day of the tier; 0 means permanent."""
    next_tier: int = 0
    """A `next_day` tier to enter at the coming midnight run; 0 when none."""
    points: int = 0
    debt: int = 0
    lots: list[Lot] = []
    pending: int = 0
    held: list[Held] = []
    growth: int = 0
    stored_value: Minor = 0
    status: str = "active"
    abnormal: bool = False
    carry_minor: Minor = 0
    """Spend below one unit, kept for the next purchase when rounding is `carry`."""
    total_points: int = 0
    total_spend: Minor = 0
    total_recharge: Minor = 0
    since_points: int = 0
    since_growth: int = 0
    since_spend: Minor = 0
    since_recharge: Minor = 0
    since_single: Minor = 0
    windows: dict[str, dict[Day, int]] = {}
    """Per metric and local day, what windowed tier conditions sum (only metrics the rules use)."""
    singles: tuple[list, ...] = ()
    """Unused single purchases large enough for a tier: [day, eligible minor, txn id]."""
    events: dict[str, EventCounts] = {}
    day_points: dict[Day, int] = {}
    """Points tried for per recent local day: the daily anomaly counters."""
    flag_days: tuple[Day, ...] = ()
    """Days on which the member crossed the threshold, not yet reported."""
    ledger_seq: int = 0
    profile: Profile = field(default_factory=Profile)
    touched: bool = False
    """Changed by a transaction since its last midnight run (batch tiers are judged then)."""
    midnight_done: Day = 0
    """The last date whose midnight run has been applied to this member: makes runs idempotent."""
    last_purchase: Day = 0
    purchases: int = 0
    """Paid purchases ever, for tags that count them over a lifetime."""
    tags: list[str] = []
    """Computed tags, sorted: changed only by the midnight run."""
    manual_tags: list[str] = []
    """Tags an operator set, sorted; kept apart from the computed ones."""
    tag_check: Day = 0
    """The next run date on which a computed tag could change by itself; 0 when none."""
    reminded: tuple[str, ...] = ()
    """What expiry reminders were sent for (engine.reminders), kept until it lapses: each is sent once."""
    bonus_value: Minor = 0
    coupons: tuple[CouponInstance, ...] = ()
    """Tuples, not lists (as `singles`, `flag_days`, `reminded`): most members never have any, and
    the empty tuple is shared, where each member held would otherwise carry an empty list (56 bytes)."""
    bonuses_used: tuple[str, ...] = ()
    """Names of `once_per_member` recharge bonuses this member has had."""
    frozen_when_lost: bool = False
    """The card was frozen when it was reported lost: cancelling the loss freezes it again rather
    than letting a card an operator froze be used (engine.operators)."""
    since_began: int = 0  # appended: a stored member is an array, and older ones end before it
    """How many times the `since_*` sums began afresh (each tier change and extension). An index
    record keeps the count its transaction was applied under, so that its refund takes back from
    them only what it added: the upgrading order, and orders of the upgrade day before it, are not
    in them, though dated on `tier_since` (an outside probe: their refunds cost the tier)."""
    given_tier: int = 0  # appended as since_began
    """The last tier the member was given rather than reached on its condition: by a recharge
    bonus, a paid upgrade, an operator, `downgrade_to`, the enrollment channel or an import; 0 none.
    A given tier runs its validity: until `given_until`, re-matching the ladder (a refund under
    `realtime`, a higher tier's validity ending, a periodic recalculation) moves the member no lower
    (engine.tier_changes.given_floor). Members stored before it was kept have none."""
    given_until: Day = 0  # appended as since_began
    """The given tier's last valid day; 0: permanent."""
    unrecovered: tuple[tuple[int, int], ...] = ()  # appended as since_began
    """Points refunds (or negative adjustments) could not take back, the balance not going below
    zero (`allow_negative_points = false`), and not repaid since: (`ledger_seq` when it happened,
    points) each. A redeem made before one gave away the points it found missing, so that
    redeem's refund repays it first (an outside probe: buying, redeeming the points, refunding the
    purchase and then the redeem left the member the points for nothing, again and again). Later
    earnings, and refunds of redeems made after it, never repay it."""
    cleared_days: tuple[Day, ...] = ()  # last, appended
    """The days over the daily anomaly threshold when an operator last cleared the member
    (`clear_abnormal`, `release_held`, `void_held`): the rest of each earns as usual, a late
    transaction after the day's report too, instead of crossing the day again (engine/anomaly.py).
    Each is forgotten with the day's counter."""


POINTS_REMINDER = "points "


def points_reminder_key(expires: Day) -> str:
    """`Member.reminded`'s key for the points that expire at `expires` (engine/reminders.py)."""
    return f"{POINTS_REMINDER}{expires}"


def forget_points_reminder(member: Member, expires: Day) -> None:
    """The points that expire at `expires` are announced again at their reminder's run."""
    key = points_reminder_key(expires)
    if key in member.reminded:
        member.reminded = tuple(k for k in member.reminded if k != key)
