"""Amounts, quantities, points and times that are not exactly an `int` (SPEC §2), compiled against
pure. No decoder makes one (msgspec, protobuf and the shard's part reader give `int` only), but a
`Transaction` or `LineItem` built by hand through the Python API can carry a float, a bool or an
int subclass, which the compiled engine reads as a C integer in places (a float truncated, a NaN
raising) where the .py keeps it as given. Both engines must refuse each alike
(`bounds.input_problem`: `not_an_integer`; a quote: `InvalidRequestError` naming the field)."""

import json

from tests.engine.test_invariants import EXAMPLE
from tests.engines import run_engine_script

AT = 1_772_604_000_000  # 2026-03-04 14:00 in Shanghai
# (kind, field, a valid value): each field read as an integer, in a transaction of a kind that uses it
FIELDS = (("purchase", "paid_minor", 5000), ("purchase", "quantity", 2), ("refund", "paid_minor", 5000),
          ("purchase", "amount_minor", 5000), ("adjustment", "amount_minor", 300), ("recharge", "amount_minor", 10000),
          ("redeem", "points", 100), ("purchase", "points", 100), ("purchase", "occurred_at_ms", AT))
QUOTE_FIELDS = (("quote", "paid_minor", 5000), ("quote", "quantity", 2), ("quote", "occurred_at_ms", AT))
# what each value is made of the field's valid one `v` (in the subprocess: JSON carries no int subclass)
ODD = ("float", "half", "true", "false", "nan", "inf", "-inf", "-float", "subclass")
VALUES = (*ODD, "int", "huge")

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
at = cases["at"]


class Whole(int):
    pass


def made(spec, v):
    return {"float": float(v), "half": v + 0.5, "true": True, "false": False, "nan": float("nan"),
            "inf": float("inf"), "-inf": float("-inf"), "-float": -float(v), "subclass": Whole(v), "int": v,
            "huge": v * 10**20}[spec]


def book():
    target = Book(programme)
    score_transaction(target, Transaction("first", "m1", at, "purchase", lines=[LineItem(sku="S1", paid_minor=50000)]))
    return target


out = []
for kind, field, v, spec in cases["cases"]:
    value = made(spec, v)
    line = {"sku": "S1", "paid_minor": 5000, "quantity": 1}
    if field in line:
        line[field] = value
    target = book()
    if kind == "quote":
        got = answer(lambda: quote(target, "m1", [LineItem(**line)], value if field == "occurred_at_ms" else at))
    else:
        txn = {"occurred_at_ms": at, "amount_minor": 0, "points": 0, "note": "goodwill" if kind == "adjustment" else "",
               "refund_of": "gone" if kind == "refund" else ""}
        if field in txn:
            txn[field] = value
        lines = [LineItem(**line)] if kind in ("purchase", "refund") and field != "amount_minor" else []
        got = answer(lambda: score_transaction(target, Transaction("t", "m1", kind=kind, lines=lines, **txn)))
    out.append([got, msgspec.to_builtins(target.members["m1"])])
print(json.dumps({"compiled": engine.compiled_engine(), "answers": out,
                  "initial": msgspec.to_builtins(book().members["m1"])}))
"""


def cases() -> list[list]:
    return [[kind, field, v, spec] for kind, field, v in FIELDS + QUOTE_FIELDS for spec in VALUES]


def answers(pure: bool) -> dict:
    return run_engine_script(ANSWERS, {"rules": EXAMPLE, "at": AT, "cases": cases()}, pure)


def expected(kind: str, field: str, spec: str) -> str:
    """The reason each refusal gives: a value that is not an int is never compared, except by the
    checks scoring makes before the bounds' (a time of 0 is missing, an amount below 0 negative;
    engine/scoring.py `malformed_reason`), which read it as the number it is."""
    if spec == "int":
        return ""
    if spec == "huge":
        return "bad_timestamp" if field == "occurred_at_ms" else "amount_too_large"
    if spec == "false" and field == "occurred_at_ms":  # False == 0
        return "missing_occurred_at"
    below_zero = spec in ("-inf", "-float")
    if below_zero and field == "amount_minor" and kind != "adjustment":
        return "negative_amount"
    return "not_an_integer"


def test_values_that_are_not_integers_are_refused_alike_compiled_and_pure():
    compiled, pure = answers(pure=False), answers(pure=True)
    assert compiled["compiled"] == [True, ""], compiled["compiled"]
    assert pure["compiled"][0] is False
    # NaN is not equal to itself: compared as JSON text, where it is the same word
    assert json.dumps(compiled["answers"]) == json.dumps(pure["answers"]), [
        (case, mine, theirs) for case, mine, theirs in zip(cases(), compiled["answers"], pure["answers"], strict=True)
        if json.dumps(mine) != json.dumps(theirs)]
    for (kind, field, _, spec), (got, member) in zip(cases(), compiled["answers"], strict=True):
        reason = expected(kind, field, spec)
        if kind == "quote":
            if reason == "not_an_integer":
                assert got[0] == "InvalidRequestError", (field, spec, got)
                assert got[1].startswith(("lines[0]." if field != "occurred_at_ms" else "") + field), (field, spec, got)
                assert "expected an integer" in got[1], (field, spec, got)
            elif spec == "int":
                assert got["member_id"] == "m1", (field, spec, got)
            continue
        assert got["reason"] == reason or (spec == "int" and got["outcome"] in ("accepted", "rejected")
                                           and got["reason"] not in ("not_an_integer", "amount_too_large")), (
            kind, field, spec, got)
        if reason:
            assert got["outcome"] == "rejected", (kind, field, spec, got)
            assert member == compiled["initial"], (kind, field, spec, member)  # nothing changed
    # the valid values reach their kind's scoring: the table does not test refusals alone
    accepted = [got for (_, _, _, spec), (got, _) in zip(cases(), compiled["answers"], strict=True)
                if spec == "int" and isinstance(got, dict) and got.get("outcome") == "accepted"]
    assert len(accepted) >= 6, accepted
