"""The compiled commit rows (storage/row_packer.pyx) against the pure ones, their specification
(storage/commit_rows.py, storage/codecs.py): the same keys and values, in the same order, and the
same positions left for the members, for any ids (non-ASCII, empty, too long for a key) and any
commit. A stored member's record is looked up as a cursor's `get` does: by key, None when absent."""

import importlib
import importlib.util
import struct
import sys
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import storage
from engine.ledger import LedgerEntry
from engine.members import Member
from engine.notices import Notice
from engine.transactions import TxnRecord
from storage import codecs, commit_rows, outbox, row_packer

ids = st.text(st.characters(exclude_categories=["Cs"]), max_size=6) | st.sampled_from(["", "ü€😀", "x" * 300,
                                                                                     "y" * 509])
members = st.sampled_from(["m1", "m2", "ü€", "", "m" * 200])
positions = st.integers(0, 2**64 - 1) | st.integers(0, 50)
entries = st.lists(st.builds(LedgerEntry, member_id=members, seq=st.integers(0, 9), day=st.integers(0, 30_000),
                             cause=st.just("txn"), ref=ids, rule_version=st.integers(1, 3), kind=st.just("earn"),
                             points=st.integers(-10**12, 10**12)), max_size=12)
records = st.builds(TxnRecord, member_id=members, kind=st.just("purchase"), day=st.integers(20_000, 20_003),
                    points=st.integers(0, 500), growth=st.integers(0, 500), reason=st.just(""),
                    rule_version=st.just(1))


@settings(max_examples=150, deadline=None)
@given(st.tuples(ids, ids))
def test_index_keys_are_txn_keys(pair):
    assert row_packer.index_key(pair) == codecs.txn_key(*pair)
    packed = row_packer.packed_key(pair)
    assert packed is None or packed == codecs.txn_key(*pair)
    assert (packed is None) == (3 + len(pair[0].encode()) + len(pair[1].encode()) > codecs.MAX_KEY)


def test_an_index_key_of_another_shape_is_the_pure_codes():
    for pair in (["m", "t"], ("m", "t", "u"), ("m", b"t")):
        assert row_packer.packed_key(pair) is None
    assert row_packer.index_key(["m", "t"]) == codecs.txn_key("m", "t")


def test_a_record_that_is_none_is_refused_as_the_pure_code_refuses_it():
    for member_rows in (row_packer.member_rows, commit_rows.member_rows_pure):
        with pytest.raises(TypeError):
            member_rows({"m": None}, {"m": 1}, {}, {}.get, set())


@settings(max_examples=100, deadline=None)
@given(entries, st.dictionaries(members, positions), st.dictionaries(members, positions),
       st.dictionaries(members, st.binary(max_size=20)), st.data())
def test_member_heads_and_records_are_the_pure_ones(written, read, stored, changed, data):
    """`read`: heads of members read in this write (stored, then); `stored`: members' records as
    committed; `known`: members the write found not stored (any of those neither read nor stored)."""
    stored.update(read)
    get = {key.encode(): codecs.with_position(head, b"m") for key, head in stored.items()}.get
    known = data.draw(st.sets(members.filter(lambda member: member not in stored)))
    absent, absent_pure = set(known), set(known)
    newest = commit_rows.newest_heads_pure(written, read, get, absent)
    commit_rows.newest_heads_pure(written, read, get, absent_pure)
    left = dict(newest)
    rows = row_packer.member_rows(changed, left, read, get, absent)
    assert rows == commit_rows.member_rows_pure(changed, newest, read, get, absent_pure)
    assert left == newest
    assert absent == absent_pure
    assert absent == known | {m for m in {e.member_id for e in written} | set(changed) if m not in stored}
    in_table, fresh = rows  # split as the table itself would split them: by whether it holds the member
    assert [key for key, _ in in_table] == [m.encode() for m in changed if m in stored]
    assert [key for key, _ in fresh] == [m.encode() for m in changed if m not in stored]


@settings(max_examples=100, deadline=None)
@given(entries, positions, st.dictionaries(members, positions), st.dictionaries(members, positions), st.data())
def test_chained_ledger_rows_are_the_pure_ones(written, after, read, stored, data):
    """The ledger's rows with each member's head found at its first entry: as `newest_heads` then
    `ledger_rows` give them, the same members found not stored, the same newest positions after."""
    after = min(after, 2**64 - 1 - len(written))
    stored.update(read)
    get = {key.encode(): codecs.with_position(head, b"m") for key, head in stored.items()}.get
    known = data.draw(st.sets(members.filter(lambda member: member not in stored)))
    absent, absent_pure, absent_apart = set(known), set(known), set(known)
    rows, newest = row_packer.chained_ledger_rows(written, after, read, get, absent)
    assert (rows, newest) == commit_rows.chained_ledger_rows_pure(written, after, read, get, absent_pure)
    apart = commit_rows.newest_heads_pure(written, read, get, absent_apart)
    assert rows == codecs.ledger_rows(written, after, apart)
    assert newest == apart
    assert absent == absent_pure == absent_apart


@settings(max_examples=50, deadline=None)
@given(entries, positions, st.dictionaries(members, positions))
def test_chained_ledger_rows_released_are_the_same_rows_and_leave_no_entry(written, after, read):
    """`release` changes what is left in the list (nothing), not the rows or the heads."""
    after = min(after, 2**64 - 1 - len(written))
    get = {key.encode(): codecs.with_position(head, b"m") for key, head in read.items()}.get
    kept = row_packer.chained_ledger_rows(written, after, read, get, set())
    for chained in (row_packer.chained_ledger_rows, commit_rows.chained_ledger_rows_pure):
        given = list(written)
        assert chained(given, after, read, get, set(), release=True) == kept
        assert given == [None] * len(written)


def test_a_chained_ledger_entry_held_by_its_list_alone_is_freed_as_it_is_encoded():
    entry = LedgerEntry("m", 1, 20_000, "txn", "t", 1, "earn", points=5)
    held = sys.getrefcount(entry)
    given = [entry, entry]
    rows = row_packer.chained_ledger_rows(given, 0, {"m": 3}, {}.get, set(), release=True)[0]
    assert given == [None, None]
    assert sys.getrefcount(entry) == held  # the list's two references let go while it lives; none kept by the rows
    assert rows == row_packer.chained_ledger_rows([entry, entry], 0, {"m": 3}, {}.get, set())[0]


def test_a_chained_ledger_position_past_64_bits_is_refused_as_the_pure_code_refuses_it():
    entry = LedgerEntry("m", 1, 20_000, "txn", "t", 1, "earn", points=5)
    for chained in (row_packer.chained_ledger_rows, commit_rows.chained_ledger_rows_pure):
        with pytest.raises((OverflowError, struct.error)):
            chained([entry, entry], 2**64 - 2, {"m": 3}, {}.get, set())


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.tuples(members, ids), records), st.data())
def test_index_rows_are_the_pure_ones(index, data):
    looked_up = data.draw(st.sets(st.sampled_from(sorted(index)))) if index else set()
    keys = [codecs.txn_key(*key) if key in looked_up else None for key in index]
    rows, by_day = row_packer.index_rows(index, keys)
    assert (rows, by_day) == commit_rows.index_rows_pure(index, keys)
    assert rows == [(codecs.txn_key(*key), codecs.encode(record)) for key, record in index.items()]


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.tuples(members, ids), records))
def test_index_rows_released_are_the_same_rows_and_leave_every_key_without_its_record(index):
    keys = [None] * len(index)
    kept = row_packer.index_rows(index, keys)
    for rows in (row_packer.index_rows, commit_rows.index_rows_pure):
        held = [sys.getrefcount(record) for record in index.values()]
        given = dict(index)
        assert rows(given, keys, release=True) == kept
        assert given == dict.fromkeys(index)
        assert [sys.getrefcount(record) for record in index.values()] == held  # `given`'s references let go


@settings(max_examples=100, deadline=None)
@given(st.lists(st.builds(Member, member_id=members, enrolled=st.integers(0, 30_000),
                          points=st.integers(-2**63, 2**64 - 1), tags=st.lists(ids, max_size=40)), max_size=8),
       st.dictionaries(members, st.binary(max_size=4)))
def test_members_are_encoded_as_the_pure_code_encodes_them(written, before):
    """Records of any size one after another through one buffer (larger and smaller than the last),
    into what the write holds already."""
    compiled, pure = dict(before), dict(before)
    row_packer.encoded_members(written, compiled)
    commit_rows.encoded_members_pure(written, pure)
    assert compiled == pure
    assert list(compiled) == list(pure)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.tuples(members, ids), records, max_size=4), st.data())
def test_index_lookups_are_the_pure_ones(stored, data):
    """Lookups of stored, new and just indexed pairs (keys too long for LMDB among them) in an index
    whose last key is the largest stored (none: b""), and what each leaves for the commit: each
    pair indexed with its index key or none, the last record given for it, in the order first
    indexed. A pair is indexed as the same tuple its lookup asked for, an equal one, or another."""
    rows = {codecs.txn_key(*pair): codecs.encode(record) for pair, record in stored.items()}
    last = max(rows, default=b"")
    pairs = st.sampled_from(sorted(stored)) | st.tuples(members, ids) if stored else st.tuples(members, ids)
    compiled, pure = row_packer.IndexLookups(rows.get, last), commit_rows.IndexLookupsPure(rows.get, last)
    indexed = {}
    for indexes, drawn, record, copied in data.draw(st.lists(st.tuples(st.booleans(), pairs, records, st.booleans()),
                                                            max_size=10)):
        pair = tuple(list(drawn)) if copied else drawn  # equal, not the same tuple
        if indexes:
            for lookups in (compiled, pure):
                lookups[pair] = record
            indexed[pair] = record
        else:
            assert compiled.get(pair) == pure.get(pair) == (indexed.get(pair) or stored.get(pair))
            assert compiled.get(pair, "none") == pure.get(pair, "none")
    assert compiled.index == pure.index == indexed
    assert list(compiled.index) == list(pure.index) == list(indexed)
    assert compiled.keys == pure.keys
    assert len(compiled.keys) == len(indexed)
    assert all(key in (None, codecs.txn_key(*pair)) for pair, key in zip(indexed, compiled.keys, strict=True))


def test_without_the_compiled_rows_the_pure_ones_run_and_a_start_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "storage.row_packer", None)  # as when it was never built
    monkeypatch.delattr(storage, "row_packer")
    rows = _fresh("storage.commit_rows", "without_rows", monkeypatch)
    assert not rows.COMPILED_ROWS
    assert "row_packer" in rows.MISSING
    assert rows.chained_ledger_rows is rows.chained_ledger_rows_pure
    assert rows.index_rows is rows.index_rows_pure
    assert rows.IndexLookups is rows.IndexLookupsPure
    assert _fresh("actors.batch_wire", "without_rows_wire", monkeypatch).COMPILED_WIRE is False


def _fresh(module: str, name: str, monkeypatch) -> types.ModuleType:
    """`module` imported again under `name`, as a start would import it now."""
    spec = importlib.util.spec_from_file_location(name, importlib.import_module(module).__file__)
    fresh = importlib.util.module_from_spec(spec)
    if module == "storage.commit_rows":
        monkeypatch.setitem(sys.modules, module, fresh)
    spec.loader.exec_module(fresh)
    return fresh


def _stored(path) -> dict[str, list[tuple[bytes, bytes]]]:
    import lmdb

    from storage.shard_store import _DATABASES
    env = lmdb.open(str(path), max_dbs=len(_DATABASES) + 8, readonly=True, lock=False)
    try:
        with env.begin() as txn:
            return {name.decode(): list(txn.cursor(env.open_db(name, txn=txn)).iternext()) for name in _DATABASES}
    finally:
        env.close()


def _serve(path) -> None:
    """A few commits through a whole shard: new members, members read back, a member with entries
    but no new record (the midnight run's release), a batch with a key too long for LMDB."""
    from actors.shard import Shard, ShardConfig
    from engine.calendar import parse_day
    from tests.builders import buy, line
    from tests.engine.test_invariants import EXAMPLE
    shard = Shard(ShardConfig(0, str(path), EXAMPLE.replace("pending_days = 0", "pending_days = 1"),
                              start_day=parse_day("2026-11-17"), hot_members=2, midnight_part=1))
    shard.apply([buy(f"t{n}", f"m{n % 3}ü", "2026-11-17 10:00", line(2900 * n + 100)) for n in range(7)])
    shard.apply([buy("t" * 600, "m1ü", "2026-11-17 11:00", line(500)), buy("t2", "m2ü", "2026-11-17 11:00", line(1))])
    shard.midnight_begin(parse_day("2026-11-18"))
    while not shard.midnight_step(limit=2)[2]:
        pass
    shard.apply([buy("t9", "m0ü", "2026-11-18 09:00", line(700))])
    shard.close()


def test_a_shard_stores_the_same_rows_with_the_compiled_packer_and_with_the_pure_code(tmp_path, monkeypatch):
    from storage import shard_store
    _serve(tmp_path / "compiled")
    for name, pure in (("IndexLookups", commit_rows.IndexLookupsPure), ("index_rows", commit_rows.index_rows_pure),
                       ("chained_ledger_rows", commit_rows.chained_ledger_rows_pure),
                       ("member_rows", commit_rows.member_rows_pure)):
        assert getattr(shard_store, name) is not pure  # the build is there: the two runs differ
        monkeypatch.setattr(shard_store, name, pure)
    _serve(tmp_path / "pure")
    compiled, pure = _stored(tmp_path / "compiled"), _stored(tmp_path / "pure")
    del compiled["events"], pure["events"]  # the outbox's events carry the wall clock's time; no packed rows
    assert sum(map(len, compiled.values())) > 20
    assert compiled == pure


@pytest.mark.parametrize("hot_members", [0, 3])
def test_a_commit_knows_which_members_the_member_table_holds(tmp_path, monkeypatch, hot_members):
    """What a write knows (`ShardStore.heads`, the members it found not stored) splits a commit's
    members as the table's own lookup would: through new members, members read back, bounded and
    not, midnight steps, and virtual shards moved out and back in (deleted members come back)."""
    from storage.member_table import MemberTable
    from tests import test_shard_moves
    put, checked = MemberTable.put, []

    def checking(self, txn, records, fresh=None):
        assert fresh is not None  # the commit says which
        in_table = txn.cursor(db=self.table)
        assert all(in_table.set_key(key) for key, _ in records)
        assert not any(in_table.set_key(key) for key, _ in fresh)
        checked.append((len(records), len(fresh)))
        put(self, txn, records, fresh)

    monkeypatch.setattr(MemberTable, "put", checking)
    if not hot_members:
        _serve(tmp_path / "served")
    test_shard_moves.test_after_a_move_both_shards_keep_what_a_restart_computes(tmp_path, hot_members)
    assert sum(stored for stored, _ in checked) > 20
    assert sum(fresh for _, fresh in checked) > 20


texts = st.text(max_size=3) | st.sampled_from(["", "ü€😀", "m" * 130, "d" * 17_000, "coupon_issued"])
notices = st.builds(Notice, st.sampled_from(["coupon_issued", "tier_changed", "ü", ""]), texts,
                    st.integers(1, 800_000) | st.just(739_937), texts)


@settings(max_examples=150, deadline=None)
@given(st.lists(notices, max_size=8), st.integers(0, 2**64 - 9) | st.integers(0, 5))
def test_event_rows_are_the_pure_ones(drawn, seq):
    """Kinds and days asked once a call, members and details of any size (varints of one to three
    bytes), empty ones left out: the rows `storage/outbox.py`'s pure loop makes."""
    head = outbox._HEAD.pack(outbox._FORM, 739_937, 1_794_844_826_279)
    assert outbox.event_rows(head, drawn, seq) == outbox.event_rows_pure(head, drawn, seq)
    assert outbox._event_rows is row_packer.event_rows  # the build is there: the two runs differ


def test_a_notice_the_compiled_rows_do_not_expect_is_the_pure_codes():
    head = outbox._HEAD.pack(outbox._FORM, 739_937, 0)
    class Subclass(Notice):
        pass
    odd = [Notice("k", "m", 739_937, "{}"), Subclass("k", "m", 739_937, "{}"), Notice("k", "m", True, "{}")]
    assert outbox.event_rows(head, odd, 0) == outbox.event_rows_pure(head, odd, 0)
    for wrong in (Notice("k", 7, 1, "{}"), Notice("k", "\ud800", 1, "{}"), Notice(b"k", "m", 1, "{}")):
        with pytest.raises((AttributeError, UnicodeEncodeError)) as compiled:
            outbox.event_rows(head, [wrong], 0)
        with pytest.raises(compiled.type):
            outbox.event_rows_pure(head, [wrong], 0)
    with pytest.raises(struct.error):  # past 64 bits: the pure code's error
        outbox.event_rows(head, odd, 2**64 - 2)


def test_records_of_another_class_are_read_by_name_as_the_pure_code_reads_them():
    """The compiled rows read a member's id and a record's day from their slots only for records of
    exactly the engine's classes, and ask anything else by name: records of subclasses are stored as
    the pure code stores them. (A subclass keeps its base's slots, so reading them would agree too.)"""
    class LaterMember(Member):
        pass

    class LaterEntry(LedgerEntry):
        pass

    class LaterRecord(TxnRecord):
        pass

    members = [LaterMember("m1", 1), Member("m2", 2)]
    compiled, pure = {}, {}
    row_packer.encoded_members(members, compiled)
    commit_rows.encoded_members_pure(members, pure)
    assert compiled == pure
    assert list(compiled) == ["m1", "m2"]
    written = [LaterEntry("m1", 1, 20_000, "txn", "t", 1, "earn", points=5),
               LedgerEntry("m2", 1, 20_000, "txn", "u", 1, "earn")]
    assert (row_packer.chained_ledger_rows(written, 0, {"m1": 3, "m2": 4}, {}.get, set())
            == commit_rows.chained_ledger_rows_pure(written, 0, {"m1": 3, "m2": 4}, {}.get, set()))
    index = {("m1", "t"): LaterRecord("m1", "purchase", 20_001, 5, 5, "", 1),
             ("m2", "u"): TxnRecord("m2", "purchase", 20_002, 5, 5, "", 1)}
    rows, by_day = row_packer.index_rows(index, [None, None])
    assert (rows, by_day) == commit_rows.index_rows_pure(index, [None, None])
    assert list(by_day) == [20_001, 20_002]
