"""Recharge bonuses (docs/rules.md, "Spending"): which one a recharge gets, and giving it."""

from typing import NamedTuple

from engine.award import give, judge_points
from engine.book import Book
from engine.members import Member
from engine.rules import RechargeBonus
from engine.spending.coupons import issue
from engine.tier_changes import enter_tier
from engine.types import Day, TxnId

__all__ = ["BonusGiven", "choose_bonus", "give_bonus"]


def choose_bonus(book: Book, member: Member, amount: int, day: Day) -> RechargeBonus | None:
    """Of the bonuses that apply (dates, tier, not used up, minimum reached), the one with the
    highest minimum; ties go to the first in the document."""
    programme = book.programme
    tier = programme.ladder.names[member.tier]
    best = None
    for bonus in programme.rules.recharge_bonuses:
        if bonus.min_amount_minor > amount or (best is not None and bonus.min_amount_minor <= best.min_amount_minor):
            continue
        if bonus.tiers and tier not in bonus.tiers:
            continue
        if (bonus.from_ and day < bonus.from_.toordinal()) or (bonus.to and day > bonus.to.toordinal()):
            continue
        if bonus.once_per_member and bonus.name in member.bonuses_used:
            continue
        best = bonus
    return best


class BonusGiven(NamedTuple):
    """What a bonus gave: points and growth (after the anomaly rule), the coupon codes issued
    (comma-joined, in the bonus's order) and the anomaly rule's word for the result."""

    points: int
    growth: int
    codes: str
    reason: str
    lapsed: int = 0
    """Of the points, those that lapsed at once (award.give)."""


def give_bonus(book: Book, member: Member, bonus: RechargeBonus, day: Day, ref: TxnId) -> BonusGiven:
    """Points as an event's (not multiplied; `earns_points` and the anomaly threshold apply),
    coupons in the bonus's order, then `upgrade_to` with that tier's validity from today.
    The bonus balance itself is credited by the recharge."""
    programme = book.programme
    if bonus.once_per_member:
        member.bonuses_used = (*member.bonuses_used, bonus.name)
    earns = programme.ladder.tiers[member.tier].earns_points
    points, held, reason = judge_points(book, member, day, bonus.points if earns else 0, ref)
    growth = programme.growth_for_points(points) if programme.growth_from_points else 0
    if reason == "blocked":
        points = growth = 0
    lapsed = give(book, member, day, ref, "bonus", points, growth, held)
    codes = [issue(book, member, programme.coupons.by_id[c], day, "txn", ref) for c in bonus.coupons]
    if bonus.upgrade_to is not None:
        target = programme.ladder.names.index(bonus.upgrade_to)
        if target > member.tier:
            enter_tier(book, member, target, book.as_of(member, day), "txn", ref, note=f"recharge bonus {bonus.name}",
                       given=True, since=day)
    return BonusGiven(points, growth, ",".join(filter(None, codes)), reason, lapsed)
