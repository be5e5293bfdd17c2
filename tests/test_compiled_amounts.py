"""Amounts at and past the bounds (SPEC §2), compiled against pure: a purchase's amounts are summed
as C integers compiled (engine/earning.pxd), which is exact only because every caller of
`value_purchase` bounds them first (a purchase and a refund by `bounds.input_problem`, a quote by
its request check). Each basket below goes through each caller, a purchase, a refund of an
unknown original (by lines and by amount) and a quote, in the compiled engine and in its .py
(PATRON_PURE_ENGINE=1), and every answer, refusal and exception must be the same."""

import json
import random

from engine.bounds import LIMIT
from tests.engine.test_invariants import EXAMPLE
from tests.engines import run_engine_script

# Lines the example rules treat each way: earning by the spend rule, claimed by a fixed, a
# percent and a per-amount product rule, and refused by the blacklist (and never discounted).
KINDS = (("S1", "", ""), ("TEA-PROMO", "", ""), ("W1", "wine", ""), ("C1", "", "P-COFFEE"),
         ("GIFT-CARD-100", "", ""), ("F1", "infant_formula", ""))
AMOUNTS = (0, 1, 999, LIMIT // 3, LIMIT - 1, LIMIT, LIMIT + 1, 2**62, 2**63 - 1, 2**63, 2**64 + 5, 10**30)
QUANTITIES = (1, 2, LIMIT, LIMIT + 1, 2**63)
TABLE = [
    [[0, LIMIT, 1]], [[0, LIMIT + 1, 1]], [[0, LIMIT, 1], [0, 1, 1]], [[0, LIMIT // 2, 1], [0, LIMIT // 2 + 1, 1]],
    [[0, 2**62, 1], [0, 2**62, 1]], [[0, 2**63 - 1, 1], [0, 1, 1]], [[4, 2**62, 1], [4, 2**62, 1]],
    [[1, LIMIT, LIMIT]], [[1, 1, LIMIT + 1]], [[2, LIMIT, 1]], [[3, LIMIT, 1]], [[5, LIMIT, 1], [0, LIMIT, 1]],
    [[0, LIMIT // 10_000, 1]] * 10_000,  # many lines summing to the bound exactly
    [[0, LIMIT // 10_000, 1]] * 10_001,  # and just past it
    [[0, LIMIT, 1]] * 9_224,  # past 2**63 in all
    [[4, LIMIT, 1]] * 9_224 + [[0, 1, 1]],  # past 2**63 in refused lines, earning ones within
]
ORDER_AMOUNTS = (1, LIMIT, LIMIT + 1, 2**63, -1, -LIMIT - 1)


def baskets() -> list[list[list[int]]]:
    """The table, then lines drawn at random (one seed, the same each run) among the kinds,
    amounts and quantities above: two baskets in three only among those within the bounds."""
    draw = random.Random(15)
    drawn = []
    for _ in range(150):
        inside = draw.random() < 2 / 3
        amounts, quantities = (AMOUNTS[:6], QUANTITIES[:3]) if inside else (AMOUNTS, QUANTITIES)
        drawn.append([[draw.randrange(len(KINDS)), draw.choice(amounts), draw.choice(quantities)]
                      for _ in range(draw.randint(1, 4))])
    return TABLE + drawn


ANSWERS = """
import json, sys
import msgspec
import engine
from engine.book import Book
from engine.programme import Programme
from engine.scoring import score_transaction
from engine.spending.quote import quote
from engine.transactions import LineItem, Transaction
from engine.validation import load_rules
from tests.engines import answer

cases = json.loads(sys.stdin.read())
programme = Programme(load_rules(cases["rules"]))
at, kinds = cases["at"], cases["kinds"]


def book():
    # a Gold member (member prices, the tier's multiplier) on her birthday (the birthday's)
    target = Book(programme)
    score_transaction(target, Transaction("first", "m1", at, "purchase", lines=[LineItem(sku="S1", paid_minor=5000)]))
    target.members["m1"].tier = 2
    target.members["m1"].profile.birthday = cases["birthday"]
    return target


out = []
for n, basket in enumerate(cases["baskets"]):
    lines = [LineItem(sku=kinds[k][0], category=kinds[k][1], product_id=kinds[k][2], paid_minor=paid, quantity=quantity)
             for k, paid, quantity in basket]
    target = book()
    out.append([answer(lambda: score_transaction(target, Transaction(f"p{n}", "m1", at, "purchase", lines=lines))),
                answer(lambda: score_transaction(target, Transaction(f"r{n}", "m1", at, "refund", refund_of="gone",
                                                                     lines=lines))),
                answer(lambda: quote(target, "m1", lines, at)),
                msgspec.to_builtins(target.members["m1"])])
for n, amount in enumerate(cases["orders"]):
    target = book()
    out.append([answer(lambda: score_transaction(target, Transaction(f"o{n}", "m1", at, "purchase",
                                                                     amount_minor=amount))),
                answer(lambda: score_transaction(target, Transaction(f"u{n}", "m1", at, "refund", refund_of="gone",
                                                                     amount_minor=amount))),
                msgspec.to_builtins(target.members["m1"])])
print(json.dumps({"compiled": engine.compiled_engine(), "answers": out}))
"""


def answers(pure: bool) -> dict:
    cases = {"rules": EXAMPLE, "at": 1_772_604_000_000, "birthday": "03-04", "kinds": KINDS, "baskets": baskets(),
             "orders": ORDER_AMOUNTS}  # at: 2026-03-04 14:00 in Shanghai
    return run_engine_script(ANSWERS, cases, pure)


def test_amounts_at_and_past_the_bounds_answer_the_same_compiled_and_pure():
    compiled, pure = answers(pure=False), answers(pure=True)
    assert compiled["compiled"] == [True, ""], compiled["compiled"]
    assert pure["compiled"][0] is False
    assert len(compiled["answers"]) == len(baskets()) + len(ORDER_AMOUNTS)
    for case, (mine, theirs) in enumerate(zip(compiled["answers"], pure["answers"], strict=True)):
        assert mine == theirs, (case, mine, theirs)
    # the cases reach each answer: accepted with points, refused for the bounds, and a quote refused
    flat = json.dumps(compiled["answers"])
    assert '"amount_too_large"' in flat
    assert '"accepted"' in flat
    assert "InvalidRequestError" in flat
    earned = [case[0] for case in compiled["answers"] if isinstance(case[0], dict) and case[0]["points"] > 0]
    assert len(earned) > 10


def test_a_purchase_value_is_not_made_by_calling_its_class() -> None:
    """Compiled, PurchaseValue is an extension type built field by field (`_valued`): called with
    arguments it would otherwise leave every field None where the .py refuses them."""
    import pytest

    from engine.earning import PurchaseValue

    with pytest.raises(TypeError, match="_valued"):
        PurchaseValue(1, 2, 3, 4, 5, None, 6)
