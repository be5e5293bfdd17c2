"""What operators and the retailer's systems do to members outside transactions:
enroll, change card status, release or void held points, set a tier by hand."""

import re
from datetime import date
from math import isfinite

from msgspec import Struct

from engine.award import count_earned
from engine.balance import add_points
from engine.book import Book
from engine.calendar import parse_day
from engine.errors import CardStateError, InvalidRequestError, UnknownMemberError
from engine.ids import FINE, id_problem, id_requirement
from engine.members import Held, Member, Profile
from engine.messages import readable
from engine.midnight import note_lapsed, schedule
from engine.spending.coupons import issue_on_enroll
from engine.tagging import watch_new
from engine.tier_changes import enter_tier, member_in_default_tier, note_default_tier, tier_after_transaction
from engine.tiers import counted_since
from engine.types import PURCHASE, RECHARGE, Day

__all__ = ["STATUS_ACTIONS", "Enrollment", "birthday_of", "enroll", "set_status", "set_tier"]

MAX_ATTRIBUTES = 48
MAX_ATTRIBUTE_NAME = 64
MAX_ATTRIBUTE_TEXT = 1_000
"""Characters of an attribute's text. A member's attributes are in its record, written at every
change of the member: a probe's attribute of a megabyte made each of its transactions write one."""
_BIRTHDAY = re.compile(r"(?:([0-9]{4})-)?([0-9]{2})-([0-9]{2})")
"""ASCII digits, the whole text: `\\d` took "١٢-٠١" and `$` a trailing newline (an outside probe)."""


class Enrollment(Struct, kw_only=True):
    """An enrollment request; empty fields are not given. Attributes are text, numbers or
    ISO dates (dates arrive as text and are checked)."""

    member_id: str
    channel: str = ""
    birthday: str = ""
    source: str = ""
    content: str = ""
    campaign: str = ""
    attributes: dict[str, str | int | float] = {}
    date_attributes: frozenset[str] = frozenset()


def enroll(book: Book, request: Enrollment, day: Day) -> tuple[Member, bool]:
    """Create the member (at its channel's default tier) or update the profile fields given.
    Returns the member and whether it was created."""
    if id_problem(request.member_id) != FINE:
        raise InvalidRequestError(id_requirement("member_id"))
    birthday = birthday_of(request.birthday)
    _check_attributes(request)
    member = book.members.get(request.member_id)
    if member is not None:
        _check_merged_attributes(member, request)
    created = member is None
    if member is None:
        member = member_in_default_tier(book, request.member_id, request.channel, day)  # as scoring's auto-enrolled
        if member.tier_until:
            schedule(book, member)  # woken when the tier ends: no transaction of its own may come to
        book.members[member.member_id] = member
        note_default_tier(book, member, day, "operator", "enroll")
        watch_new(book, member, day)
        if book.programme.coupons.on_enroll:
            issue_on_enroll(book, member, day, "operator", "enroll")
    member.profile = _merged(member.profile, request, birthday)
    book.dirty[member.member_id] = member
    if birthday:  # the next run schedules its birthday reminder
        book.awake.add(member.member_id)
    return member, created


def birthday_of(text: str) -> str:
    """A birthday as MM-DD (empty stays empty); InvalidRequestError when it is not a date."""
    if not text:
        return ""
    found = _BIRTHDAY.fullmatch(text)
    year, month, day = (int(found.group(1) or 2000), int(found.group(2)), int(found.group(3))) if found else (0, 0, 0)
    try:
        date(year, month, day)  # without a year, 2000: a leap year, so 02-29 is a birthday
    except ValueError:
        raise InvalidRequestError(f'birthday: expected "MM-DD" or "YYYY-MM-DD", got {text!r}') from None
    return f"{month:02d}-{day:02d}"


def _check_attributes(request: Enrollment) -> None:
    for name in ("channel", "source", "content", "campaign"):  # in the record too: 1 MiB of channel was taken
        text = getattr(request, name)
        if len(text) > MAX_ATTRIBUTE_TEXT:
            raise InvalidRequestError(f"{name}: expected at most {MAX_ATTRIBUTE_TEXT:,} characters, got {len(text):,}")
    if len(request.attributes) > MAX_ATTRIBUTES:
        raise InvalidRequestError(f"attributes: at most {MAX_ATTRIBUTES}, got {len(request.attributes)}")
    for name, value in request.attributes.items():  # JSON, the members' export and the summary, has no NaN
        if not name or len(name) > MAX_ATTRIBUTE_NAME or not name.isprintable():
            raise InvalidRequestError(f"attributes: expected names of 1 to {MAX_ATTRIBUTE_NAME} printable "
                                      f"characters, got {name[:80]!r}")
        if isinstance(value, float) and not isfinite(value):
            raise InvalidRequestError(f"attributes.{name}: expected a finite number, got {value!r}")
        if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_TEXT:
            raise InvalidRequestError(f"attributes.{name}: expected at most {MAX_ATTRIBUTE_TEXT:,} characters, "
                                      f"got {len(value):,}")
    for name in request.date_attributes:
        try:
            parse_day(str(request.attributes[name]))
        except ValueError:
            raise InvalidRequestError(f"attributes.{name}: expected a date (YYYY-MM-DD), "
                                      f"got {request.attributes[name]!r}") from None


def _check_merged_attributes(member: Member, request: Enrollment) -> None:
    """The limit is on what the member holds, not on one request: enrolling an existing member
    again adds its attributes to those it has. One that holds more (from before the limit was
    checked on the merge) may still be enrolled again with attributes it already has."""
    held = member.profile.attributes
    new = [name for name in request.attributes if name not in held]
    if new and len(held) + len(new) > MAX_ATTRIBUTES:
        raise InvalidRequestError(f"attributes: member {member.member_id!r} has {len(held)} and this adds "
                                  f"{len(new)}, {len(held) + len(new)} in all; at most {MAX_ATTRIBUTES}")


def _merged(profile: Profile, request: Enrollment, birthday: str) -> Profile:
    return Profile(
        birthday=birthday or profile.birthday,
        source=request.source or profile.source,
        content=request.content or profile.content,
        campaign=request.campaign or profile.campaign,
        channel=request.channel or profile.channel,
        attributes={**profile.attributes, **request.attributes},
        # an attribute sent again as text or a number is no longer a date
        dates=tuple(sorted(set(profile.dates).difference(request.attributes).union(request.date_attributes))),
    )


STATUS_ACTIONS = ("freeze", "unfreeze", "report_lost", "cancel_lost", "clear_abnormal", "release_held", "void_held")


def set_status(book: Book, member_id: str, action: str, reason: str, day: Day) -> Member:
    """Card status operations. Each is idempotent: asking for the state a member is already
    in changes nothing and writes nothing."""
    member = book.members.get(member_id)
    if member is None:
        raise UnknownMemberError(member_id)
    if action not in STATUS_ACTIONS:
        raise InvalidRequestError(f"action: expected one of {', '.join(STATUS_ACTIONS)}, got {action!r}")
    day = book.as_of(member, day)  # a member already on the next date: its ledger goes on from there
    if action in ("freeze", "unfreeze", "report_lost", "cancel_lost"):
        _card_status(book, member, action, reason, day)
    else:
        _abnormal(book, member, action, reason, day)
    return member


_CARD = {"freeze": ("active", "frozen"), "unfreeze": ("frozen", "active"),
         "report_lost": (None, "lost"), "cancel_lost": ("lost", "active")}


def _card_status(book: Book, member: Member, action: str, reason: str, day: Day) -> None:
    source, target = _CARD[action]
    if action == "cancel_lost" and member.frozen_when_lost:
        target = "frozen"  # kept until unfrozen: a resent cancel then finds the card as it left it
    if member.status == target:
        return
    if source is not None and member.status != source:
        raise CardStateError(f"cannot {action.replace('_', ' ')} member {member.member_id!r}: "
                             f"the card is {member.status}")
    if action == "report_lost":
        member.frozen_when_lost = member.status == "frozen"
    elif action == "unfreeze":
        member.frozen_when_lost = False
    member.status = target
    book.write(member, day, "operator", action, "status", status=target, note=reason)


def _abnormal(book: Book, member: Member, action: str, reason: str, day: Day) -> None:
    held = [h for h in member.held if h.release == 0]
    if member.abnormal or (held and action != "clear_abnormal"):  # a clear of nothing changes nothing
        member.cleared_days = book.programme.anomaly.crossed_days(member)  # written with the entry below
    if member.abnormal:
        member.abnormal = False
        book.write(member, day, "operator", action, "status", status="normal", note=reason)
    if not held or action == "clear_abnormal":
        return
    member.held = [h for h in member.held if h.release != 0]
    if action == "void_held":
        amount = sum(h.amount for h in held)
        member.pending -= amount
        growth = 0
        for h in held:  # each takes at most the growth the member still has (several may be held)
            taken = _voided(book, member, h)
            member.growth -= taken
            growth += taken
        book.write(member, day, "operator", action, "void", pending=-amount, growth=-growth, note=reason)
        tier_after_transaction(book, member, day, action, lowered=True, cause="operator")
        return
    released = lapsed = 0
    today = book.today_for(member)
    for h in held:
        window_end = _window_end(book, member, h)
        if h.expires <= today:  # the run of its expiry has passed (a late purchase held): it lapses, as that run
            lapsed += h.amount  # would have lapsed it, never spendable (an outside probe spent expired points)
            note_lapsed(book, member, h)
        elif window_end > day:  # still returnable: pending as any point, the run of `window_end` releases it
            member.held.append(Held(window_end, h.expires, h.amount, h.txn_id))
            book.awake.add(member.member_id)  # that run must visit it (its next run plans the date)
        else:
            add_points(member, h.amount, h.expires)
            released += h.amount
    member.pending -= released + lapsed
    if released:  # the next run plans their expiry's reminder: past its day, it was never sent (a probe)
        book.awake.add(member.member_id)
        book.write(member, day, "operator", action, "release", points=released, pending=-released, note=reason)
    if lapsed:
        book.write(member, day, "operator", action, "expire", pending=-lapsed, note=reason)


def _voided(book: Book, member: Member, held: Held) -> int:
    """Voided points are taken back as a refund takes them: counted as reversed on their
    transaction's record, so that its refund does not take them a second time (an outside probe
    was left 700 points in debt), out of the points tier metrics, and with the growth they gave
    when growth comes from points (never below 0: the caller takes it from the member before the
    next). Returns that growth. A transaction no longer indexed (long past any window) loses only
    its points."""
    key = (member.member_id, held.txn_id)
    record = book.txns.get(key)
    if record is None or record.points <= 0:
        return 0
    record.reversed_points += held.amount
    growth = 0
    # a recharge's bonus points always gave growth by the points; a purchase's when the programme says so
    if record.kind == RECHARGE or (record.kind == PURCHASE and book.programme.growth_from_points):
        share = record.growth * min(record.reversed_points, record.points) // record.points
        growth = max(0, min(share - record.reversed_growth, max(member.growth, 0)))
        record.reversed_growth += growth
    book.txns[key] = record
    count_earned(book, member, record.day, -held.amount, -growth, counted_since(member, record))
    return growth


def _window_end(book: Book, member: Member, held: Held) -> Day:
    """The date whose run would have released these points had they not been held: released by an
    operator, points still inside the return window stay pending until then (SPEC §3.8: a refund
    inside the window cancels them before they were ever spendable). 0: no window, or the
    transaction is no longer indexed (older than the index keeps, long past any window)."""
    pending_days = book.programme.pending_days
    if not pending_days:
        return 0
    original = book.txns.get((member.member_id, held.txn_id))
    return original.day + pending_days if original is not None else 0


def set_tier(book: Book, member_id: str, tier_name: str, reason: str, day: Day) -> Member:
    """An operator puts a member in a tier by hand; its validity starts today."""
    member = book.members.get(member_id)
    if member is None:
        raise UnknownMemberError(member_id)
    names = book.programme.ladder.names
    if tier_name not in names:
        raise InvalidRequestError(f"tier: expected one of {', '.join(names)}, got {tier_name!r}")
    if not readable(reason):
        raise InvalidRequestError("reason: an operator's tier change needs a reason one can read (not only spaces "
                                  "or invisible characters)")
    target, as_of = names.index(tier_name), book.as_of(member, day)
    if (member.tier, member.given_tier, member.tier_since) == (target, target, as_of):
        # the same call again the same day, as a client's retry is: it would start the since-upgrade
        # sums afresh and drop what was earned in between (an outside probe); a later day renews
        return member
    enter_tier(book, member, target, as_of, "operator", "set_tier", note=reason, given=True)
    # the next run plans the end of its validity: with nothing else due, no run visited the member
    # again, and it kept the tier for good (every member in memory: an outside probe)
    book.awake.add(member.member_id)
    return member
