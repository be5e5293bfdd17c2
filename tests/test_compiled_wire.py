"""The compiled wire code against the pure code, its specification. The part reader: for any batch
protobuf can write (every field, merged messages, unknown fields) the same records; for any other
bytes either the same records or the pure reader's answer (the compiled one steps aside). The
batch cutter: the same parts for any batch and any shards. The gateway's reading for routing: the
same batch id, count, member ids, shards and parts as protobuf's parse gives, and a batch that
protobuf refuses left to it, so that it is refused whole."""

import importlib.util
import itertools
import logging
import subprocess
import sys
import types
import zlib
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors import batch_wire
from actors.batch_cutter import crc32, cut_entries, read_route
from actors.batch_wire import (
    BatchRoute,
    _indices,
    cut_pure,
    read_part_pure,
    result_entries,
    result_entries_pure,
    route_of,
    say_if_not_compiled,
    transactions_of,
)
from actors.part_reader import byte_order_problem, read_part, struct_slots
from actors.result_writer import write_results
from engine.transactions import TxnResult
from proto import patron_pb2 as pb
from storage.folder import Layout

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


@st.composite
def broken_batches(draw) -> bytes:
    """A batch with up to three bytes changed at random, a third of the time cut short too."""
    broken = bytearray(draw(batches()))
    for position, byte in draw(st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 255)), min_size=1,
                                        max_size=3)):
        if broken:
            broken[position % len(broken)] = byte
    cut = draw(st.integers(0, 2**16))
    return bytes(broken[:cut % (len(broken) + 1)] if cut % 3 == 0 else broken)


def agree(data: bytes, pure: Callable, compiled: Callable, chosen: Callable, answers: Callable = lambda read: read
          ) -> object:
    """Bytes the pure code refuses, the compiled code leaves to it, and `chosen` (what serving
    calls) refuses too; bytes it reads, the compiled code reads the same or leaves to it, and
    `chosen` answers the same. Returns the compiled code's reading (None: left to the pure)."""
    try:
        expected = answers(pure(data))
    except DecodeError:
        assert compiled(data) is None
        with pytest.raises(DecodeError):
            chosen(data)
        return None
    read = compiled(data)
    assert read is None or answers(read) == expected
    assert answers(chosen(data)) == expected
    return read


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken_batches())
def test_broken_bytes_are_read_as_the_pure_reader_reads_them_or_left_to_it(broken):
    agree(broken, read_part_pure, read_part, transactions_of)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches(), st.data())
def test_the_compiled_cutter_cuts_every_batch_as_the_pure_one(data, draw):
    entries = len(pb.TransactionBatch.FromString(data).transactions)
    indices = _indices(draw.draw(st.lists(st.integers(0, 3), min_size=entries, max_size=entries)))
    cut = cut_entries(data, indices, entries)
    assert cut is not None
    assert cut == cut_pure(data, indices, entries, lambda part: b"encoded again")


layouts = st.builds(lambda owners, virtual: Layout(max(owners) + 1, virtual, owners),
                    st.lists(st.integers(0, 3), min_size=1, max_size=9), st.integers(1, 9))
"""Any shards over 1 to 9 virtual shards, and layouts no folder has (fewer owners than virtual shards)."""


def routed(read: object, layout: Layout) -> tuple:
    """Everything the gateway takes from a batch's reading, or the error it raises."""
    try:
        indices = read.shards(layout)
    except Exception as error:  # both readings must fail alike
        return read.batch_id, read.count, list(read.member_ids()), type(error)
    return read.batch_id, read.count, list(read.member_ids()), indices, read.parts(indices)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches(), layouts)
def test_the_compiled_routing_reads_every_batch_protobuf_writes_as_the_pure_one(data, layout):
    read = read_route(data)
    assert read is not None  # read by itself, not handed to protobuf
    assert routed(read, layout) == routed(BatchRoute(data), layout)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken_batches(), layouts)
def test_a_broken_batch_is_routed_as_protobuf_reads_it_or_refused_whole(broken, layout):
    agree(broken, BatchRoute, read_route, route_of, lambda read: routed(read, layout))


def field(number: int, wire: int, value: bytes) -> bytes:
    return varint(number << 3 | wire) + (varint(len(value)) + value if wire == 2 else value)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=12) | st.text(max_size=6).map(str.encode), st.sampled_from([
    (1,), (2,), (2, 2), (2, 3), (2, 6), (2, 99), (2, 8, 1), (2, 8, 4), (2, 8, 6), (2, 8, 99)]),
    st.sampled_from([0, 1, 2, 5]), st.booleans())
def test_any_bytes_in_a_string_or_of_any_wire_type_are_read_as_protobuf_reads_them(value, path, wire, as_varint):
    """A value's bytes as a string (UTF-8 or not), or as a varint (any length), at any field of the
    batch, a transaction or a line, written with any wire type: read as protobuf reads it, or left
    to protobuf, which refuses what it refuses; well-formed UTF-8 where protobuf wants a string is
    read by the compiled reading itself."""
    if wire == 0:
        value = varint(int.from_bytes(value[:9], "little")) if as_varint else value[:11] or b"\x80"
    elif wire in (1, 5):
        value = value.ljust(8 if wire == 1 else 4, b"\0")[:8 if wire == 1 else 4] if as_varint else value
    data = field(path[-1], wire, value)
    for number in reversed(path[:-1]):
        data = field(number, 2, pb.Transaction(member_id="m").SerializeToString() * (number == 2) + data)
    read = agree(data, BatchRoute, read_route, route_of, lambda read: routed(read, Layout(2, 4, [0, 1, 1, 0])))
    agree(data, read_part_pure, read_part, transactions_of)  # and a shard reads its part alike
    strings = {(1,), (2, 2), (2, 6), (2, 8, 1), (2, 8, 4)}
    if wire == 2 and path in strings and value.decode(errors="ignore").encode() == value:
        assert read is not None  # no stricter than protobuf about UTF-8


LEADS = [0x41, 0x7F, 0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4,
         0xF5, 0xF8, 0xFF]
FOLLOWERS = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF]
FIELD_16 = varint(16 << 3) + varint(0)
"""An unknown field whose key's first byte is 0x80."""


def test_every_string_around_utf8s_bounds_is_read_as_protobuf_reads_it():
    """Every lead byte at a bound of UTF-8's table 3-7 followed by up to three bytes at the bounds
    (overlong forms, surrogates, past U+10FFFF, cut short), alone and after eight ASCII bytes, as a
    member id: refused by protobuf, left to it; read by protobuf, read the same."""
    ends = [bytes(end) for size in range(4) for end in itertools.product(FOLLOWERS, repeat=size)]
    for value in (head + bytes([lead]) + end for head in (b"", b"ASCII-12") for lead in LEADS for end in ends):
        data = field(2, 2, field(2, 2, value) + FIELD_16)  # a byte like a continuation byte after it
        agree(data, read_part_pure, read_part, transactions_of)  # a shard reads its part alike
        try:
            expected = list(BatchRoute(data).member_ids())
        except DecodeError:
            assert read_route(data) is None, value
            continue
        read = read_route(data)
        assert read is not None, value
        assert list(read.member_ids()) == expected


def test_a_known_field_of_another_wire_type_is_left_to_protobuf():
    """Protobuf keeps it as an unknown field; the compiled reading does not guess."""
    # values that read as well when taken for another wire type
    wires = {0: b"\0", 1: b"\0" + FIELD_16 + varint(16 << 3) + varint(128), 2: b"\0", 5: b"\0" + FIELD_16}
    scalars = {"batch": set(), "transaction": {3, 4, 5, 11, 13}, "line": {5, 6, 7, 8}}
    known = {"batch": range(1, 3), "transaction": range(1, 16), "line": range(1, 9)}
    for level, numbers in known.items():
        for number in numbers:
            for wire, value in wires.items():
                if wire == (0 if number in scalars[level] else 2):
                    continue
                data = varint(number << 3 | wire) + value
                if level != "batch":
                    data = field(8, 2, data) if level == "line" else data
                    data = field(2, 2, data)
                BatchRoute(data)  # protobuf reads it
                assert read_route(data) is None, (level, number, wire)
                agree(data, read_part_pure, read_part, transactions_of)


def test_a_key_varint_or_length_written_longer_than_usual_is_read_as_protobuf_reads_it():
    """Padded to 5 and 6 bytes (protobuf reads a length or key of 5 at most), a varint of 10 and
    11 bytes (10 at most), at every level: refused by protobuf, left to it; read by it, read the same."""
    def padded(value: int, size: int) -> bytes:
        return bytes([value & 0x7F | 0x80, *[0x80] * (size - 2), 0])

    def varint_of(size: int, last: int) -> bytes:
        return bytes([0xFF] * (size - 1) + [last])

    cases = []
    for size in (2, 5, 6):
        cases += [padded(1 << 3 | 2, size) + varint(1) + b"A", varint(1 << 3 | 2) + padded(1, size) + b"A",
                  varint(2 << 3 | 2) + padded(2, size) + field(2, 2, b""),
                  field(2, 2, varint(8 << 3 | 2) + padded(2, size) + field(1, 2, b"")),
                  field(2, 2, padded(2 << 3 | 2, size) + varint(1) + b"M")]
    for size, last in ((10, 1), (10, 0x7F), (11, 1)):
        cases += [varint(16 << 3) + varint_of(size, last), field(2, 2, varint(3 << 3) + varint_of(size, last)),
                  field(2, 2, field(8, 2, varint(5 << 3) + varint_of(size, last)))]
    for data in cases:
        agree(data, BatchRoute, read_route, route_of, lambda read: routed(read, Layout(2, 4, [0, 1, 1, 0])))
        agree(data, read_part_pure, read_part, transactions_of)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=40))
def test_the_routings_crc32_is_zlibs(data):
    assert crc32(data) == zlib.crc32(data)


def test_a_batch_cutter_built_before_the_routing_reading_counts_as_not_compiled(monkeypatch):
    """A stale actors/batch_cutter (built from an older .pyx) says so at start like a missing one."""
    stale = types.ModuleType("actors.batch_cutter")
    stale.cut_entries = cut_entries
    monkeypatch.setitem(sys.modules, "actors.batch_cutter", stale)
    spec = importlib.util.spec_from_file_location("stale_batch_wire", batch_wire.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert not module.COMPILED_WIRE
    assert "read_route" in module._MISSING


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


def test_transactions_of_many_lines_are_read_with_every_line_in_order():
    """The reader holds a transaction's first lines in C and lists the rest as they come: around
    where one gives way to the other, every line is there, in the order given."""
    for count in (0, 1, 15, 16, 17, 40):
        data = pb.TransactionBatch(transactions=[pb.Transaction(txn_id="t", lines=[
            pb.LineItem(sku=f"S{n}", quantity=n) for n in range(count)])]).SerializeToString()
        [read] = read_part(data)
        assert read == read_part_pure(data)[0]
        assert [(item.sku, item.quantity) for item in read.lines] == [(f"S{n}", n) for n in range(count)]


def test_a_word_that_is_not_utf8_goes_to_the_pure_reader_every_time_it_comes():
    """The reader's table of repeated strings remembers only ASCII: bytes once refused are refused
    again, not taken for a word remembered."""
    bad_sku = bytes([1 << 3 | 2, 3]) + b"S\xff1"
    body = pb.Transaction(txn_id="t").SerializeToString() + varint(8 << 3 | 2) + varint(len(bad_sku)) + bad_sku
    data = varint(2 << 3 | 2) + varint(len(body)) + body
    for _ in range(3):
        assert read_part(data) is None
        with pytest.raises(DecodeError):
            transactions_of(data)


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


class _OtherResult(TxnResult):
    """Not exactly a TxnResult: the compiled writer reads a TxnResult's fields from their slots."""


def test_outcomes_made_afresh_are_written_with_their_own_numbers():
    """The writer knows the outcome strings it met first by identity: strings made anew at each
    result (freed, their memory reused by the next) must still be written by their value."""
    words = ["accepted", "duplicate", "ignored", "rejected"]
    for turn in range(200):
        outcome = (words[(turn * 7 + turn // 4) % 4] + ".")[:-1]  # a new str each time, freed after
        results = [TxnResult("t", outcome, 1, 0, "")]
        assert write_results(results) == result_entries_pure(results)
        del results, outcome


def test_results_the_compiled_writer_does_not_expect_go_to_the_pure_writer():
    """An outcome without a number, an int outside int64, a string that is not UTF-8, a value of
    another type, a result of another class: the compiled writer steps aside wherever the result is
    in the batch, and the pure code decides (protobuf refuses all but the bytes given for a string, which it writes)."""
    fine = TxnResult("t", "accepted", 5, 5, "")
    unusual = [TxnResult("t", "unheard_of", 0, 0, ""), TxnResult("t", "accepted", 2**63, 0, ""),
               TxnResult("t", "accepted", 0, -2**63 - 1, ""), TxnResult("\ud800", "accepted", 1, 1, ""),
               TxnResult("t", "rejected", 0, 0, "x\udfff"), TxnResult("t", "accepted", 0, 0, "", 1.5),
               TxnResult("t", "accepted", 0, 0, "", 0, b"code"), _OtherResult("t", "accepted", 1, 1, "")]
    for result in unusual:
        for results in ([result], [fine, result], [result, fine]):
            assert write_results(results) is None
            try:
                expected = result_entries_pure(results)
            except (KeyError, ValueError, TypeError) as refused:
                with pytest.raises(type(refused)):
                    result_entries(results)
            else:
                assert result_entries(results) == expected
    assert write_results([]) == result_entries_pure([]) == (b"", [])


def test_a_start_without_the_compiled_reader_says_so_as_an_error(monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(batch_wire, "COMPILED_ENGINE", True)  # this test is the wire code's alone
    monkeypatch.setattr(batch_wire, "COMPILED_WIRE", True)
    say_if_not_compiled(logging.getLogger("patron.test"))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    monkeypatch.setattr(batch_wire, "COMPILED_WIRE", False)
    say_if_not_compiled(logging.getLogger("patron.test"), shard=3)
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "pip install" in record.getMessage()
    assert record.shard == 3


def test_a_start_whose_record_encoder_leaves_a_record_to_msgspec_says_so_as_an_error(monkeypatch, caplog):
    monkeypatch.setattr(batch_wire, "COMPILED_ENGINE", True)
    monkeypatch.setattr(batch_wire, "COMPILED_WIRE", True)
    say_if_not_compiled(logging.getLogger("patron.test"))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # this build: every record is its own
    monkeypatch.setattr(batch_wire, "encoder_problems", lambda: {"Member": "msgspec leaves its default fields out"})
    say_if_not_compiled(logging.getLogger("patron.test"), shard=2)
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Member" in record.getMessage()
    assert record.shard == 2


def test_a_start_without_the_compiled_engine_says_so_as_an_error(monkeypatch, caplog):
    monkeypatch.setattr(batch_wire, "COMPILED_WIRE", True)  # this test is the engine's alone
    monkeypatch.setattr(batch_wire, "COMPILED_ENGINE", False)
    say_if_not_compiled(logging.getLogger("patron.test"), shard=2)
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "compiled engine" in record.getMessage()
    assert record.shard == 2


def test_a_struct_the_reader_does_not_build_as_msgspec_does_makes_its_import_fail():
    """The reader builds records slot by slot: only Structs of exactly the fields it sets, not
    tracked by the collector and with no __post_init__; any other raises ImportError, which
    batch_wire.py takes as a missing build (the pure reader reads)."""
    class Line(msgspec.Struct, gc=False):
        sku: str = ""
        name: str = ""

    class Tracked(msgspec.Struct):
        sku: str = ""
        name: str = ""

    class Checked(msgspec.Struct, gc=False):  # not a subclass: its fields are slots of its own
        sku: str = ""
        name: str = ""

        def __post_init__(self) -> None:
            pass

    # a record with room for more than its fields (msgspec refuses a `__dict__` or weak references
    # without gc, but the reader does not count on it: what it would leave unset is never zeroed)
    wide = types.SimpleNamespace(__name__="Wide", __struct_fields__=("sku", "name"), __flags__=0,
                                 __basicsize__=object.__basicsize__ + 3 * 8, __itemsize__=0)
    assert len(set(struct_slots(Line, ("sku", "name")))) == 2
    for cls, fields in ((Line, ("name", "sku")), (Line, ("sku",)), (Tracked, ("sku", "name")),
                        (Checked, ("sku", "name")), (wide, ("sku", "name"))):
        with pytest.raises(ImportError, match=r"actors\.part_reader: \w+ is not the Struct this reader builds"):
            struct_slots(cls, fields)


def test_the_part_reader_refuses_a_big_endian_machine():
    """The word table reads a word's first bytes as a little-endian integer (a short word's are
    masked to its low bytes): on a big-endian machine it would take one word for another, silently.
    Its import refuses there, naming the cause, and the pure reader reads every part (a start says
    so, with this reason)."""
    assert byte_order_problem("little") == ""
    assert "big-endian" in byte_order_problem("big")
    forced = ("import sys; sys.byteorder = 'big'\n"
              "from actors import batch_wire\n"
              "print(batch_wire.COMPILED_WIRE, batch_wire._read_compiled, batch_wire._MISSING)")
    ran = subprocess.run([sys.executable, "-c", forced], check=False, capture_output=True, text=True, timeout=60,
                         cwd=str(Path(__file__).parents[1]))
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.startswith("False None ImportError: actors.part_reader: this machine is big-endian"), ran.stdout


_FAILING_ALLOCATION = """
import gc, sys, _testcapi
from actors.part_reader import read_part
from proto import patron_pb2 as pb
# fresh ints (no small-int cache) and words not ASCII (none remembered): each makes an object
data = pb.TransactionBatch(transactions=[pb.Transaction(
    txn_id="t", occurred_at_ms=10**12 + 1, amount_minor=123457, points=98765,
    lines=[pb.LineItem(sku="ü1", paid_minor=99999, quantity=1000)])]).SerializeToString()
read_part(data)
k = int(sys.argv[1])
_testcapi.set_nomemory(k, k + 1)
try:
    read_part(data)
except MemoryError:
    pass
finally:
    _testcapi.remove_mem_hooks()
gc.collect()
for _ in range(3):
    read_part(data)
print("survived")
"""


def test_an_allocation_failing_while_a_part_is_read_is_a_memory_error_not_a_crash():
    """Records are allocated, then their field objects made: one failing (the k-th allocation,
    for each k) must leave nothing stray for the record's dealloc to release (a review found the
    records unzeroed: a crash or a refcount taken from a live object)."""
    for k in range(16):
        ran = subprocess.run([sys.executable, "-c", _FAILING_ALLOCATION, str(k)], check=False, capture_output=True,
                             text=True, timeout=60, cwd=str(Path(__file__).parents[1]))
        assert (ran.returncode, ran.stdout.strip()) == (0, "survived"), (k, ran.stderr[-2000:])


def test_a_lines_amount_is_the_same_int_each_time_it_comes_below_the_tables_end():
    """Amounts below 2**16 are kept (most lines make no int); any amount reads as the pure reader reads it."""
    amounts = [0, 256, 257, 1_000, 65_535, 65_536, 2**40, 2**63 - 1, -1, -2**63, 1_000]
    data = pb.TransactionBatch(transactions=[pb.Transaction(txn_id=f"t{n}", lines=[
        pb.LineItem(sku="S", paid_minor=amount) for amount in amounts]) for n in range(2)]).SerializeToString()
    first, second = read_part(data)
    assert [first, second] == read_part_pure(data)
    assert [item.paid_minor for item in second.lines] == amounts
    assert all((a.paid_minor is b.paid_minor) == (0 <= amount < 2**16)
               for a, b, amount in zip(first.lines, second.lines, amounts, strict=True) if amount > 256)
