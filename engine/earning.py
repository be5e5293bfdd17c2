# cython: overflowcheck=True
# (compiled, the sums of a purchase's amounts are C integers, earning.pxd: one past 64 bits raises
# OverflowError instead of wrapping; the callers' bounds keep them within 10^15.)
"""What a purchase's lines earn: eligible lines, product rules, the spend rule, multipliers, per-order points."""

from engine.bounds import LIMIT, room_to_earn
from engine.members import Member
from engine.programme import Programme
from engine.rounding import rounded
from engine.transactions import Transaction
from engine.types import Day
from engine.why import Why

__all__ = ["PurchaseValue", "purchase_fits", "purchase_growth", "value_purchase"]


class PurchaseValue:
    """What a purchase's lines earn. A plain class, not a named tuple: compiled, an extension type
    whose fields are read as C struct members (earning.pxd); a named tuple's fields are read
    through the attribute protocol, about ten times a purchase. Built by `_valued`, not by
    calling the class: compiled, a call parses its arguments from a tuple (about 150
    instructions a purchase).

    - `points`: after multipliers and per-order points, before the anomaly rule.
    - `base`: before them: the spend rule's and the product rules' points, which `why` keeps each
      of and scoring bounds too (a multiplier below 1 brings points within bounds from a base
      that is not).
    - `growth_from_spend`: 0 when the programme's growth comes from points: nothing reads it then.
    - `eligible`, `paid`: the spend that earns, and all of it (minor units).
    - `carry`: the spend carried to the member's next purchase.
    - `why`: what made the points, for the purchase's ledger entry."""

    __slots__ = ("base", "carry", "eligible", "growth_from_spend", "paid", "points", "why")

    def __init__(self, *args: object) -> None:
        # Compiled, an extension type without an __init__ would take any arguments and leave every
        # field None; pure, object's would refuse them. Both refuse, the same way.
        raise TypeError("PurchaseValue is made by engine.earning._valued, not called")


def _valued(points: int, growth_from_spend: int, eligible: int, paid: int, carry: int, why: Why,
            base: int) -> PurchaseValue:
    value = PurchaseValue.__new__(PurchaseValue)  # compiled, the type's allocation called directly
    value.points = points
    value.base = base
    value.growth_from_spend = growth_from_spend
    value.eligible = eligible
    value.paid = paid
    value.carry = carry
    value.why = why
    return value


def purchase_fits(member: Member, day: Day, value: PurchaseValue, growth: int) -> bool:
    """Whether a purchase's points, growth and eligible spend stay within bounds (SPEC §2), and its
    points before multipliers (`base`, which its why keeps) too: asked by scoring and the quote alike."""
    return value.base <= LIMIT and room_to_earn(member, day, value.points, growth, value.eligible)


def purchase_growth(programme: Programme, value: PurchaseValue, points: int) -> int:
    """Growth from the points awarded, or from the purchase's own eligible spend."""
    return programme.growth_for_points(points) if programme.growth_from_points else value.growth_from_spend


def value_purchase(programme: Programme, member: Member, txn: Transaction, day: Day,
                   per_order: bool = True, explain: bool = True) -> PurchaseValue:
    """Steps 1-5 of how a purchase earns (docs/rules.md) for one paid purchase. A purchase sent
    without lines is one order-level amount that only the spend rule sees. Without `explain`
    (a book that keeps no ledger entries: a replay without --ledger-out) its `why` is None: it
    would be made only to be dropped, a Struct and the claims' dict a purchase."""
    claimed = paid = 0
    claims: dict[int, int] | None = None
    if txn.lines:
        rules = programme.lines
        line_filter, products, named = rules.filter, rules.products, rules.named
        asks, claiming = line_filter.asks, bool(products.claims)  # False: nothing to ask
        shortcut, flagged = rules.shortcut, line_filter.flagged
        # Most lines earn and no product rule claims them, so each line adds only to `paid`: the
        # eligible and unclaimed spend are what the few refused and claimed lines leave of it.
        refused = claimed_paid = 0
        for line in txn.lines:  # the hottest loop in patron
            amount = line.paid_minor
            paid += amount
            if shortcut and not named.matches(line):  # no list names it (most lines): only the flags ask
                if flagged and not line_filter.flags_pass(line):
                    refused += amount
                continue
            if asks and not line_filter.test(line):
                refused += amount
                continue
            claim = products.find(line) if claiming else None
            if claim is not None:
                claimed_paid += amount
                got = claim.points_for(line, programme.halves_up)
                claimed += got
                if explain:
                    if claims is None:
                        claims = {}
                    claims[claim.position] = claims.get(claim.position, 0) + got
        eligible = paid - refused
        unclaimed = eligible - claimed_paid
    else:
        paid = eligible = unclaimed = txn.amount_minor
    carried = member.carry_minor if per_order else 0
    spend, carry = programme.spend_points(unclaimed, carried)
    tier = programme.ladder.tiers[member.tier]
    points = base = 0
    why = None
    if tier.earns_points:
        profile = member.profile  # compiled, typed (earning.pxd): its birthday read as a C field
        numerator, denominator, applied = programme.multipliers.factor(day, tier.name, profile.birthday)
        base = claimed + spend
        points = base if denominator == 1 == numerator else rounded(base * numerator, denominator, programme.halves_up)
        if per_order:
            points += programme.per_order
        # the spend rule is named when it saw spend, or when nothing else could have made points
        if explain:
            why = Why(spend if unclaimed or claims is None else -1, applied, claims, carried)
    elif explain:
        why = Why(tier=member.tier)
    # growth from spend is read only by a programme whose growth comes from spend (purchase_growth)
    growth_from_spend = 0 if programme.growth_from_points else programme.growth_for_spend(eligible)
    return _valued(points, growth_from_spend, eligible, paid, carry, why, base)
