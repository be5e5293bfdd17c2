"""Giving and taking back points and growth: the anomaly verdict, pending points, lots, tier sums, the ledger."""

from engine.anomaly import BLOCKED, FLAGGED, HELD, Verdict
from engine.balance import add_points, cancel_held, hold_points, take_points
from engine.book import Book
from engine.calendar import iso
from engine.members import Member
from engine.notices import ANOMALY_FLAGGED
from engine.transactions import TxnRecord
from engine.types import Day, TxnId
from engine.why import Why

__all__ = ["count_earned", "count_spend", "give", "judge_points", "lapsed_part", "take_back", "verdict_points"]


def judge_points(book: Book, member: Member, day: Day, points: int, ref: TxnId) -> tuple[int, bool, str]:
    """Apply the daily anomaly threshold to points about to be earned:
    (points to award, whether they are held, the result's reason)."""
    if points <= 0 or not book.programme.anomaly.threshold:
        return points, False, ""
    was_abnormal, flagged_days = member.abnormal, len(member.flag_days)
    verdict = book.programme.anomaly.judge(member, day, points)
    if member.abnormal and not was_abnormal:
        book.write(member, day, "txn", ref, "status", status="abnormal")
    if (member.abnormal and not was_abnormal) or len(member.flag_days) > flagged_days:  # a crossing
        anomaly = book.programme.anomaly
        book.notify(ANOMALY_FLAGGED, member.member_id, day, date=iso(day), points=member.day_points.get(day, 0),
                    threshold=anomaly.threshold, action=anomaly.action, txn_id=ref)
    return verdict_points(verdict, points)


def verdict_points(verdict: Verdict, points: int) -> tuple[int, bool, str]:
    """(points to award, whether they are held, the result's reason) under an anomaly verdict."""
    if verdict is BLOCKED:
        return 0, False, "blocked"
    if verdict is HELD:
        return points, True, "held"
    return points, False, "flagged" if verdict is FLAGGED else ""


def give(book: Book, member: Member, day: Day, ref: TxnId, kind: str, points: int, growth: int,
         held: bool = False, why: Why | str = "") -> int:
    """Credit earned points (spendable, pending for the return window, or held) and growth.
    Returns the points that lapsed at once (a late transaction's, past their expiry's run): never
    spendable, they go on its record's `lapsed_points`, so that its refund takes them only out of
    what was earned, as held or pending points that lapsed (an outside probe's refund took them
    from the balance again, a debt or another purchase's points)."""
    programme = book.programme
    pending = past = 0
    if points > 0:
        expires, today = programme.expiry.expires(day), book.today_for(member)
        # a late purchase whose return window's run has passed is past its window: spendable now,
        # as points an operator releases then are; pending, they waited a run more, and lapsed
        # at it unspent when that run was also their expiry's (an outside probe)
        if held or (programme.pending_days and day + programme.pending_days > today):
            release = 0 if held else day + programme.pending_days
            hold_points(member, points, release, expires, ref)
            pending = points
        else:
            past = credit_lot(member, points, expires, today)
    member.growth += growth
    count_earned(book, member, day, points, growth)
    if points or growth:
        book.write_earned(member, day, ref, kind, points - pending, pending, growth, why)
    write_lapsed(book, member, "txn", ref, past)
    return past


def credit_lot(member: Member, points: int, expires: Day, today: Day) -> int:
    """Points as a spendable lot, unless a late transaction's whose expiry's run has passed: those
    lapse at once and are returned (its record keeps them: `give`). Spendable until the next run,
    they were spent by orders made after they had expired (an outside probe)."""
    if expires <= today:
        return points
    add_points(member, points, expires)
    return 0


def write_lapsed(book: Book, member: Member, cause: str, ref: TxnId, points: int) -> None:
    """The expiry entry, dated today, of points that lapsed as they were credited (credit_lot)."""
    if points:
        book.write(member, book.today_for(member), cause, ref, "expire", points=-points)


def take_back(book: Book, member: Member, day: Day, ref: TxnId, kind: str, points: int, growth: int,
              original: TxnId = "", original_day: Day = 0, since: bool = True, lapsed: int = 0) -> tuple[int, int]:
    """Reverse points and growth: first the original's still-pending points, then spendable
    lots; `lapsed` of the points lapsed while held and are only counted out of what was earned.
    Growth never goes below zero. Returns the (points, growth) actually taken."""
    programme = book.programme
    pending = cancel_held(member, original, points - lapsed) if original and points > lapsed else 0
    rest = points - lapsed - pending
    unrecovered = take_points(member, rest, programme.allow_negative) if rest > 0 else 0
    growth = min(growth, max(member.growth, 0))
    member.growth -= growth
    count_earned(book, member, original_day or day, -points, -growth, since)
    taken = points - lapsed - unrecovered
    if taken or growth or unrecovered:
        book.write(member, day, "txn", ref, kind, points=-(rest - unrecovered), pending=-pending,
                   growth=-growth, unrecovered=unrecovered)
    return taken, growth


def lapsed_part(original: TxnRecord, points: int) -> int:
    """Of `points` a refund of `original` takes back, those that lapsed while held (midnight marks
    them): they left the balance when they lapsed, so the refund takes them only from the sums."""
    part = min(points, original.lapsed_points)
    original.lapsed_points -= part
    return part


def count_earned(book: Book, member: Member, day: Day, points: int, growth: int, since: bool = True) -> None:
    """`since`: False for a refund of what the `since_*` sums never took in (tiers.counted_since)."""
    ladder = book.programme.ladder
    member.total_points += points
    if since and day >= member.tier_since:
        member.since_points += points
        member.since_growth += growth
    if ladder.windows_earned:  # checked here: most programmes window neither
        ladder.record(member, "points", day, points)
        ladder.record(member, "growth", day, growth)


def count_spend(book: Book, member: Member, day: Day, eligible: int, txn_id: TxnId, since: bool = True) -> None:
    """Eligible spend counts for spend tiers (negative when refunded, on the original's day, and
    in the `since_*` sums only when the original was: `since`)."""
    ladder = book.programme.ladder
    member.total_spend += eligible
    if since and day >= member.tier_since:
        member.since_spend += eligible
        member.since_single = max(member.since_single, eligible)
    ladder.record(member, "spend", day, eligible)
    if eligible > 0:
        ladder.record_single(member, day, eligible, txn_id)
    else:
        for single in member.singles:
            if single[2] == txn_id:
                was_best = single[1] == member.since_single and since and day >= member.tier_since
                single[1] += eligible
                if was_best:
                    _best_since_again(member)


def _best_since_again(member: Member) -> None:
    """The largest single purchase since the upgrade, after a refund of the one that was: an order
    refunded in full still extended its tier (a review). Orders the ladder no longer keeps (older
    than its longest window) are not looked at: a tier valid longer than its window may find a
    smaller one than it had."""
    tier_since = member.tier_since
    member.since_single = max([s[1] for s in member.singles if s[0] >= tier_since], default=0)
