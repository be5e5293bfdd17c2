"""The compiled wire code against the pure code, its specification. The part reader: for any batch
protobuf can write (every field, merged messages, unknown fields) the same records; for any other
bytes either the same records or the pure reader's answer (the compiled one steps aside). The
batch cutter: the same parts for any batch and any shards."""

import logging

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors import batch_wire
from actors.batch_cutter import cut_entries
from actors.batch_wire import _indices, cut_pure, read_part_pure, say_if_not_compiled, transactions_of
from actors.part_reader import read_part
from proto import patron_pb2 as pb

texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=12) | st.sampled_from(["", "ü€😀", "x" * 200])
int64s = st.integers(-2**63, 2**63 - 1) | st.integers(-300, 300)
int32s = st.integers(-2**31, 2**31 - 1) | st.integers(-2, 12)

line_items = st.builds(pb.LineItem, sku=texts, product_id=texts, category=texts, name=texts, paid_minor=int64s,
                       quantity=int32s, promotional=st.booleans(), member_discounted=st.booleans())
transactions = st.builds(
    pb.Transaction, txn_id=texts, member_id=texts, occurred_at_ms=int64s, kind=int32s, status=int32s,
    store_id=texts, channel=texts, lines=st.lists(line_items, max_size=5), refund_of=texts, event_type=texts,
    amount_minor=int64s, note=texts, points=int64s, coupon_id=texts, coupon_code=texts)


def unknown_field(number: int, wire: int, value: int) -> bytes:
    key = varint(number << 3 | wire)
    return key + {0: varint(value), 1: bytes(8), 2: varint(value % 5) + b"z" * (value % 5), 5: bytes(4)}[wire]


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


unknowns = st.lists(st.builds(unknown_field, st.integers(16, 2**29 - 1), st.sampled_from([0, 1, 2, 5]),
                              st.integers(0, 2**64 - 1)), max_size=2).map(b"".join)


@st.composite
def entries(draw) -> bytes:
    """A `transactions` entry: one message, or two written one after the other with unknown fields
    around (protobuf merges them: a scalar given twice keeps the last, lines add up)."""
    body = b"".join(draw(unknowns) + draw(transactions).SerializeToString()
                    for _ in range(draw(st.integers(1, 2)))) + draw(unknowns)
    return varint(2 << 3 | 2) + varint(len(body)) + body


@st.composite
def batches(draw) -> bytes:
    head = pb.TransactionBatch(batch_id=draw(texts)).SerializeToString()
    return head + b"".join(draw(unknowns) + draw(entries()) for _ in range(draw(st.integers(0, 6))))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_the_compiled_reader_reads_every_batch_protobuf_writes_as_the_pure_one(data):
    compiled = read_part(data)
    assert compiled is not None  # read by itself, not handed to the pure reader
    assert compiled == read_part_pure(data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches(), st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 255)), min_size=1, max_size=3),
       st.integers(0, 2**16))
def test_broken_bytes_are_read_as_the_pure_reader_reads_them_or_left_to_it(data, changes, cut):
    broken = bytearray(data)
    for position, byte in changes:
        if broken:
            broken[position % len(broken)] = byte
    broken = bytes(broken[:cut % (len(broken) + 1)] if cut % 3 == 0 else broken)
    try:
        expected = read_part_pure(broken)
    except DecodeError:
        assert read_part(broken) is None
        with pytest.raises(DecodeError):
            transactions_of(broken)
        return
    compiled = read_part(broken)
    assert compiled is None or compiled == expected
    assert transactions_of(broken) == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches(), st.data())
def test_the_compiled_cutter_cuts_every_batch_as_the_pure_one(data, draw):
    entries = len(pb.TransactionBatch.FromString(data).transactions)
    indices = _indices(draw.draw(st.lists(st.integers(0, 3), min_size=entries, max_size=entries)))
    cut = cut_entries(data, indices, entries)
    assert cut is not None
    assert cut == cut_pure(data, indices, entries, lambda part: b"encoded again")


def test_unknown_fields_in_a_line_and_words_alike_at_both_ends_are_read_as_protobuf_reads_them():
    """Words of one size with the same first and last 8 bytes share a slot of the reader's string
    table: each must still be read as itself, every time."""
    def line(message: bytes) -> bytes:
        return varint(8 << 3 | 2) + varint(len(message)) + message

    alike = ["ABCDEFGH-1-12345678", "ABCDEFGH-2-12345678"]
    unknown = unknown_field(99, 0, 7) + unknown_field(100, 2, 3) + unknown_field(101, 5, 0)
    body = pb.Transaction(txn_id="t").SerializeToString() + line(
        pb.LineItem(sku="S", quantity=2).SerializeToString() + unknown) + b"".join(
        line(pb.LineItem(sku=word, category=word).SerializeToString()) for word in alike * 2)
    data = varint(2 << 3 | 2) + varint(len(body)) + body
    [read] = read_part(data)
    assert read == read_part_pure(data)[0]
    assert [(item.sku, item.quantity) for item in read.lines] == [("S", 2)] + [(word, 0) for word in alike * 2]


def test_the_compiled_cutter_leaves_a_group_or_a_miscount_to_the_pure_one():
    data = pb.TransactionBatch(transactions=[pb.Transaction(txn_id=str(n)) for n in range(3)]).SerializeToString()
    group = bytes([7 << 3 | 3, 1 << 3 | 0, 1, 7 << 3 | 4])
    assert cut_entries(group + data, {0: [0, 2], 1: [1]}, 3) is None
    assert cut_entries(data, {0: [0, 2], 1: [1], 2: [3]}, 4) is None
    assert cut_entries(data[:-1], {0: [0, 2], 1: [1]}, 3) is None


def test_a_group_a_known_field_of_another_wire_type_and_bad_utf8_go_to_the_pure_reader():
    good = pb.TransactionBatch(transactions=[pb.Transaction(txn_id="t", kind=1)]).SerializeToString()
    group = bytes([7 << 3 | 3, 1 << 3 | 0, 1, 7 << 3 | 4])
    txn_id_as_varint = bytes([2 << 3 | 2, 2, 1 << 3 | 0, 5])
    bad_utf8 = bytes([2 << 3 | 2, 3, 1 << 3 | 2, 1, 0xFF])
    for data in (group + good, good + txn_id_as_varint):
        assert read_part(data) is None
        assert transactions_of(data) == read_part_pure(data)
    assert read_part(good + bad_utf8) is None
    with pytest.raises(DecodeError):
        transactions_of(good + bad_utf8)


def test_a_start_without_the_compiled_reader_says_so_as_an_error(monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    say_if_not_compiled(logging.getLogger("patron.test"))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    monkeypatch.setattr(batch_wire, "COMPILED_WIRE", False)
    say_if_not_compiled(logging.getLogger("patron.test"), shard=3)
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "pip install" in record.getMessage()
    assert record.shard == 3


def test_a_start_without_the_compiled_engine_says_so_as_an_error(monkeypatch, caplog):
    monkeypatch.setattr(batch_wire, "COMPILED_ENGINE", False)
    say_if_not_compiled(logging.getLogger("patron.test"), shard=2)
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "compiled engine" in record.getMessage()
    assert record.shard == 2
