"""`patron send` judges a line as `patron replay` does: each line of a replay file, put on the wire
by the Python client (client.transaction_message) and read back as a shard reads its part, is
answered by the engine as the line itself is in replay. A word replay rejects (an unknown kind or
status) or a number beyond what the wire holds must not become something else on the way."""

import json

import pytest

from actors.batch_wire import read_part_pure, transactions_of
from cli.replay import Malformed, decode_line
from client import UnsendableError, transaction_message
from engine.book import Book
from engine.programme import Programme
from engine.replay import replay_stream
from engine.validation import load_rules_file
from proto import patron_pb2 as pb
from tests.builders import ms
from tests.conftest import EXAMPLE_RULES

AT = ms("2026-03-05 10:00")
HUGE = 99999999999999999999999999


def txn(name: str, **fields: object) -> dict:
    return {"txn_id": name, "member_id": f"m-{name}", "occurred_at_ms": AT, "kind": "purchase",
            "amount_minor": 50000, **fields}


LINES = [
    txn("paid"),
    txn("no-status", status=""),
    txn("canceled", status="canceled"),
    txn("Pending", status="Pending"),
    txn("weird", status="weird"),
    txn("PAID", status="PAID"),
    txn("kind", kind="weird"),
    txn("Purchase", kind="Purchase"),
    txn("no-kind", kind=""),
    txn("both", kind="weird", status="weird"),
    txn("no-id-weird", status="weird", txn_id=""),
    txn("big", amount_minor=HUGE),
    txn("big-64", amount_minor=(1 << 63)),
    txn("small", amount_minor=-HUGE),
    txn("small-adjustment", kind="adjustment", amount_minor=-HUGE, note="why"),
    txn("when", occurred_at_ms=HUGE),
    txn("before", occurred_at_ms=-HUGE),
    txn("points", kind="redeem", points=HUGE),
    txn("minus-points", kind="redeem", points=-HUGE),
    txn("line", amount_minor=0, lines=[{"sku": "A", "paid_minor": HUGE}]),
    txn("line-minus", amount_minor=0, lines=[{"sku": "A", "paid_minor": -HUGE}]),
    txn("quantity-minus", amount_minor=0, lines=[{"sku": "A", "paid_minor": 100, "quantity": -(1 << 40)}]),
    txn("big-weird", amount_minor=HUGE, status="weird"),
]


def replayed(txns: list) -> list[tuple[str, str, str]]:
    book = Book(Programme(load_rules_file(EXAMPLE_RULES)))
    return [(r.txn_id, r.outcome, r.reason) for r in replay_stream(book, txns, [])]


def decoded(line: dict):
    found = decode_line(json.dumps(line).encode())
    assert not isinstance(found, Malformed), found.detail
    return found


@pytest.mark.parametrize("read", [transactions_of, read_part_pure], ids=["compiled", "pure"])
def test_every_line_is_answered_after_the_wire_as_replay_answers_it(read):
    txns = [decoded(line) for line in LINES]
    data = pb.TransactionBatch(transactions=[transaction_message(t) for t in txns]).SerializeToString()
    assert replayed(read(data)) == replayed(txns)


@pytest.mark.parametrize("status", ["canceled", "Pending", "weird", "PAID"])
def test_a_status_word_replay_does_not_know_is_never_sent_as_paid(status):
    message = transaction_message(decoded(txn("t", status=status)))
    assert message.status not in (pb.STATUS_UNSPECIFIED, pb.STATUS_PAID, pb.STATUS_PENDING, pb.STATUS_CANCELLED)


def test_a_quantity_the_wire_cannot_hold_is_refused_with_the_reason_replay_gives_or_malformed():
    beyond_limit = decoded(txn("q", amount_minor=0, lines=[{"sku": "A", "paid_minor": 100, "quantity": HUGE}]))
    with pytest.raises(UnsendableError) as refused:
        transaction_message(beyond_limit)
    assert refused.value.reason == replayed([beyond_limit])[0][2] == "amount_too_large"
    assert "lines[0].quantity" in str(refused.value)
    beyond_int32 = decoded(txn("q", amount_minor=0, lines=[{"sku": "A", "paid_minor": 100, "quantity": 1 << 31}]))
    with pytest.raises(UnsendableError) as refused:
        transaction_message(beyond_int32)
    assert refused.value.reason == "malformed"
    assert "2147483647" in str(refused.value)


@pytest.mark.parametrize(("line", "field"), [
    (txn("camel", kind="refund", refund_of="p", amount_minor=0, amountMinor=100), "amountMinor"),
    (txn("qty", amount_minor=0, lines=[{"sku": "A", "paid_minor": 100, "qty": 5}]), "qty"),
    (txn("typo", kind="purchase", amount_minor=0, amountMinor=100), "amountMinor"),
], ids=["refund-amount", "line-quantity", "purchase-amount"])
def test_a_key_no_transaction_has_is_malformed_naming_it_not_left_out(line, field):
    # left out, a refund of `amountMinor` 100 refunded the whole payment and `qty` 5 counted once
    # (an outside probe); the Python client and `member quote` refused them already
    found = decode_line(json.dumps(line).encode(), "transaction 1: ")
    assert isinstance(found, Malformed), found
    assert (found.txn_id, f"unknown field `{field}`" in found.detail) == (line["txn_id"], True), found.detail
