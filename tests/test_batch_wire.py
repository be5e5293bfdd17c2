"""A batch crossing from the gateway to shards and back as protobuf bytes: each shard gets exactly
its transactions, in order, whatever the client's encoder wrote; the acknowledgement put together
from the shards' entries is the BatchAck the results make."""

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.batch_stats import BatchStats
from actors.batch_wire import (
    PartAnswer,
    _entry_spans,
    ack_bytes,
    result_entries,
    result_entries_pure,
    result_message,
    split,
    transactions_of,
)
from client import transaction_message
from engine.transactions import TxnResult
from proto import patron_pb2 as pb
from tests.builders import buy, event, line, refund

DAY = "2026-03-02"


def messages(count: int) -> list[pb.Transaction]:
    kinds = [lambda n: buy(f"b{n}", f"m{n % 7}", DAY, line(100 + n, sku=f"S{n}"), line(5, promotional=True)),
             lambda n: refund(f"r{n}", f"m{n % 7}", DAY, f"b{n - 1}", 50),
             lambda n: event(f"e{n}", f"m{n % 7}", DAY, "review")]
    return [transaction_message(kinds[n % 3](n)) for n in range(count)]


def parts_of(data: bytes, shards: list[int]) -> dict[int, tuple[list[int], list[pb.Transaction]]]:
    batch = pb.TransactionBatch.FromString(data)
    return {shard: (indices, list(pb.TransactionBatch.FromString(part).transactions))
            for shard, (indices, part) in split(data, batch, shards).items()}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), max_size=40), st.booleans())
def test_each_shard_gets_its_transactions_in_the_batchs_order(shards, id_last):
    txns = messages(len(shards))
    data = pb.TransactionBatch(transactions=txns).SerializeToString()
    batch_id = pb.TransactionBatch(batch_id="B-1").SerializeToString()
    data = data + batch_id if id_last else batch_id + data  # fields may come in any order
    parts = parts_of(data, shards)
    assert sorted(parts) == sorted(set(shards))
    for shard, (indices, part) in parts.items():
        assert indices == [i for i, s in enumerate(shards) if s == shard]
        assert part == [txns[i] for i in indices]


def unknown_fields() -> bytes:
    """Fields a newer client might send: a varint, fixed 64 and 32 bits, a long key, a string."""
    return (bytes([3 << 3 | 0, 0x96, 0x01]) + bytes([4 << 3 | 1]) + b"\x01" * 8 + bytes([5 << 3 | 5]) + b"\x02" * 4
            + bytes([0xA0, 0x1F]) + b"\x05" + bytes([6 << 3 | 2, 3]) + b"abc")


def test_unknown_fields_of_every_kind_between_transactions_are_skipped():
    txns = messages(5)
    data = b"".join(unknown_fields() + pb.TransactionBatch(transactions=[t]).SerializeToString() for t in txns)
    parts = parts_of(data, [0, 1, 0, 1, 1])
    assert parts == {0: ([0, 2], [txns[0], txns[2]]), 1: ([1, 3, 4], [txns[1], txns[3], txns[4]])}
    entries = [data[span] for span in _entry_spans(data)]  # read in one pass, not encoded again
    assert [pb.TransactionBatch.FromString(entry).transactions[0] for entry in entries] == txns


def test_a_batch_with_a_group_field_is_split_all_the_same():
    txns = messages(4)
    group = bytes([7 << 3 | 3, 1 << 3 | 0, 1, 7 << 3 | 4])  # a start group, a varint in it, an end group
    data = group + pb.TransactionBatch(transactions=txns).SerializeToString()
    assert pb.TransactionBatch.FromString(data).transactions == txns
    assert parts_of(data, [1, 0, 0, 1]) == {1: ([0, 3], [txns[0], txns[3]]), 0: ([1, 2], [txns[1], txns[2]])}


def test_a_batch_for_one_shard_goes_whole():
    data = pb.TransactionBatch(batch_id="B", transactions=messages(3)).SerializeToString()
    assert split(data, pb.TransactionBatch.FromString(data), [2, 2, 2]) == {2: ([0, 1, 2], data)}


def test_a_shard_reads_its_part_into_the_records_the_client_sent():
    txns = [buy("b1", "m1", DAY, line(990, sku="TEA", category="tea", quantity=2, member_discounted=True)),
            refund("r1", "m1", DAY, "b1", 500), event("e1", "m2", DAY, "review")]
    data = pb.TransactionBatch(transactions=[transaction_message(t) for t in txns]).SerializeToString()
    assert transactions_of(data) == txns


def test_an_unknown_kind_or_status_becomes_a_word_the_engine_rejects():
    data = pb.TransactionBatch(transactions=[pb.Transaction(txn_id="x", member_id="m", kind=99, status=42),
                                             pb.Transaction(txn_id="y", member_id="m")]).SerializeToString()
    assert [(t.kind, t.status) for t in transactions_of(data)] == [("unspecified", "unknown"), ("unspecified", "")]


def entries_of(results: list[TxnResult]) -> list[bytes]:
    entries, sizes = result_entries(results)
    return PartAnswer(entries, sizes, BatchStats({})).entries()


RESULTS = [TxnResult("b1", "accepted", 120, 120, ""), TxnResult("r1", "accepted", -2**62, 0, "capped"),
           TxnResult("x" * 300, "rejected", 0, 0, "id_too_long"), TxnResult("d", "duplicate", 5, 5, ""),
           TxnResult("c", "accepted", 0, 0, "", value_minor=-1500, coupon_code="GOLD-1,GOLD-2"),
           TxnResult("i", "ignored", 0, 0, "not_paid")]


def test_the_acknowledgement_from_result_entries_is_the_batch_ack_of_the_results():
    expected = pb.BatchAck(batch_id="B-7", results=[result_message(r) for r in RESULTS])
    answer = pb.BatchAck.FromString(ack_bytes("B-7", entries_of(RESULTS)))
    assert answer == expected
    assert [r.outcome for r in answer.results] == [pb.OUTCOME_ACCEPTED, pb.OUTCOME_ACCEPTED, pb.OUTCOME_REJECTED,
                                                   pb.OUTCOME_DUPLICATE, pb.OUTCOME_ACCEPTED, pb.OUTCOME_IGNORED]
    assert answer.results[1].points == -2**62
    assert answer.results[4].coupon_code == "GOLD-1,GOLD-2"


def test_entries_put_back_in_the_batchs_order_answer_each_transaction_in_place():
    entries = entries_of(RESULTS)
    shuffled = [entries[i] for i in (3, 0, 5, 1, 4, 2)]
    answer = pb.BatchAck.FromString(ack_bytes("", shuffled))
    assert [r.txn_id for r in answer.results] == [RESULTS[i].txn_id for i in (3, 0, 5, 1, 4, 2)]


def test_entries_of_every_length_are_cut_where_they_end():
    """Lengths around where a length takes a second and a third byte."""
    results = [TxnResult("t" * size, "accepted", 1, 1, "") for size in (0, 118, 121, 122, 125, 126, 16_370, 16_380)]
    assert [r.txn_id for r in pb.BatchAck.FromString(ack_bytes("", entries_of(results))).results] == [
        r.txn_id for r in results]
    assert [len(entry) for entry in entries_of(results)] == [len(pb.BatchAck(results=[result_message(r)])
                                                                 .SerializeToString()) for r in results]


_RESULT = st.builds(TxnResult, st.text(max_size=140), st.sampled_from(["accepted", "duplicate", "ignored", "rejected"]),
                    st.integers(-2**63, 2**63 - 1), st.integers(-2**63, 2**63 - 1), st.text(max_size=20),
                    st.integers(-2**63, 2**63 - 1), st.text(max_size=200))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(_RESULT, st.sampled_from(RESULTS)), max_size=12))
def test_result_entries_are_the_bytes_protobuf_writes_for_the_results(results):
    """Entries written by the compiled writer, and by the pure code from remembered encodings of all
    but the id, whatever the values (empty ids, ids whose length takes two bytes, negative numbers,
    results seen before), are protobuf's own."""
    expected = pb.BatchAck(results=[result_message(r) for r in results]).SerializeToString()
    expected_sizes = [len(pb.BatchAck(results=[result_message(r)]).SerializeToString()) for r in results]
    for write in (result_entries, result_entries_pure):
        entries, sizes = write(results)
        assert entries == expected
        assert sizes == expected_sizes


def test_results_whose_fields_are_made_when_read_are_written_as_protobuf_writes_them():
    """The compiled writer points into each string's bytes while it writes the entry: a result
    whose fields are made afresh at each read (a property, not a Struct's slot) must not lose them
    before they are copied (the review found its bytes overwritten by the next field's)."""

    class Made:
        outcome, points, growth, value_minor = "accepted", 5, 5, 0

        @property
        def txn_id(self) -> str:
            return "t" * 5_000  # a new string at each read

        @property
        def reason(self) -> str:
            return "r" * 5_000

        @property
        def coupon_code(self) -> str:
            return "c" * 5_000

    results = [Made(), Made()]
    expected = pb.BatchAck(results=[result_message(r) for r in results]).SerializeToString()
    assert result_entries(results)[0] == expected
