"""Properties that hold for every stream: the ledger explains every balance, refunds and
resubmissions are exact, and members do not affect each other."""

import contextlib
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.book import Book
from engine.programme import Programme
from engine.scoring import score_transaction
from engine.transactions import LineItem, Transaction
from engine.validation import load_rules
from tests.builders import ms, score

EXAMPLE = (Path(__file__).parents[2] / "examples" / "rules.toml").read_text()


def changed(text: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    return text


VARIANTS = {
    "example": EXAMPLE,
    "no negative balance, pending, hold": changed(
        EXAMPLE, ("allow_negative_points = true", "allow_negative_points = false"),
        ("pending_days = 0", "pending_days = 2"), ('action = "flag"', 'action = "hold"'),
        ("daily_points_threshold = 5000", "daily_points_threshold = 300")),
    "carry, multiply, realtime, block": changed(
        EXAMPLE, ('rounding = "floor"', 'rounding = "carry"'),
        ('multiplier_stacking = "max"', 'multiplier_stacking = "multiply"'),
        ('on_change = "upgrade_only"', 'on_change = "realtime"'), ('action = "flag"', 'action = "block_earn"'),
        ("daily_points_threshold = 5000", "daily_points_threshold = 300")),
}
START = ms("2026-11-10 08:00")



def line_items(paid=st.integers(0, 300_000)):  # noqa: B008 - a strategy, built once
    return st.builds(
        LineItem,
        sku=st.sampled_from(["S1", "S2", "TEA-PROMO", "GIFT-CARD-100", ""]),
        product_id=st.sampled_from(["P-1", "P-COFFEE"]),
        category=st.sampled_from(["grocery", "wine", "infant_formula"]),
        name=st.sampled_from(["apples", "bottle deposit"]),
        paid_minor=paid,
        quantity=st.integers(0, 3),
        promotional=st.booleans(),
        member_discounted=st.booleans(),
    )


lines = line_items()


HOURS = st.integers(0, 8 * 3_600_000)


@st.composite
def streams(draw, members=("a", "b", "c"), gaps=HOURS, purchases: int = 4,
            basket=lines) -> list[Transaction]:
    """Transactions in time order with unique ids; refunds name earlier purchases (or none).
    `gaps` between them; `purchases` of every `purchases + 8` are purchases, their lines from `basket`."""
    txns: list[Transaction] = []
    at = START
    for n in range(draw(st.integers(1, 40))):
        at += draw(gaps)
        member = draw(st.sampled_from(members))
        kind = draw(st.sampled_from(["purchase"] * purchases + ["refund", "event", "recharge", "adjustment", "redeem",
                                                                 "payment", "coupon_issue", "coupon_use"]))
        txns.append(_make(draw, f"t{n}", member, at, kind, txns, basket))
    return txns


def _make(draw, txn_id: str, member: str, at: int, kind: str, earlier: list[Transaction],
          basket=lines) -> Transaction:
    if kind == "purchase":
        status = draw(st.sampled_from(["", "", "", "pending"]))
        return Transaction(txn_id, member, at, kind, status=status,
                           lines=draw(st.lists(basket, min_size=1, max_size=4)))
    if kind == "refund":
        mine = [t.txn_id for t in earlier if t.member_id == member and t.kind != "refund"] or ["unknown"]
        return Transaction(txn_id, member, at, kind, refund_of=draw(st.sampled_from(mine)),
                           amount_minor=draw(st.integers(0, 300_000)))
    if kind in SPENDING:
        return _spend(draw, txn_id, member, at, kind)
    if kind == "event":
        return Transaction(txn_id, member, at, kind, event_type=draw(st.sampled_from(["sign_in", "review"])))
    if kind == "recharge":
        return Transaction(txn_id, member, at, kind, amount_minor=draw(st.integers(1, 100_000)))
    return Transaction(txn_id, member, at, kind, amount_minor=draw(st.integers(-500, 500).filter(bool)), note="fix")


SPENDING = ("redeem", "payment", "coupon_issue", "coupon_use")
COUPONS = ("WELCOME10", "RECHARGE20", "GOLD-WINE", "BIRTHDAY-CAKE")


def _spend(draw, txn_id: str, member: str, at: int, kind: str) -> Transaction:
    amount = draw(st.integers(0, 60_000))
    if kind == "redeem":
        return Transaction(txn_id, member, at, kind, points=draw(st.integers(0, 3_000)) or 1, amount_minor=amount)
    if kind == "payment":
        return Transaction(txn_id, member, at, kind, amount_minor=amount or 1)
    coupon = draw(st.sampled_from(COUPONS))
    if kind == "coupon_issue":
        return Transaction(txn_id, member, at, kind, coupon_id=coupon)
    code = f"{coupon}-{member}-{draw(st.integers(1, 2))}"
    return Transaction(txn_id, member, at, kind, coupon_code=code, amount_minor=amount,
                       lines=draw(st.lists(lines, max_size=2)))


def fresh(variant: str) -> Book:
    return Book(Programme(load_rules(VARIANTS[variant])))


def state(target: Book) -> dict:
    return {m.member_id: m for m in target.members.values()}


@pytest.mark.parametrize("variant", VARIANTS)
@settings(max_examples=60, deadline=None)
@given(txns=streams())
def test_every_balance_equals_the_sum_of_the_ledger(variant, txns):
    target = fresh(variant)
    score(target, *txns)
    assert_the_ledger_explains_every_balance(target)


OPERATOR_ACTIONS = ("void_held", "release_held", "clear_abnormal", "freeze", "unfreeze", "report_lost", "cancel_lost")


@pytest.mark.parametrize("variant", VARIANTS)
@settings(max_examples=60, deadline=None)
@given(txns=streams(), actions=st.lists(st.tuples(st.integers(0, 39), st.sampled_from(OPERATOR_ACTIONS)), max_size=8))
def test_operators_between_transactions_keep_every_balance_equal_to_the_ledger(variant, txns, actions):
    """An operator's actions on a member (voids and releases of held points, card status) between
    its transactions: a review found a void that took growth below 0 and a refund after a void that
    took the same points twice."""
    from engine.errors import InvalidRequestError
    from engine.operators import set_status

    target = fresh(variant)
    after: dict[int, list[str]] = defaultdict(list)
    for index, action in actions:
        after[index].append(action)
    for n, txn in enumerate(txns):
        score(target, txn)
        for action in after[n] if txn.member_id in target.members else ():
            with contextlib.suppress(InvalidRequestError):  # what the card's state refuses (unfreeze an active card)
                set_status(target, txn.member_id, action, "checked", target.today)
    assert_the_ledger_explains_every_balance(target)


def assert_the_ledger_explains_every_balance(target: Book) -> None:
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    fields = ("points", "pending", "growth", "stored_value", "bonus_value")
    for entry in target.ledger:
        for field in fields:
            sums[entry.member_id][field] += getattr(entry, field)
    for member in target.members.values():
        assert {f: getattr(member, f) for f in fields} == {f: sums[member.member_id][f] for f in fields}
        assert member.stored_value >= 0
        assert member.bonus_value >= 0
        assert member.points == sum(lot.amount for lot in member.lots) - member.debt
        assert member.pending == sum(held.amount for held in member.held)
        assert member.debt >= 0
        assert member.growth >= 0
        assert all(lot.amount > 0 for lot in member.lots)


@pytest.mark.parametrize("variant", VARIANTS)
@settings(max_examples=60, deadline=None)
@given(txns=streams(members=("a",)), basket=st.lists(lines, min_size=1, max_size=4),
       parts=st.lists(st.integers(1, 10), min_size=1, max_size=4))
def test_refunds_in_any_parts_reverse_exactly_what_the_purchase_earned(variant, txns, basket, parts):
    target = fresh(variant)
    score(target, *txns)
    at = max(t.occurred_at_ms for t in txns) + 60_000
    before = target.members.get("a")
    points, growth, pending = (before.points, before.growth, before.pending) if before else (0, 0, 0)
    total = sum(line.paid_minor for line in basket)
    bought = score(target, Transaction("p", "a", at, "purchase", lines=basket))[0]
    if total == 0:
        return  # nothing was paid, so nothing can be refunded (a free line may still earn fixed points)
    amounts = [max(total * part // sum(parts), 1) for part in parts] + [total]  # the last takes the rest
    refunds = [Transaction(f"r{n}", "a", at + n + 1, "refund", refund_of="p", amount_minor=amount)
               for n, amount in enumerate(amounts)]
    returned = [r for r in score(target, *refunds) if r.outcome == "accepted"]
    after = target.members["a"]
    assert sum(r.points for r in returned) == -bought.points
    assert sum(r.growth for r in returned) == -bought.growth
    assert (after.points + after.pending, after.growth) == (points + pending, growth)


@pytest.mark.parametrize("variant", VARIANTS)
@settings(max_examples=60, deadline=None)
@given(txns=streams(), data=st.data())
def test_resubmitting_transactions_changes_nothing(variant, txns, data):
    once = fresh(variant)
    first = score(once, *txns)
    repeats = data.draw(st.lists(st.sampled_from(range(len(txns))), max_size=10))
    stream = list(txns)
    for index in sorted(repeats, reverse=True):
        stream.insert(index + 1, txns[index])  # resent right after the original
    twice = fresh(variant)
    results = score(twice, *stream)
    assert state(twice) == state(once)
    by_id = {r.txn_id: r for r in first}
    for result in results:
        original = by_id[result.txn_id]
        if result.outcome == "duplicate":
            assert (result.points, result.growth) == (original.points, original.growth)


@pytest.mark.parametrize("variant", VARIANTS)
@settings(max_examples=60, deadline=None)
@given(txns=streams(), data=st.data())
def test_the_order_of_unrelated_members_does_not_matter(variant, txns, data):
    by_member: dict[str, list[Transaction]] = defaultdict(list)
    for txn in txns:
        by_member[txn.member_id].append(txn)
    order = data.draw(st.permutations(list(by_member)))
    regrouped = [txn for member in order for txn in by_member[member]]
    interleaved, grouped = fresh(variant), fresh(variant)
    # a fixed business day: moving it with the stream would make regrouping change lateness
    interleaved.today = grouped.today = interleaved.programme.calendar.day_of(START)
    for txn in txns:
        score_transaction(interleaved, txn)
    for txn in regrouped:
        score_transaction(grouped, txn)
    assert state(grouped) == state(interleaved)


@pytest.mark.parametrize("variant", VARIANTS)
@settings(max_examples=60, deadline=None)
@given(txns=streams(members=("a",)), offered=st.integers(0, 5_000), order=st.integers(0, 100_000))
def test_a_redeem_then_its_refund_restores_the_exact_lots(variant, txns, offered, order):
    target = fresh(variant)
    score(target, *txns)
    member = target.members.get("a")
    if member is None:
        return
    at = max(t.occurred_at_ms for t in txns) + 60_000
    lots = [(lot.expires, lot.amount) for lot in member.lots]
    balance = (member.points, member.debt)
    spent = score(target, Transaction("x", "a", at, "redeem", points=offered or 1, amount_minor=order))[0]
    back = score(target, Transaction("y", "a", at, "refund", refund_of="x"))[0]
    if spent.outcome != "accepted":
        assert back.outcome == "rejected"
        return
    assert back.points == -spent.points
    assert back.value_minor == -spent.value_minor
    assert [(lot.expires, lot.amount) for lot in member.lots] == lots
    assert (member.points, member.debt) == balance


@pytest.mark.parametrize("variant", VARIANTS)
@settings(max_examples=40, deadline=None)
@given(txns=streams())
def test_a_book_that_keeps_no_outputs_ends_in_the_same_members(variant, txns):
    """`keep_outputs=False` (a replay that writes no ledger) makes no ledger entries nor notices, and
    changes nothing else: every member field, the ledger position included, every result, and the
    members marked changed (what a caller would store)."""
    kept, bare = fresh(variant), Book(Programme(load_rules(VARIANTS[variant])), keep_outputs=False)
    assert score(kept, *txns) == score(bare, *txns)
    assert state(kept) == state(bare)
    (written, dirty), (entries, also_dirty) = kept.take_changes(), bare.take_changes()
    assert len(written) == sum(m.ledger_seq for m in kept.members.values())  # each change an entry, kept
    assert entries == []
    assert bare.take_notices() == []
    assert also_dirty.keys() == dirty.keys()
