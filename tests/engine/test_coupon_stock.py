"""Coupon inventory as the engine sees it: a limit passed in as data (the rules' inventory, or
the units granted to a shard), never exceeded; a shard's grant topped up when it runs out, at
the moment a unit is taken."""

from hypothesis import given
from hypothesis import strategies as st

from engine.book import Book
from engine.spending.coupon_stock import CountedStock
from tests.builders import buy, line, programme, recharge, score
from tests.engine.test_coupons import COUPONS, DAY, TIERS, issue


@given(st.integers(0, 50), st.integers(1, 50), st.integers(0, 120), st.integers(0, 10))
def test_a_shard_issues_at_most_its_grant_and_never_past_the_inventory(granted, inventory, asks, before):
    stock = CountedStock({"C": before}, granted={"C": granted})
    taken = sum(stock.take("C", inventory) for _ in range(asks))
    limit = max(0, min(granted, inventory) - before)
    assert taken == min(asks, limit)
    assert stock.remaining("C", inventory) == limit - taken


def test_without_grants_the_whole_inventory_is_the_limit_and_unlimited_stays_unlimited():
    stock = CountedStock()
    assert sum(stock.take("C", 10) for _ in range(20)) == 10
    assert all(CountedStock(granted={}).take("FREE", 0) for _ in range(100))
    assert CountedStock(granted={}).take("LIMITED", 5) is False  # nothing granted: nothing to issue


def test_a_failed_scoring_puts_units_back():
    stock = CountedStock(granted={"C": 2})
    kept = stock.snapshot()
    stock.take("C", 9), stock.take("C", 9), stock.take("C", 9)
    stock.restore(kept)
    assert stock.remaining("C", 9) == 2
    assert stock.taken == kept


@given(st.integers(0, 30), st.integers(1, 60), st.integers(0, 90), st.lists(st.integers(0, 7), max_size=20))
def test_a_used_up_grant_is_topped_up_when_a_unit_is_taken_and_never_past_the_inventory(
        granted, inventory, asks, answers):
    """`refill` stands for the keeper: each call grants the next answer's units (0: none left)."""
    stock = CountedStock(granted={"C": granted})
    calls: list[tuple[int, int]] = []

    def refill(coupon: str) -> bool:
        more = answers.pop(0) if answers else 0
        calls.append((stock.taken.get(coupon, 0), more))
        stock.granted[coupon] += more
        return more > 0

    stock.refill = refill
    for _ in range(asks):
        count, limit, asked = stock.taken.get("C", 0), min(stock.granted["C"], inventory), len(calls)
        took = stock.take("C", inventory)
        if count < limit:  # units in hand: no waiting for the keeper
            assert (took, len(calls)) == (True, asked)
        elif count >= inventory:  # the inventory is used up: nothing to ask for
            assert (took, len(calls)) == (False, asked)
        else:  # used up below the inventory: asked once, and taken if more came
            assert (took, len(calls)) == (calls[-1][1] > 0, asked + 1)
        assert stock.taken.get("C", 0) <= min(inventory, stock.granted["C"])


def _granted_book(granted: dict[str, int]) -> Book:
    return Book(programme("", COUPONS, TIERS), stock=CountedStock(granted=granted))


def test_issuance_by_api_stops_at_the_units_granted_with_the_out_of_stock_reason():
    target = _granted_book({"V10": 2})
    for member in ("m1", "m2", "m3"):
        score(target, buy("b-" + member, member, DAY, line(100)))
    results = score(target, issue("i1", "m1", "V10"), issue("i2", "m2", "V10"), issue("i3", "m3", "V10"))
    assert [(r.outcome, r.reason) for r in results] == [("accepted", ""), ("accepted", ""),
                                                        ("rejected", "out_of_stock")]
    assert target.stock.taken["V10"] == 2


def test_triggers_draw_from_the_grant_and_write_why_when_it_is_used_up():
    body = COUPONS + '\n[[recharge_bonuses]]\nname = "coupon"\nmin_amount_minor = 100\ncoupons = ["V10"]\n'
    target = Book(programme("", body, TIERS), stock=CountedStock(granted={"V10": 1}))
    score(target, recharge("c1", "m1", DAY, 100), recharge("c2", "m2", DAY, 100))
    assert [c.code for c in target.members["m1"].coupons] == ["WELCOME-m1-1", "V10-m1-1"]
    assert [c.code for c in target.members["m2"].coupons] == ["WELCOME-m2-1"]  # unlimited: no grant needed
    notes = [e.note for e in target.ledger if e.kind == "coupon_not_issued"]
    assert notes == ["V10: out_of_stock"]
