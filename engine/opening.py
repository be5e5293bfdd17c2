"""Opening balances: a member brought over from another system with the points (as lots with
their own expiry), stored value, growth, tier and tier validity it had there. One ledger entry,
kind `opening`, records all of it, so every balance still equals the sum of the ledger; from
then on the member earns, spends, expires and changes tier exactly as one that earned here."""

from datetime import date

from msgspec import Struct

from engine.book import Book
from engine.bounds import LIMIT
from engine.calendar import parse_day
from engine.errors import InvalidRequestError, RowRejectedError
from engine.ids import FINE, id_problem, id_requirement
from engine.ledger import LedgerEntry
from engine.members import Lot, Member, Profile
from engine.midnight import schedule
from engine.operators import MAX_ATTRIBUTE_TEXT as MAX_TEXT
from engine.operators import birthday_of
from engine.tagging import watch_new
from engine.tiers import validity_from
from engine.types import NEVER, Day

__all__ = ["IMPORT_CAUSE", "OPENING", "Opening", "OpeningLot", "open_member", "opening_problem"]

OPENING = "opening"
"""The ledger entry's kind."""
IMPORT_CAUSE = "import"
"""The ledger entry's cause; its `ref` is the import's id, the marker that makes a resend harmless."""
_STATUSES = ("active", "frozen", "lost")


class OpeningLot(Struct, array_like=True, frozen=True, gc=False, forbid_unknown_fields=True):
    """`expires`: the ISO date at whose 00:00 the points lapse, `never`, or empty for the
    programme's expiry as if earned on the import day. A lot of more values than these is
    refused, as a row is (an outside probe found the extra dropped)."""

    points: int
    expires: str = ""


class Opening(Struct, kw_only=True, array_like=True, gc=False, forbid_unknown_fields=True):
    """One member's row of an import, as read, not yet checked. Encoded as an array in this
    field order: the compact rows of an ImportRequest (docs/api.md); one with more elements than
    fields is refused, not imported with the rest dropped (an outside probe)."""

    member_id: str
    tier: str = ""
    """A tier name; empty: the default tier of the member's channel."""
    tier_valid_until: str = ""
    """The tier's last valid day (ISO); empty: the tier's own validity counted from the import day."""
    points: list[OpeningLot] = []
    stored_value: int = 0
    bonus_value: int = 0
    growth: int = 0
    status: str = ""
    channel: str = ""
    birthday: str = ""
    source: str = ""
    content: str = ""
    campaign: str = ""


def opening_problem(book: Book, row: Opening) -> RowRejectedError | None:
    """What is wrong with a row on its own (the member's existence aside), or None."""
    try:
        _checked(book, row, book.today)
    except RowRejectedError as problem:
        return problem
    return None


def open_member(book: Book, row: Opening, import_id: str, day: Day) -> Member:
    """Create the member with its opening balances on `day` (the business day), one ledger
    entry for them all. Raises RowRejectedError, changing nothing, for a row that cannot be imported
    (`member_exists` for a member the book already has, before the row's own problems: the caller
    tells an earlier import, and a chunk resent after a midnight run made one of its lots lapse is
    still recognised as imported before, not refused `points_expired`)."""
    if row.member_id in book.members:
        raise RowRejectedError("member_exists", f"member {row.member_id!r} already exists")
    tier, until, lots, birthday = _checked(book, row, day)
    points, moved = 0, []
    for lot in lots:
        points += lot.amount
        moved.append((lot.expires, lot.amount))
    member = Member(row.member_id, enrolled=day, tier=tier, tier_since=day, tier_until=until,
                    given_tier=tier, given_until=until, points=points, lots=lots, growth=row.growth,
                    stored_value=row.stored_value, bonus_value=row.bonus_value, status=row.status or "active",
                    profile=Profile(birthday=birthday, source=row.source, content=row.content,
                                    campaign=row.campaign, channel=row.channel))
    book.members[member.member_id] = member
    watch_new(book, member, day)
    book.write(member, day, IMPORT_CAUSE, import_id, OPENING, points=points, growth=row.growth,
               stored_value=row.stored_value, bonus_value=row.bonus_value, tier_from=-1, tier_to=tier,
               status=member.status if member.status != "active" else "",
               lots=tuple(moved))
    schedule(book, member)  # woken for its first expiry, reminder or the end of its tier
    return member


def opened_as(book: Book, entry: LedgerEntry, row: Opening) -> bool:
    """Whether the member's opening entry is what this row would write: a resent row, or the
    same row twice, and not another row of the member with other balances, tier or status. (Lots'
    expiry dates and a tier's validity left to the programme depend on the day it is sent.)"""
    names = book.programme.ladder.names
    tier = names[entry.tier_to] if 0 <= entry.tier_to < len(names) else ""
    return (entry.points, entry.growth, entry.stored_value, entry.bonus_value, entry.status or "active") == (
        sum(lot.points for lot in row.points), row.growth, row.stored_value, row.bonus_value,
        row.status or "active") and (not row.tier or row.tier == tier)


def _checked(book: Book, row: Opening, day: Day) -> tuple[int, Day, list[Lot], str]:
    """(tier, tier_until, lots in expiry order, birthday) of a valid row; RowRejectedError otherwise."""
    if id_problem(row.member_id) != FINE:
        raise RowRejectedError("bad_member_id", id_requirement("member_id"))
    if not 0 <= min(row.stored_value, row.bonus_value, row.growth) <= max(
            row.stored_value, row.bonus_value, row.growth) <= LIMIT:
        for name in ("stored_value", "bonus_value", "growth"):
            _amount(name, getattr(row, name))
    if row.stored_value + row.bonus_value > LIMIT:  # one balance in two parts (SPEC §11.4), bounded as one
        raise RowRejectedError("amount_too_large", f"stored_value + bonus_value: at most {LIMIT:,} in all, got "
                                                   f"{row.stored_value + row.bonus_value:,}")
    if row.status and row.status not in _STATUSES:
        raise RowRejectedError("bad_status", f"status: expected one of {', '.join(_STATUSES)}, got {row.status!r}")
    for name in ("channel", "source", "content", "campaign"):  # as Enroll takes them (an outside probe)
        if len(text := getattr(row, name)) > MAX_TEXT:
            raise RowRejectedError("text_too_long", f"{name}: expected at most {MAX_TEXT:,} characters, "
                                                    f"got {len(text):,}")
    tier = _tier(book, row)
    return tier, _valid_until(book, row, tier, day), _lots(book, row.points, day), _birthday(row.birthday)


def _birthday(text: str) -> str:
    birthday = _BIRTHDAYS.get(text)
    if birthday is None:
        try:
            birthday = birthday_of(text)
        except InvalidRequestError as error:
            raise RowRejectedError("bad_birthday", str(error)) from None
        if len(_BIRTHDAYS) > 100_000:
            _BIRTHDAYS.clear()
        _BIRTHDAYS[text] = birthday
    return birthday


def _amount(name: str, value: int) -> None:
    if value < 0:
        raise RowRejectedError("negative_amount", f"{name}: expected 0 or more, got {value}")
    if value > LIMIT:
        raise RowRejectedError("amount_too_large", f"{name}: at most {LIMIT:,}, got {value:,}")


def _tier(book: Book, row: Opening) -> int:
    names = book.programme.ladder.names
    if not row.tier:
        return book.programme.default_tier(row.channel)
    if row.tier not in names:
        raise RowRejectedError("unknown_tier", f"tier: expected one of {', '.join(names)}, got {row.tier!r}")
    return names.index(row.tier)


def _valid_until(book: Book, row: Opening, tier: int, day: Day) -> Day:
    """The file's last valid day, or the tier's own validity from `day`; 0 (permanent) for the
    lowest tier and for a permanent tier given no date."""
    rule = book.programme.ladder.tiers[tier]
    if not row.tier_valid_until:
        return validity_from(book.programme.ladder, tier, day)
    if tier == 0:
        raise RowRejectedError("bad_tier_valid_until", f"tier_valid_until: the lowest tier ({rule.name}) never ends")
    until = _day("tier_valid_until", row.tier_valid_until, "bad_tier_valid_until")
    if until < day:
        raise RowRejectedError("bad_tier_valid_until", f"tier_valid_until: {row.tier_valid_until} is before the "
                                                 f"business day {date.fromordinal(day).isoformat()}")
    return until


def _lots(book: Book, given: list[OpeningLot], day: Day) -> list[Lot]:
    """Lots in expiry order, one per expiry date. Points that lapsed by the business day
    (expiring at its 00:00 or before) cannot be imported."""
    amounts: dict[Day, int] = {}
    for lot in given:
        points, text = lot.points, lot.expires
        if not 0 <= points <= LIMIT:
            _amount("points", points)
        expires = _DAYS.get(text)  # an import names the same few dates over and over
        if expires is None:
            expires = _expiry(book, text, day)
        if expires <= day:
            raise RowRejectedError("points_expired", f"points expiring {text or 'by the programme'} have lapsed "
                                                     f"by the business day {date.fromordinal(day).isoformat()}")
        if book.programme.expiry.policy == "annual_reset":  # every balance is cleared on 1 January: they
            expires = min(expires, book.programme.expiry.expires(day))  # outlived it (an outside probe)
        amounts[expires] = amounts.get(expires, 0) + points
    if len(given) > 1 and sum(amounts.values()) > LIMIT:
        raise RowRejectedError("amount_too_large", f"points: at most {LIMIT:,} in all")
    return [Lot(expires, amount) for expires, amount in sorted(amounts.items()) if amount]


def _expiry(book: Book, text: str, day: Day) -> Day:
    if not text:
        return book.programme.expiry.expires(day)
    if text == "never":
        return NEVER
    return _day("points expires", text, "bad_expiry")


def _day(name: str, text: str, reason: str) -> Day:
    found = _DAYS.get(text)
    if found is None:
        found = _parse(text)
        if not found:
            raise RowRejectedError(reason, f"{name}: expected a date as YYYY-MM-DD in the years 2000-2100, "
                                           f"got {text!r}")
        if len(_DAYS) > 100_000:
            _DAYS.clear()
        _DAYS[text] = found
    return found


_BIRTHDAYS: dict[str, str] = {}
"""Birthdays already read, as given and as kept (MM-DD): at most a few hundred spellings."""
_DAYS: dict[str, Day] = {}
"""Dates already read: an import's rows name the same few expiry and validity dates over and over."""


def _parse(text: str) -> Day:
    """The day, or 0 when `text` is not an ISO date in the years 2000-2100."""
    try:
        found = parse_day(text)
    except ValueError:
        return 0
    return found if 2000 <= date.fromordinal(found).year <= 2100 else 0
