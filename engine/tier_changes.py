"""A member moving between tiers: entering one (validity, resets, notices, upgrade coupons) and
the moves a transaction triggers at once. What a tier requires is `tiers.py`'s."""

from engine.book import Book
from engine.calendar import iso
from engine.members import Member, Profile
from engine.notices import TIER_CHANGED
from engine.periods import valid_through
from engine.spending.coupons import issue_on_upgrade
from engine.tiers import TierLadder, TierRule, reset_since, validity_from
from engine.types import Day

__all__ = ["enter_tier", "given_floor", "keep_given", "kept_floor", "member_in_default_tier", "note_default_tier",
           "tier_after_transaction", "use_up"]


def enter_tier(book: Book, member: Member, target: int, day: Day, cause: str, ref: str,
               note: str = "", given: bool = False, since: Day = 0, judged: Day = 0, used: bool = False) -> None:
    """Move a member to a tier on `day`, starting its validity and the `since` sums afresh.
    `given`: by a recharge bonus, a paid upgrade, an operator or `downgrade_to`, not on the tier's
    condition (Member.given_tier). Back in a tier it was given and still holds, the member keeps the
    validity it was given with. `since`: the day the move's own transaction occurred when it came
    late; the `since` sums take in what is applied after the move and dated from then (SPEC §0),
    while the validity runs from `day`. `judged`: the day the tier's condition was judged as of,
    when not `day` (a midnight run judges the day before): the order used up is the one that met it.
    `used`: the caller used up the order that met it (judged since the upgrade, not over a window)."""
    ladder = book.programme.ladder
    rule = ladder.tiers[target]
    previous = member.tier
    growth = 0
    if target > previous and rule.resets_growth and member.growth:
        growth = -member.growth
        member.growth = 0
        member.windows.pop("growth", None)
    floor = given_floor(member, day)
    # the order that makes it, entered or entered again on its condition (SPEC §6: an order used
    # for an upgrade is not used again): a renewal at the validity's end did not use it, and one
    # order kept a tier of a month's validity for its window's whole year (an outside probe)
    if rule.metric == "single_purchase" and not (given or used) and (target > previous or target != floor):
        _use_single(member, ladder, rule, judged or day)
    member.tier = target
    # A late upgrading order's own day, not the day it was scored: an order made after it and
    # sent after it, though late too, was earned since the upgrade (an outside probe found it
    # left out, and the member lost the tier its extension kept).
    member.tier_since = min(since, day) if since else day
    member.tier_until = 0 if rule.permanent else valid_through(rule.validity, day)
    if given:
        member.given_tier, member.given_until = target, member.tier_until
    elif target and target == floor:
        member.tier_until = member.given_until
    if member.next_tier <= target:
        member.next_tier = 0
    reset_since(member)
    book.write(member, day, cause, ref, "tier", growth=growth, tier_from=previous, tier_to=target, note=note)
    if target != previous:
        _notify_change(book, member, previous, day, cause, ref, note)
    if target > previous and book.programme.coupons.on_upgrade:
        issue_on_upgrade(book, member, target, day, cause, ref)


def member_in_default_tier(book: Book, member_id: str, channel: str, day: Day) -> Member:
    """A member new on `day` (enrolled, or by its first transaction) in its channel's default tier:
    the tier lasts its validity, as an imported member's does, and is given, not reached. A late
    first transaction's tier counts it from the business day, as a late paid upgrade's or
    recharge's: from its own day, a validity ended before the business day kept the tier and its
    multiplier until the next run (an outside probe)."""
    tier = book.programme.default_tier(channel)
    until = validity_from(book.programme.ladder, tier, max(day, book.today)) if tier else 0
    return Member(member_id, enrolled=day, tier=tier, tier_since=day, tier_until=until, given_tier=tier,
                  given_until=until, profile=Profile(channel=channel))


def note_default_tier(book: Book, member: Member, day: Day, cause: str, ref: str) -> None:
    """A new member in its channel's default tier above the lowest: one ledger entry and one
    `tier_changed` event, as for every change of tier (SPEC §2; an outside probe found neither),
    and the tier's upgrade coupons, as every other way into it gives them (SPEC §11.5, "on
    entering one of the listed tiers": a coupons probe found none). A member created in the
    lowest tier has none: creation moves no balance nor tier."""
    if member.tier:
        note = f"channel {member.profile.channel}"  # short: it is in the ledger and an event of every such member
        book.write(member, day, cause, ref, "tier", tier_from=0, tier_to=member.tier, note=note)
        _notify_change(book, member, 0, day, cause, ref, note)
        if book.programme.coupons.on_upgrade:
            issue_on_upgrade(book, member, member.tier, day, cause, ref)


def _notify_change(book: Book, member: Member, previous: int, day: Day, cause: str, ref: str, note: str) -> None:
    """`tier_changed` for a member now in its tier, from `previous`."""
    names, target = book.programme.ladder.names, member.tier
    book.notify(TIER_CHANGED, member.member_id, day, from_tier=names[previous], to_tier=names[target],
                direction="up" if target > previous else "down",
                valid_until=iso(member.tier_until) if member.tier_until else "", cause=cause, ref=ref, note=note)


def keep_given(book: Book, member: Member, target: int, day: Day, cause: str, ref: str, note: str) -> None:
    """A tier given (a paid upgrade) no higher than the member's: it stays where it is, and the gift
    is its floor for the gift's validity from `day`, so that when the higher tier ends it falls back
    to it (an outside probe: a Silver card bought while in Gold was lost), unless it holds a gift
    already as good (one gift at a time, the higher, else the longer)."""
    until = validity_from(book.programme.ladder, target, day)
    floor = given_floor(member, day)
    if floor > target or (floor == target and (not member.given_until or 0 < until <= member.given_until)):
        return
    member.given_tier, member.given_until = target, until
    kept = f"{note}: {book.programme.ladder.names[target]} given" + (f" until {iso(until)}" if until else "")
    book.write(member, day, cause, ref, "tier", tier_from=member.tier, tier_to=member.tier, note=kept)


def given_floor(member: Member, day: Day) -> int:
    """The tier the member was given while that gift is still valid on `day`, else 0: re-matching
    the ladder moves it no lower (a given tier runs its validity: docs/decisions.md, "Tiers")."""
    given = member.given_tier
    if given and (not member.given_until or day <= member.given_until):
        return given
    return 0


def kept_floor(ladder: TierLadder, member: Member, day: Day) -> int:
    """The member's tier while its validity lasts on `day`, when its own condition cannot be judged
    again (reached by a single purchase, used once, or by growth that was then reset:
    `TierLadder.kept_until_validity_ends`), else 0. A periodic recalculation moves the member no
    lower, as a refund under `realtime` does not: it took such a tier from every member who had
    reached it, on the first day of the next period (an outside probe)."""
    tier = member.tier
    if tier and ladder.kept_until_validity_ends(tier) and (not member.tier_until or day <= member.tier_until):
        return tier
    return 0


def _use_single(member: Member, ladder: TierLadder, rule: TierRule, day: Day) -> None:
    used = ladder._best_single(member, rule, day)
    if used is not None:
        use_up(used)


def use_up(single: list) -> None:
    """An order used for an upgrade or an extension counts for nothing more (SPEC §6), but stays
    among the member's single purchases until its window passes, so that a publish making them
    again from the index knows it was used: removed, it came back when a version raised the
    threshold above it and the next lowered it again (a review)."""
    single[1] = 0


def tier_after_transaction(book: Book, member: Member, day: Day, ref: str, lowered: bool = False,
                           cause: str = "txn") -> None:
    """`realtime` and `upgrade_only` move up at once (a `next_day` tier waits for midnight);
    `realtime` also moves down after a transaction that lowered a metric (or an operator's void:
    `cause`), no lower than a tier it was given (given_floor), and not from a tier that cannot be
    re-judged. `batch` waits."""
    ladder = book.programme.ladder
    if ladder.batch:
        return
    as_of = book.as_of(member, day)
    for rule in ladder.above[member.tier]:
        if not ladder.holds(member, rule, as_of):
            continue
        if not rule.next_day:
            enter_tier(book, member, rule.index, as_of, cause, ref, since=day)
            return
        member.next_tier = max(member.next_tier, rule.index)
    if lowered and ladder.on_change == "realtime" and member.tier and not ladder.kept_until_validity_ends(member.tier):
        target = max(ladder.best_match(member, as_of), given_floor(member, as_of))
        if target < member.tier:
            enter_tier(book, member, target, as_of, cause, ref, since=day)
