"""Reminders the midnight run sends ([notify]): what expires within `expiring_days`, once, on the
run that many days ahead (or the first run after it appeared, when it appeared later), and
birthdays `birthday_days_before` days ahead. Members are woken for them on the right date, so
a quiet night visits only the members it has something for."""

from datetime import date
from functools import lru_cache
from typing import NamedTuple

from engine.book import Book
from engine.calendar import iso
from engine.members import Member
from engine.notices import BIRTHDAY, COUPON_EXPIRING, POINTS_EXPIRING
from engine.types import NEVER, Day

__all__ = ["Expiring", "birthday_reminder_day", "expiring", "next_reminder", "remind"]


class Expiring(NamedTuple):
    """Something of a member's that lapses at 00:00 of `expires`; `key` is what the member
    remembers once reminded (`Member.reminded`), so each is announced once."""

    kind: str
    key: str
    expires: Day
    detail: dict


def expiring(member: Member, after: Day = 0, until: Day = NEVER - 1) -> list[Expiring]:
    """What of the member's will expire after `after` and by `until`: lots of points, and unused
    coupons (which expire at 00:00 after their last valid day)."""
    items = []
    for lot in member.lots:
        if lot.expires > until:  # lots are kept in expiry order: none after this one is due
            break
        if after < lot.expires:
            items.append(Expiring(POINTS_EXPIRING, _points_key(lot.expires), lot.expires, {"points": lot.amount}))
    for c in member.coupons:
        if c.status == "unused" and after < c.valid_to + 1 <= until:
            items.append(Expiring(COUPON_EXPIRING, _coupon_key(c.code), c.valid_to + 1,
                                  {"code": c.code, "coupon_id": c.coupon_id}))
    return items


_POINTS = "points "
_COUPON = "coupon "


def _points_key(expires: Day) -> str:
    return f"{_POINTS}{expires}"


def _coupon_key(code: str) -> str:
    return f"{_COUPON}{code}"


def _live(member: Member, key: str, run: Day) -> bool:
    """Whether what `key` names is still held after the run for `run` (a member remembers a key
    or two: looked for directly rather than by making the key of everything it holds)."""
    if key.startswith(_POINTS):
        expires = int(key[len(_POINTS):])
        return run < expires < NEVER and any(lot.expires == expires for lot in member.lots)
    code = key[len(_COUPON):]
    return any(c.code == code and c.status == "unused" and c.valid_to + 1 > run for c in member.coupons)


def _unreminded(member: Member) -> list[Day]:
    """When each thing of `expiring` not yet announced expires: the dates alone, as every
    scheduling asks (a new member's welcome coupon among them), without making the notices'
    details."""
    sent = member.reminded
    dates = []
    for lot in member.lots:
        if lot.expires < NEVER and (not sent or _points_key(lot.expires) not in sent):
            dates.append(lot.expires)
    for c in member.coupons:
        if c.status == "unused" and (not sent or _coupon_key(c.code) not in sent):
            dates.append(c.valid_to + 1)
    return dates


def remind(book: Book, member: Member, run: Day) -> None:
    """The reminders of the run for `run`, as notices; part of the member's midnight run."""
    notify = book.programme.rules.notify
    if notify.expiring_days:
        sent = member.reminded  # a tuple of a few keys: as quick to search as a set to make
        for item in expiring(member, run, run + notify.expiring_days):
            if item.key not in sent:
                book.notify(item.kind, member.member_id, run, **item.detail, expires=iso(item.expires),
                            last_day=iso(item.expires - 1))
                member.reminded += (item.key,)
    if member.reminded:  # forget what has lapsed or gone
        member.reminded = tuple(key for key in member.reminded if _live(member, key, run))
    before = notify.birthday_days_before
    if before and member.profile.birthday and birthday_reminder_day(member.profile.birthday, run - 1, before) == run:
        book.notify(BIRTHDAY, member.member_id, run, birthday=iso(run + before), days_before=before)


def next_reminder(book: Book, member: Member, after: Day) -> Day:
    """The first run date after `after` that has a reminder for this member, or 0."""
    notify = book.programme.rules.notify
    first = 0  # every candidate is after `after`, so 0 is none
    if notify.expiring_days:
        for expires in _unreminded(member):
            if expires > after + 1:
                day = max(expires - notify.expiring_days, after + 1)
                if not first or day < first:
                    first = day
    before = notify.birthday_days_before
    if before and member.profile.birthday:
        day = birthday_reminder_day(member.profile.birthday, after, before)
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
