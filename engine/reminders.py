"""Reminders the midnight run sends ([notify]): what expires within `expiring_days`, once, on the
run that many days ahead (or the first run after it appeared, when it appeared later), and
birthdays `birthday_days_before` days ahead. Members are woken for them on the right date, so
a quiet night visits only the members it has something for."""

from datetime import date
from functools import lru_cache

from engine.book import Book
from engine.calendar import iso
from engine.members import POINTS_REMINDER as _POINTS
from engine.members import Member
from engine.notices import BIRTHDAY, COUPON_EXPIRING, POINTS_EXPIRING
from engine.types import NEVER, Day

__all__ = ["birthday_reminder_day", "next_reminder", "remind"]


_COUPON = "coupon "
_BIRTHDAY = "birthday "


def _points_key(expires: Day) -> str:
    """members.points_reminder_key, as a C function: every midnight visit asks."""
    return f"{_POINTS}{expires}"


def _coupon_key(code: str) -> str:
    return f"{_COUPON}{code}"


def _birthday_key(birthday: Day) -> str:
    return f"{_BIRTHDAY}{birthday}"


def _live(member: Member, key: str, run: Day) -> bool:
    """Whether what `key` names has not lapsed by the run for `run`, held or not: points redeemed
    after their reminder, or a coupon used, may come back by a refund with the same expiry, and
    were announced a second time once the key was forgotten with them (an outside probe). Points
    earned into that date afterwards, once none of it is held, are announced: `add_points` drops
    the key (a reviewer: under annual_reset a year's points share one date)."""
    if key.startswith(_POINTS):
        return run < int(key[len(_POINTS):]) < NEVER
    if key.startswith(_BIRTHDAY):  # kept to its day: a notice made shorter by a publish once sent
        return run <= int(key[len(_BIRTHDAY):])  # came again on its new day (a review)
    code = key[len(_COUPON):]
    for c in member.coupons:  # a member's codes are unique (`<coupon id>-<member id>-<n>`, n counting up)
        if c.code == code:
            return c.valid_to + 1 > run
    return False


def remind(book: Book, member: Member, run: Day) -> None:
    """The reminders of the run for `run`, as notices; part of the member's midnight run: lots
    of points, then unused coupons (which expire at 00:00 after their last valid day), that
    expire after `run` and at most `expiring_days` later, each once; `Member.reminded` keeps
    the key of each until it lapses."""
    notify = book.programme.rules.notify
    ahead = notify.expiring_days
    sent = member.reminded  # a tuple of a few keys: as quick to search as a set to make
    if ahead:
        until = run + ahead
        for lot in member.lots:
            expires = lot.expires
            if expires > until:  # lots are kept in expiry order: none after this one is due
                break
            if run < expires:
                key = _points_key(expires)
                if key not in sent:
                    book.notify_detail(POINTS_EXPIRING, member.member_id, run, {
                        "points": lot.amount, "expires": iso(expires), "last_day": iso(expires - 1)})
                    member.reminded += (key,)
        for c in member.coupons:
            if c.status == "unused" and run < c.valid_to + 1 <= until:
                key = _coupon_key(c.code)
                if key not in sent:
                    book.notify_detail(COUPON_EXPIRING, member.member_id, run, {
                        "code": c.code, "coupon_id": c.coupon_id, "expires": iso(c.valid_to + 1),
                        "last_day": iso(c.valid_to)})
                    member.reminded += (key,)
    if sent:  # forget what has lapsed (what was sent just now lapses later)
        kept = [key for key in sent if _live(member, key, run)]
        if len(kept) != len(sent):
            member.reminded = (*kept, *member.reminded[len(sent):])
    before = notify.birthday_days_before
    if before and member.profile.birthday and birthday_reminder_day(member.profile.birthday, run - 1, before) == run:
        key = _birthday_key(run + before)
        if key not in member.reminded:
            book.notify(BIRTHDAY, member.member_id, run, birthday=iso(run + before), days_before=before)
            member.reminded += (key,)


def next_reminder(book: Book, member: Member, after: Day) -> Day:
    """The first run date after `after` that has a reminder for this member, or 0."""
    notify = book.programme.rules.notify
    first = 0  # every candidate is after `after`, so 0 is none
    ahead = notify.expiring_days
    if ahead:
        sent = member.reminded
        soonest = after + 1
        for lot in member.lots:  # in expiry order: the first not yet announced is the soonest
            expires = lot.expires
            if expires >= NEVER:
                break
            if expires > soonest and (not sent or _points_key(expires) not in sent):
                first = expires - ahead if expires - ahead > soonest else soonest
                break
        for c in member.coupons:
            expires = c.valid_to + 1
            if c.status == "unused" and expires > soonest:
                day = expires - ahead if expires - ahead > soonest else soonest
                if (not first or day < first) and (not sent or _coupon_key(c.code) not in sent):
                    first = day
    before = notify.birthday_days_before
    if before and member.profile.birthday:
        day = birthday_reminder_day(member.profile.birthday, after, before)
        if member.reminded and _birthday_key(day + before) in member.reminded:  # sent on a longer notice
            day = birthday_reminder_day(member.profile.birthday, day, before)
        if not first or day < first:
            first = day
    return first


@lru_cache(maxsize=4096)  # every scheduling asks, for a few hundred birthdays and the same day
def birthday_reminder_day(birthday: str, after: Day, days_before: int) -> Day:
    """The first date after `after` that is `days_before` days before a birthday (MM-DD;
    29 February is kept on 28 February in other years, as multipliers celebrate it)."""
    month, dom = int(birthday[:2]), int(birthday[3:])
    year = date.fromordinal(after + 1 + days_before).year
    for candidate in (year, year + 1):
        day = _birthday_in(candidate, month, dom) - days_before
        if day > after:
            return day
    raise ValueError(f"no birthday {birthday!r} after day {after}")  # never: a year later always is


def _birthday_in(year: int, month: int, dom: int) -> Day:
    if (month, dom) == (2, 29) and not (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)):
        dom = 28
    return date(year, month, dom).toordinal()
