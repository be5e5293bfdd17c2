"""What a commit remembers of its batches' rejections (actors/shard.py `remember_rejections`, which
looks only at the rejected and at those sharing an id with one) against the loop over every
transaction it replaced, kept here as the specification: the same rows, in the same order, for
batches with ids sent twice, by one member or two, rejected and applied, ids empty, spans empty."""

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.shard import remember_rejections
from engine.transactions import Transaction, TxnResult


def remembered_by_every_step(txns: list, results: list, spans: list) -> list:
    """The loop before: a Python step a transaction."""
    rejected: dict = {}
    taken = set()
    batch_ids = [batch_id for batch_id, count in spans for _ in range(count)]
    for txn, result, batch_id in zip(txns, results, batch_ids, strict=True):
        if batch_id and result.outcome == "rejected":
            rejected.setdefault(batch_id, {}).setdefault((txn.member_id, txn.txn_id), []).append(result.reason)
        elif batch_id:
            taken.add((batch_id, txn.member_id, txn.txn_id))
    for batch_id, by_key in rejected.items():
        for key in [key for key in by_key if (batch_id, *key) in taken]:
            del by_key[key]
    return [({b: k for b, k in rejected.items() if k}, 7)] if any(rejected.values()) else []


class Writer:
    def __init__(self) -> None:
        self.put: list = []

    def put_rejections(self, by_batch: dict, day: int) -> None:
        self.put.append((by_batch, day))


rows = st.lists(st.tuples(st.sampled_from(["T1", "T2", "T3", "T4"]), st.sampled_from(["m1", "m2"]),
                          st.sampled_from(["accepted", "rejected", "duplicate"]),
                          st.sampled_from(["", "nothing_to_refund", "unknown_kind"])), max_size=30)


@settings(max_examples=400, deadline=None)
@given(rows, st.lists(st.tuples(st.sampled_from(["", "b1", "b2", "b3"]), st.integers(0, 12)), min_size=1, max_size=5))
def test_the_same_rows_as_a_step_a_transaction(drawn: list, sizes: list) -> None:
    spans, left = [], len(drawn)
    for batch_id, size in sizes:  # spans covering exactly the transactions, some empty
        spans.append((batch_id, min(size, left)))
        left -= spans[-1][1]
    spans[-1] = (spans[-1][0], spans[-1][1] + left)
    txns = [Transaction(txn_id, member_id, kind="purchase") for txn_id, member_id, _, _ in drawn]
    results = [TxnResult(txn_id, outcome, reason=reason) for txn_id, _, outcome, reason in drawn]
    writer = Writer()
    remember_rejections(writer, [txn.member_id for txn in txns], results, spans, 7)  # type: ignore[arg-type]
    assert ordered(writer.put) == ordered(remembered_by_every_step(txns, results, spans))


def ordered(put: list) -> list:
    """Dicts as lists of items: their order is compared too."""
    return [([(b, list(by_key.items())) for b, by_key in by_batch.items()], day) for by_batch, day in put]


def test_lengths_that_differ_are_refused() -> None:
    txns = [Transaction("T1", "m1"), Transaction("T2", "m1")]
    results = [TxnResult("T1", "rejected", reason="x"), TxnResult("T2", "accepted")]
    for spans in ([("b", 1)], [("b", 3)]):
        try:
            remember_rejections(Writer(), [txn.member_id for txn in txns], results, spans, 7)  # type: ignore[arg-type]
        except ValueError:
            continue
        raise AssertionError(f"spans {spans} for two transactions were taken")
