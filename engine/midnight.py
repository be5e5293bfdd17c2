"""The midnight run for one member and one date: expiry, pending points, tier validity and
recalculation, and the anomaly report. It is idempotent per member and date."""

from datetime import date

from engine.anomaly_report import AnomalyRow
from engine.balance import add_points
from engine.book import Book
from engine.calendar import iso
from engine.members import Held, Member
from engine.periods import valid_through
from engine.reminders import next_reminder, remind
from engine.spending.coupons import coupon_due, expire_coupons
from engine.tagging import retag
from engine.tier_changes import enter_tier, given_floor, kept_floor, use_up
from engine.tiers import TierLadder, reset_since
from engine.types import Day

__all__ = ["Night", "is_due", "next_due", "night_of", "note_lapsed", "periodic_due", "run_member_midnight",
           "run_midnight", "schedule", "visit", "visitors", "wake_day"]


class Night:
    """What one run knows about its date, worked out once rather than for every member. A plain
    class, not a Struct: compiled, an extension type whose fields are C struct members
    (midnight.pxd), and setup.py leaves a module that declares a Struct pure (docs/decisions.md)."""

    __slots__ = ("new_year", "periodic", "ref", "run")

    def __init__(self, run: Day, ref: str, periodic: bool, new_year: bool) -> None:
        self.run = run
        self.ref = ref
        """The ledger's reference for the run's entries: its date."""
        self.periodic = periodic
        self.new_year = new_year


def night_of(book: Book, run: Day) -> Night:
    """The run's date as every member's visit reads it."""
    today = date.fromordinal(run)
    return Night(run, iso(run), periodic_due(book, run), (today.month, today.day) == (1, 1))


def periodic_due(book: Book, run: Day) -> bool:
    """Whether `run` (the date whose 00:00 this is) is a day of periodic recalculation or reset."""
    today = date.fromordinal(run)
    periodic = book.programme.ladder.periodic
    first = today.day == 1
    if book.programme.expiry.policy == "annual_reset" and first and today.month == 1:
        return True
    return first and (periodic == "monthly" or (periodic == "quarterly" and today.month in (1, 4, 7, 10))
                      or (periodic == "yearly" and today.month == 1))


def is_due(book: Book, member: Member, run: Day, everyone: bool = False) -> bool:
    """Cheap: whether the run for `run` has anything to do for this member."""
    if member.midnight_done >= run:
        return False
    return bool(
        everyone or member.touched or member.flag_days or member.next_tier
        or (member.tier_until and member.tier_until < run)
        or (member.lots and member.lots[0].expires <= run)
        or (member.held and _held_due(member, run))
        or 0 < member.tag_check <= run
        or 0 < next_reminder(book, member, run - 1) <= run
        or (member.coupons and 0 < coupon_due(member) <= run)
    )


def _held_due(member: Member, run: Day) -> bool:
    """Whether held points are released or expire by `run` (a loop: compiled, `held` is typed)."""
    for held in member.held:  # noqa: SIM110 (a generator would be a closure, which a cpdef cannot hold)
        if 0 < held.release <= run or held.expires <= run:
            return True
    return False


def run_midnight(book: Book, run: Day) -> list[AnomalyRow]:
    """The whole run for `run`, then the business day moves to `run`. A shard does the same
    in chunks: `visitors` once, `visit` for each chunk, then it sets the business day."""
    rows = visit(book, visitors(book, run), run)
    book.today = max(book.today, run)
    book.history.forget_before(run - book.programme.max_lateness - 1)
    return rows


def visitors(book: Book, run: Day) -> list[str]:
    """Who the run must visit: members changed since the last run and those whose wake-up
    day has come (everyone on a day of periodic recalculation or annual reset), so a quiet
    night costs little however many members there are."""
    if periodic_due(book, run):
        book.wakeups = {day: ids for day, ids in book.wakeups.items() if day > run}
        book.awake = set()
        return sorted(book.members)
    chosen, book.awake = book.awake, set()
    for day in [d for d in book.wakeups if d <= run]:
        chosen |= book.wakeups.pop(day)
    return sorted(chosen)


def visit(book: Book, member_ids: list[str], run: Day, planned: dict[str, Day] | None = None) -> list[AnomalyRow]:
    """`planned`, if given, gets each visited member's next run (`wake_day`, 0: none) instead of
    `book.wakeups`, so a caller indexing them need not work it out again."""
    night = night_of(book, run)
    members = book.members
    rows: list[AnomalyRow] = []
    for member_id in member_ids:
        member = members.get(member_id)
        if member is None:
            continue
        if is_due(book, member, run, night.periodic):
            rows.extend(run_member_midnight(book, member, night))
        elif member.flag_days and member.midnight_done >= run and member.flag_days[0] < run:
            # brought through early by a shard (a transaction ahead of the walk): its rows wait
            # for the run, which reads the closed day's transactions once for every member
            rows.extend(_anomaly_rows(book, member, run))
            book.dirty[member_id] = member
        if planned is None:
            schedule(book, member)
        else:
            planned[member_id] = wake_day(book, member)
    return rows


def next_due(member: Member) -> Day:
    """The first date whose run has work for this member, or 0 when none is foreseen."""
    due = member.lots[0].expires if member.lots else None  # lots are kept in expiry order
    for held in member.held:
        if held.release and (due is None or held.release < due):
            due = held.release
        if due is None or held.expires < due:
            due = held.expires
    if member.tier_until and (due is None or member.tier_until + 1 < due):
        due = member.tier_until + 1
    if member.tag_check and (due is None or member.tag_check < due):
        due = member.tag_check
    if member.coupons and (coupon := coupon_due(member)) and (due is None or coupon < due):
        due = coupon
    return 0 if due is None else due


def schedule(book: Book, member: Member) -> Day:
    day = wake_day(book, member)
    if day:
        book.wake_on(day, member.member_id)
    return day


def wake_day(book: Book, member: Member) -> Day:
    """The date of the next run that has work for this member (0: none foreseen)."""
    due = next_due(member)
    tomorrow = book.today + 1
    if due and due <= tomorrow:  # no reminder comes sooner than the next run (a new member's tags)
        return tomorrow
    done = member.midnight_done
    reminder = next_reminder(book, member, book.today if book.today > done else done)
    if reminder and (not due or reminder < due):
        due = reminder
    if not due:
        return 0
    return due if due > tomorrow else tomorrow


def run_member_midnight(book: Book, member: Member, night: Night) -> list[AnomalyRow]:
    """Bring one member up to the midnight of `night.run`; windows are judged as of the day
    before. Every change is a ledger entry caused by the midnight run."""
    run, ref = night.run, night.ref
    if member.midnight_done >= run:
        return []
    if member.held:
        _release_pending(book, member, run, ref)
    # the guards say cheaply when a step has nothing to do (most members, most nights)
    if (member.lots and member.lots[0].expires <= run) or member.held or (night.new_year and member.debt):
        _expire(book, member, night)
    if member.coupons:
        expire_coupons(book, member, run, ref)
    if member.next_tier or (member.touched and book.programme.ladder.batch):
        _upgrades_due(book, member, run, ref)
    if member.tier_until and member.tier_until < run:
        _validity_end(book, member, run, ref)
    if night.periodic:
        _periodic(book, member, run, ref)
    remind(book, member, run)
    rows = _anomaly_rows(book, member, run) if member.flag_days else []
    if book.programme.tags.rules or member.tags:
        retag(book, member, run, ref)
    member.touched = False
    member.midnight_done = run
    book.dirty[member.member_id] = member
    return rows


def _release_pending(book: Book, member: Member, run: Day, ref: str) -> None:
    """Points whose expiry is this run too are left held, for `_expire` to lapse: never spendable,
    their refund takes them only from what was earned (released first, they expired as a lot, and
    the refund took them from the balance again: a probe)."""
    released = [h for h in member.held if 0 < h.release <= run < h.expires]
    if not released:
        return
    member.held = [h for h in member.held if not 0 < h.release <= run < h.expires]
    for held in released:
        member.pending -= held.amount
        add_points(member, held.amount, held.expires)
        book.write(member, run, "midnight", ref, "release", points=held.amount, pending=-held.amount)


def _expire(book: Book, member: Member, night: Night) -> None:
    run, ref = night.run, night.ref
    # lots are kept in expiry order: only the first can tell whether any expired
    if member.lots and member.lots[0].expires <= run:
        expired, kept = 0, []  # loops, not sum() of a generator: Cython compiles no closure in a cpdef
        for lot in member.lots:
            if lot.expires <= run:
                expired += lot.amount
            else:
                kept.append(lot)
        member.lots = kept
        member.points -= expired
        book.write(member, run, "midnight", ref, "expire", points=-expired)
    if member.held:
        lapsed, still = 0, []
        for held in member.held:
            if held.expires <= run:
                lapsed += held.amount
                note_lapsed(book, member, held)
            else:
                still.append(held)
        if lapsed:
            member.held = still
            member.pending -= lapsed
            book.write(member, run, "midnight", ref, "expire", pending=-lapsed)
    if night.new_year and member.debt and book.programme.expiry.policy == "annual_reset":
        forgiven, member.debt = member.debt, 0  # every balance is cleared on 1 January, debts too
        member.points += forgiven
        book.write(member, run, "midnight", ref, "reset", points=forgiven)


def note_lapsed(book: Book, member: Member, held: Held) -> None:
    """Held or pending points lapsing were never spendable: their transaction's record says so, and
    its refund takes them out of what was earned only (award.lapsed_part), not from the balance
    again. A transaction no longer indexed (long past any window) cannot be refunded by then."""
    key = (member.member_id, held.txn_id)
    record = book.txns.get(key)
    if record is not None:
        record.lapsed_points += held.amount
        book.txns[key] = record


def _upgrades_due(book: Book, member: Member, run: Day, ref: str) -> None:
    """`next_day` tiers scheduled yesterday, and every upgrade under the `batch` policy,
    if the condition still holds as of the day before."""
    ladder = book.programme.ladder
    as_of = run - 1
    if ladder.batch and member.touched:
        best = ladder.best_match(member, as_of)
        member.next_tier = max(member.next_tier, best)
    target, member.next_tier = member.next_tier, 0
    if target > member.tier and ladder.holds(member, ladder.tiers[target], as_of):
        enter_tier(book, member, target, run, "midnight", ref, judged=as_of)


def _validity_end(book: Book, member: Member, run: Day, ref: str) -> None:
    """On the first midnight after the last valid day: extend, else go to `downgrade_to`,
    else re-evaluate from the highest tier down (the first match, else the lowest)."""
    if not member.tier_until or member.tier_until >= run:
        return
    ladder = book.programme.ladder
    rule = ladder.tiers[member.tier]
    extension = rule.extension
    if extension is not None and ladder.since(member, extension.metric) >= extension.threshold:
        if extension.metric == "single_purchase":
            _use_order_since_upgrade(member)
        member.tier_since = run
        member.tier_until = valid_through(rule.validity, run)
        reset_since(member)
        book.write(member, run, "midnight", ref, "tier", tier_from=member.tier, tier_to=member.tier,
                   note="extended")
        return
    judged = rule.downgrade_to if rule.downgrade_to is not None else _reevaluate(ladder, member, run)
    target, given = judged, judged == rule.downgrade_to  # put there, not reached: it runs its validity
    floor = given_floor(member, run)
    if floor > target:
        target, given = floor, False
    # judged on what was earned since the upgrade, the order that met it is the largest since then,
    # not the window's best: that one stayed, and renewed the tier again a year on (a review)
    used = (target == judged and not given and target > 0 and ladder.on_expiry == "since_upgrade"
            and ladder.tiers[target].metric == "single_purchase")
    if used:
        _use_order_since_upgrade(member)
    enter_tier(book, member, target, run, "midnight", ref, note="validity ended", given=given, judged=run - 1,
               used=used)


def _use_order_since_upgrade(member: Member) -> None:
    """The order that extends a tier, or that a `since_upgrade` re-evaluation judges it on, is used
    up (SPEC §6: not used again, for an upgrade or an extension): left among the member's single
    purchases, it put the member back in the tier at the end of the extension too (a review). It is
    the largest since the upgrade."""
    since = [s for s in member.singles if s[0] >= member.tier_since and s[1] == member.since_single]
    if since:
        use_up(since[0])


def _reevaluate(ladder: TierLadder, member: Member, run: Day) -> int:
    if ladder.on_expiry == "since_upgrade":
        for rule in ladder.tiers[:0:-1]:
            if ladder.since(member, rule.metric) >= rule.threshold:
                return rule.index
        return 0
    return ladder.best_match(member, run - 1)


def _periodic(book: Book, member: Member, run: Day, ref: str) -> None:
    ladder = book.programme.ladder
    if ladder.periodic == "none":
        return
    target = max(ladder.best_match(member, run - 1), given_floor(member, run), kept_floor(ladder, member, run))
    if target != member.tier:
        enter_tier(book, member, target, run, "midnight", ref, note="periodic recalculation", judged=run - 1)


def _anomaly_rows(book: Book, member: Member, run: Day) -> list[AnomalyRow]:
    """The rows of the days closed by `run`; a day it does not close (a shard's transaction for
    the member dated after its midnight, ahead of the walk) waits for the next run."""
    rows = [AnomalyRow(member.member_id, iso(day), member.day_points.get(day, 0),
                       book.history.transactions_on(member.member_id, day)) for day in member.flag_days if day < run]
    member.flag_days = tuple([day for day in member.flag_days if day >= run])  # a list: no closure, compiled
    return rows
