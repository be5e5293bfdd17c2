"""A quote at the till (docs/rules.md, "Tier benefits and quotes"): for a member and a basket, the member
prices after the tier discount, what the purchase would earn now, the largest points-as-cash
deduction, the coupons usable on it with their value, and the stored-value balance.

A quote changes nothing: it asks the same questions scoring asks (engine.earning, the anomaly
rule's foresight, engine.spending.redemption, engine.spending.coupons) and keeps the answers.
The purchase sent as quoted (`lines` as they are here, at the quote's time) earns exactly the
quoted points, and the spending sent after it does what the quote says, as long as nothing else
reached the member in between."""

import msgspec
from msgspec import Struct

from engine.award import verdict_points
from engine.book import Book
from engine.bounds import LIMIT, valid_time
from engine.calendar import iso
from engine.earning import purchase_fits, purchase_growth, value_purchase
from engine.errors import InvalidRequestError, UnknownMemberError
from engine.ids import FINE, id_problem, id_requirement
from engine.members import Member
from engine.midnight import night_of, run_member_midnight
from engine.scoring import date_problem, score_purchase
from engine.spending.coupon_stock import CountedStock
from engine.spending.coupons import coupon_value, use_problem
from engine.spending.member_coupons import HeldCoupon, held_coupon
from engine.spending.member_prices import PricedLine
from engine.spending.operations import card_problem
from engine.spending.redemption import available_points, redeemable
from engine.transactions import LineItem, Transaction
from engine.types import COUPON_USE, PURCHASE, REDEEM, Day

__all__ = ["Quote", "QuotedCoupon", "quote"]


class QuotedCoupon(Struct):
    """`value_minor` is what a coupon_use of it would take off this basket; `reason` why it
    cannot be used on it now (the coupon_use's rejection reason), empty when it can."""

    coupon: HeldCoupon
    value_minor: int = 0
    reason: str = ""


class Quote(Struct):
    """Money in minor units. `points_reason` is what the purchase's result would say (held,
    flagged, blocked, frozen, lost); `cash_reason` why no deduction is possible (a redeem's
    rejection reason). `coupons` are usable now, `unusable_coupons` the member's other unused ones."""

    member_id: str
    tier: str
    day: str
    lines: list[PricedLine]
    total_minor: int
    member_total_minor: int
    points: int
    growth: int
    points_reason: str
    cash_points: int
    cash_value_minor: int
    cash_reason: str
    coupons: list[QuotedCoupon]
    unusable_coupons: list[QuotedCoupon]
    available_points: int
    stored_value: int
    bonus_value: int


def quote(book: Book, member_id: str, lines: list[LineItem], at_ms: int) -> Quote:
    """The quote for a basket bought at `at_ms`. A request no purchase could satisfy raises
    InvalidRequestError naming the field; an unknown member raises UnknownMemberError."""
    _check_request(member_id, lines, at_ms)
    day = _day(book, at_ms, member_id)
    member = book.members.get(member_id)
    if member is None:
        raise UnknownMemberError(member_id)
    if book.today and day > book.today_for(member):
        book, member = _through_midnight(book, member, day)
    programme = book.programme
    priced = programme.discounts.price(member.tier, lines, programme.round)
    sent = [p.line for p in priced]
    total, member_total = sum(p.price_minor for p in priced), sum(line.paid_minor for line in sent)
    purchase = Transaction("quote", member_id, at_ms, PURCHASE, lines=sent)
    points, growth, points_reason = _earning(book, member, purchase, day)
    paid, buyer = _after_purchase(book, member, purchase, day)
    cash_points, cash_value, cash_reason = _cash(paid, buyer, member_total, at_ms, day)
    usable, unusable = _coupons(paid, buyer, Transaction("quote", member_id, at_ms, COUPON_USE, lines=sent,
                                                         amount_minor=member_total), day)
    return Quote(member_id, programme.ladder.names[member.tier], iso(day), priced, total, member_total, points,
                 growth, points_reason, cash_points, cash_value, cash_reason, usable, unusable,
                 available_points(member), member.stored_value, member.bonus_value)


def _check_request(member_id: str, lines: list[LineItem], at_ms: int) -> None:
    """What makes a basket one no till could send: checked as a purchase's lines are (SPEC §2),
    every figure exactly an `int` first (bounds.input_problem says why)."""
    if id_problem(member_id) != FINE:
        raise InvalidRequestError(id_requirement("member_id"))
    if not lines:
        raise InvalidRequestError("lines: a quote needs a basket of at least one line")
    if type(at_ms) is not int:
        raise InvalidRequestError(f"occurred_at_ms: expected an integer, got {type(at_ms).__name__} {at_ms!r}")
    total = 0
    for index, line in enumerate(lines):
        for name in ("paid_minor", "quantity"):
            value = getattr(line, name)
            if type(value) is not int:
                raise InvalidRequestError(f"lines[{index}].{name}: expected an integer, "
                                          f"got {type(value).__name__} {value!r}")
            if not 0 <= value <= LIMIT:
                raise InvalidRequestError(f"lines[{index}].{name}: expected 0 to 10^15, got {value}")
        total += line.paid_minor
    if total > LIMIT:
        raise InvalidRequestError(f"lines: the basket's total {total} is above 10^15 minor units")


def _through_midnight(book: Book, member: Member, day: Day) -> tuple[Book, Member]:
    """A copy of the member brought through the midnight that starts `day`, in a book of its own:
    a purchase dated after it meets it first (a shard brings the member through it, as replay
    does), so its points that lapse then are gone and its tier may have ended."""
    copy = _copy_member(member)
    apart = Book(book.programme, {member.member_id: copy}, today=book.today)
    run_member_midnight(apart, copy, night_of(apart, day))
    return apart, copy


def _after_purchase(book: Book, member: Member, purchase: Transaction, day: Day) -> tuple[Book, Member]:
    """A copy of the member once the purchase is scored, in a book of its own. The till sends the
    purchase first, then its spending, which meet the member as the purchase left it (two outside
    probes: with no `pending_days` the purchase's own points were spent too, and a purchase crossing
    the anomaly threshold under `block_earn_and_redeem` had the quoted redeem rejected)."""
    if member.status != "active":
        return book, member  # the purchase changes nothing; the spending is refused for the card
    copy = _copy_member(member)
    # no unit of a coupon with an inventory: the quote cannot know the purchase would get one (a
    # reviewer: an upgrade coupon used up elsewhere was quoted usable); unlimited ones are issued
    apart = Book(book.programme, {member.member_id: copy}, today=book.today, stock=CountedStock(granted={}),
                 keep_outputs=False)
    score_purchase(apart, copy, purchase, day)
    return apart, copy


def _copy_member(member: Member) -> Member:
    return msgspec.msgpack.decode(msgspec.msgpack.encode(member), type=Member)


def _day(book: Book, at_ms: int, member_id: str = "") -> Day:
    """The local day of the purchase; a time the purchase would be rejected for is refused."""
    if not valid_time(at_ms):
        raise InvalidRequestError(f"occurred_at_ms: expected a time in the years 2000-2100, got {at_ms}")
    programme = book.programme
    day = programme.calendar.day_of(at_ms)
    reason = date_problem(book, day, member_id)
    if reason == "too_late":
        raise InvalidRequestError(f"occurred_at_ms: {iso(day)} is more than {programme.max_lateness} days before "
                                  f"the business day {iso(book.today)}; a purchase then would be rejected too_late")
    if reason == "in_future":
        raise InvalidRequestError(f"occurred_at_ms: {iso(day)} is after the business day {iso(book.today)} and the "
                                  f"next; a purchase then would be rejected in_future")
    return day


def _earning(book: Book, member: Member, purchase: Transaction, day: Day) -> tuple[int, int, str]:
    """(points, growth, reason) of the purchase's result, as engine.scoring.score_purchase
    would give them, without counting them anywhere."""
    programme = book.programme
    if member.status != "active":
        return 0, 0, member.status
    value = value_purchase(programme, member, purchase, day)
    if not purchase_fits(member, day, value, purchase_growth(programme, value, value.points)):
        return 0, 0, "amount_too_large"
    points, reason = value.points, ""
    if points > 0:
        points, _, reason = verdict_points(programme.anomaly.foresee(member, day, points), points)
    return points, purchase_growth(programme, value, points), reason


def _cash(book: Book, member: Member, order_minor: int, at_ms: int, day: Day) -> tuple[int, int, str]:
    """(points, value, reason) of a redeem offering every available point against the order
    at member prices: the checks and settlement a redeem would get."""
    reason = card_problem(member)
    if reason:
        return 0, 0, reason
    # an order of 0 (free lines only) still goes through the checks in order; nothing settles against it
    offer = Transaction("quote", member.member_id, at_ms, REDEEM, amount_minor=max(order_minor, 1))
    spent = redeemable(book, member, offer, day)
    if isinstance(spent, str):
        return 0, 0, spent
    return (*spent, "") if order_minor else (0, 0, "insufficient_points")


def _coupons(book: Book, member: Member, use: Transaction, day: Day) -> tuple[list[QuotedCoupon], list[QuotedCoupon]]:
    """The member's coupons a coupon_use on this basket would accept, with their value, and its
    other unused ones with the reason it would give. An instance midnight marked expired is
    still usable by a use dated within its validity, as coupon_use allows."""
    programme = book.programme
    card = card_problem(member)
    usable, unusable = [], []
    for instance in sorted(member.coupons, key=lambda c: c.code):
        if instance.status not in ("unused", "expired"):
            continue
        coupon = programme.coupons.by_id.get(instance.coupon_id)
        reason, value = card or use_problem(instance, coupon, day), 0
        if not reason:
            got = coupon_value(book, coupon, use)
            reason, value = (got, 0) if isinstance(got, str) else ("", got)
        if reason and instance.status != "unused":
            continue
        (unusable if reason else usable).append(QuotedCoupon(held_coupon(programme, instance), value, reason))
    return usable, unusable
