"""A shard's store on real LMDB in a temporary folder: the ledger appended by position and read
back per member, and the upgrade from the layout that keyed the ledger by member."""

import json
import struct
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import lmdb
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.coordinator import repeated_digests
from engine.ledger import LedgerEntry
from engine.members import Member
from engine.transactions import TxnRecord
from engine.why import Why
from storage.codecs import id_digest, member_of
from storage.index_history import remembered
from storage.layout import LAYOUT
from storage.mapped_pages import file_resident_bytes
from storage.shard_store import ShardStore


def entry(member_id: str, seq: int, points: int = 1) -> LedgerEntry:
    return LedgerEntry(member_id, seq, 20_000, "txn", f"t-{member_id}-{seq}", 1, "earn", points=points)


def commit(store: ShardStore, members: list[Member], entries: list[LedgerEntry]) -> None:
    writer = store.writer()
    writer.put_members(members)
    writer.put_ledger(entries)
    writer.commit()


# commits as lists of (member, how many entries); members are stored on their first commit
commits = st.lists(st.lists(st.tuples(st.sampled_from("abcd"), st.integers(1, 4)), min_size=1, max_size=6),
                   min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(commits, st.integers(0, 12), st.integers(0, 5), st.booleans())
def test_a_members_ledger_reads_back_in_order_from_any_point_and_page_size(history, after, limit, reopen):
    expected: dict[str, list[LedgerEntry]] = {}
    with tempfile.TemporaryDirectory() as folder:
        store = ShardStore(Path(folder))
        for parts in history:
            entries, members = [], {}
            for member_id, count in parts:
                for _ in range(count):
                    expected.setdefault(member_id, []).append(entry(member_id, len(expected[member_id]) + 1))
                    entries.append(expected[member_id][-1])
                if len(expected[member_id]) == count or count % 2:  # some commits leave the record as it is
                    members[member_id] = Member(member_id, 20_000, points=len(expected[member_id]))
            commit(store, list(members.values()), entries)
        if reopen:
            store.close()
            store = ShardStore(Path(folder))
        for member_id, entries in expected.items():
            wanted = [e for e in entries if e.seq > after]
            assert store.ledger(member_id, after, limit) == (wanted[:limit] if limit else wanted)
        assert store.ledger("nobody") == []
        store.close()


def test_a_commit_that_fails_leaves_no_position_taken(tmp_path):
    store = ShardStore(tmp_path)
    commit(store, [Member("a", 20_000)], [entry("a", 1)])
    writer = store.writer()
    writer.put_ledger([entry("a", 8), entry("a", 9), entry("ghost", 1)])  # entries for a member never stored
    with pytest.raises(ValueError, match="ghost"):
        writer.commit()
    writer.abort()
    commit(store, [], [entry("a", 2)])
    assert [e.seq for e in store.ledger("a")] == [1, 2]
    assert store.count("ledger") == 2


def test_a_folder_in_the_member_keyed_layout_is_upgraded_once_and_reads_the_same(tmp_path, monkeypatch):
    monkeypatch.setattr("storage.layout._CHUNK", 2)  # chunks that split a member's history
    members = [Member("m1", 20_000, points=3), Member("m2", 20_001, points=1), Member("m3", 20_002)]
    ledger = [entry("m1", 1), entry("m1", 2), entry("m1", 3, points=1), entry("m2", 1)]
    _write_member_keyed_layout(tmp_path, members, ledger)
    store = ShardStore(tmp_path)
    assert sorted(store.members(), key=lambda m: m.member_id) == members
    assert store.ledger("m1") == ledger[:3]
    assert store.ledger("m2") == ledger[3:]
    assert store.ledger("m3") == []
    commit(store, [Member("m3", 20_002, points=1)], [entry("m3", 1)])
    store.close()
    again = ShardStore(tmp_path)  # upgraded already: opening again changes nothing
    assert again.ledger("m1") == ledger[:3]
    assert again.ledger("m3") == [entry("m3", 1)]
    assert again.count("ledger") == 5


def _write_member_keyed_layout(path: Path, members: list[Member], ledger: list[LedgerEntry]) -> None:
    """Layout 1 as patron wrote it: ledger keys member, NUL, 8-byte sequence; members as they are;
    no layout key in meta."""
    env = lmdb.open(str(path), map_size=1 << 24, max_dbs=6)
    encode = msgspec.msgpack.encode
    with env.begin(write=True) as txn:
        for name in (b"txns", b"txn_days", b"anomalies", b"meta"):
            env.open_db(name, txn=txn)
        for member in members:
            txn.put(member.member_id.encode(), encode(member), db=env.open_db(b"members", txn=txn))
        for e in ledger:
            txn.put(e.member_id.encode() + b"\x00" + struct.pack(">Q", e.seq), encode(e),
                    db=env.open_db(b"ledger", txn=txn))
    env.close()


def test_the_upgrade_makes_room_when_the_map_holds_little_more_than_the_old_store(tmp_path, monkeypatch):
    monkeypatch.setattr("storage.layout._CHUNK", 333)
    members = [Member(f"m{n}", 20_000, points=5) for n in range(400)]
    ledger = [entry(f"m{n}", seq) for n in range(400) for seq in range(1, 6)]
    _write_member_keyed_layout(tmp_path, members, ledger)
    snug = (tmp_path / "data.mdb").stat().st_size + 8 * 4096
    store = ShardStore(tmp_path, map_bytes=snug, max_map_bytes=snug)
    assert store.count("ledger") == 2000
    assert all(store.ledger(m.member_id) == [entry(m.member_id, seq) for seq in range(1, 6)] for m in members)


class _EntryBeforeWhy(msgspec.Struct, array_like=True, omit_defaults=True):
    """A ledger entry as stores wrote it before entries said why they earned."""

    member_id: str
    seq: int
    day: int
    cause: str
    ref: str
    rule_version: int
    kind: str
    points: int = 0
    pending: int = 0
    growth: int = 0
    stored_value: int = 0
    tier_from: int = -1
    tier_to: int = -1
    status: str = ""
    unrecovered: int = 0
    note: str = ""


@pytest.mark.parametrize("note", ["", "goodwill"])
def test_ledger_entries_stored_before_the_why_or_its_parts_still_read_as_they_were_written(tmp_path, note):
    from storage.codecs import entry_of, with_position

    old = _EntryBeforeWhy("m1", 3, 20_000, "operator", "t-1", 2, "adjust", points=40, note=note)
    read = entry_of(with_position(0, msgspec.msgpack.encode(old)))
    assert read == LedgerEntry("m1", 3, 20_000, "operator", "t-1", 2, "adjust", points=40, note=note)
    assert read.why == ""
    store = ShardStore(tmp_path)  # and a store holding old and new entries reads both
    commit(store, [Member("m1", 20_000)], [read, LedgerEntry("m1", 4, 20_000, "txn", "t-2", 2, "earn", points=20,
                                                               why="20 from 'spend 10 per 10.00'")])
    store.close()
    _mark_layout(tmp_path, 3)  # layout 3 stored the why as text, 4 stores its parts
    store = ShardStore(tmp_path)
    with store.env.begin() as txn:
        assert msgspec.msgpack.decode(txn.get(b"storage_layout", db=store.dbs["meta"])) == LAYOUT
    parts = Why(30, (0, 2), {2: 5, 1: 7}, carried=90)
    commit(store, [Member("m1", 20_000)], [LedgerEntry("m1", 5, 20_000, "txn", "t-3", 2, "earn", points=50,
                                                       why=parts)])
    assert [e.why for e in store.ledger("m1")] == ["", "20 from 'spend 10 per 10.00'", parts]
    assert list(store.ledger("m1")[2].why.claims) == [2, 1]  # in the order the purchase met the rules
    store.close()


def test_a_folder_of_a_newer_layout_is_refused_with_both_layout_numbers(tmp_path):
    ShardStore(tmp_path).close()
    _mark_layout(tmp_path, LAYOUT + 1)
    with pytest.raises(RuntimeError, match=f"this data folder has storage layout {LAYOUT + 1}, written by a newer "
                                           f"patron; this one reads layout {LAYOUT} at most"):
        ShardStore(tmp_path)


def _mark_layout(path: Path, layout: int) -> None:
    env = lmdb.open(str(path), max_dbs=16)
    with env.begin(write=True) as txn:
        txn.put(b"storage_layout", msgspec.msgpack.encode(layout), db=env.open_db(b"meta", txn=txn))
    env.close()


def test_a_folder_with_the_index_keyed_by_id_alone_is_upgraded_to_member_and_id(tmp_path, monkeypatch):
    """Layout 2 keyed the transaction index by id and listed ids per day; after the upgrade
    each record is found under its own member only, and a day's transactions still read back."""
    monkeypatch.setattr("storage.layout._CHUNK", 2)
    day = 20_000
    records = {"T1": TxnRecord("m1", "purchase", day, 20, 20, "", 1, 2900, 2900),
               "T2": TxnRecord("m2", "event", day, 5, 0, "", 1),
               "T3": TxnRecord("m1", "recharge", day + 1, 0, 0, "", 1, 500)}
    _write_id_keyed_layout(tmp_path, [Member("m1", day), Member("m2", day)], records,
                           {(day, 1): ["T1", "T2", "gone"], (day + 1, 2): ["T3"]})
    store = ShardStore(tmp_path)
    writer = store.writer()
    assert writer.get(("m1", "T1")) == records["T1"]
    assert writer.get(("m2", "T1")) is None
    assert writer.get(("m2", "T2")) == records["T2"]
    writer.abort()
    assert store.transactions_by_member(day, remembered) == {"m1": ["T1"], "m2": ["T2"]}
    assert store.members_by_id(day + 1, frozenset({id_digest("T3")})) == {"T3": ["m1"]}
    assert store.members_by_id(day + 1) == {}  # asked for no digest: none read
    with store.env.begin() as txn:
        assert txn.get(b"txns") is None  # the old database is gone from the main database
    writer = store.writer()
    assert writer.forget_before(day + 1) == 2
    writer.commit()
    store.close()
    again = ShardStore(tmp_path)
    assert again.count("txn_index") == 1
    assert again.members_by_id(day) == {}


def test_a_copy_in_progress_holds_up_no_read_beside_it_and_a_map_resize_waits_for_it(tmp_path):
    """A checkpoint's copy runs on a reads thread for seconds (at a million members): the reads of
    quotes and cards go on beside it, and growing the map, which would pull it from under the
    copy, waits for its end."""
    import threading

    store = ShardStore(tmp_path, "relaxed")
    commit(store, [Member("m1", 20_000)], [])
    with store._copying:  # as `copy_to` holds it
        read = threading.Thread(target=store.member, args=("m1",))
        read.start()
        read.join(10)
        assert not read.is_alive()
        grow = threading.Thread(target=store.grow)
        grow.start()
        grow.join(0.2)
        assert grow.is_alive()
    grow.join(10)
    assert not grow.is_alive()
    store.close()


def test_an_id_two_members_used_on_one_shard_comes_twice_among_its_digests(tmp_path):
    """The reused-ids report asks for ids by name only when a digest comes twice: an id two
    members of one shard used must come twice from that shard alone."""
    store = ShardStore(tmp_path, durability="relaxed")
    day = 20_000
    writer = store.writer()
    for member_id, txn_id in [("m1", "T1"), ("m2", "T1"), ("m1", "T2")]:
        writer[(member_id, txn_id)] = TxnRecord(member_id, "purchase", day, 20, 20, "", 1, 2900, 2900)
    writer.commit()
    digests = store.id_digests(day)
    assert sorted(digests[i:i + 8] for i in range(0, len(digests), 8)) == sorted(
        [id_digest("T1"), id_digest("T1"), id_digest("T2")])
    assert store.members_by_id(day, frozenset({id_digest("T1")})) == {"T1": ["m1", "m2"]}
    other = b"".join(sorted([id_digest("T2"), id_digest("T3")]))
    assert repeated_digests([digests]) == {id_digest("T1")}  # within one shard
    assert repeated_digests([digests, other]) == {id_digest("T1"), id_digest("T2")}  # and across two
    assert repeated_digests([other]) == set()
    store.close()


def _write_id_keyed_layout(path: Path, members: list[Member], records: dict[str, TxnRecord],
                           days: dict[tuple[int, int], list[str]]) -> None:
    """Layout 2 as patron wrote it: members after an 8-byte position, the index under `txns`
    keyed by transaction id, each day index entry a list of ids."""
    env = lmdb.open(str(path), map_size=1 << 24, max_dbs=7)
    encode = msgspec.msgpack.encode
    with env.begin(write=True) as txn:
        for name in (b"ledger", b"anomalies"):
            env.open_db(name, txn=txn)
        for member in members:
            txn.put(member.member_id.encode(), struct.pack(">Q", 0) + encode(member),
                    db=env.open_db(b"members", txn=txn))
        for txn_id, record in records.items():
            txn.put(txn_id.encode(), encode(record), db=env.open_db(b"txns", txn=txn))
        for (day, batch), ids in days.items():
            txn.put(struct.pack(">IQ", day, batch), encode(ids), db=env.open_db(b"txn_days", txn=txn))
        txn.put(b"storage_layout", encode(2), db=env.open_db(b"meta", txn=txn))
    env.close()


def test_index_keys_fit_lmdb_and_never_run_one_id_into_the_other():
    from storage.codecs import MAX_KEY, txn_key

    longest = "食" * 100  # 300 bytes each: the pair is too long for one LMDB key
    keys = {txn_key("ab", "c"), txn_key("a", "bc"), txn_key("a\x00b", "c"), txn_key(longest, longest),
            txn_key(longest, longest[:-1] + "x"), txn_key(longest[:-1] + "x", longest)}
    assert len(keys) == 6
    assert max(map(len, keys)) <= MAX_KEY


def test_reads_on_another_thread_see_whole_commits_while_the_writer_grows_the_map(tmp_path):
    """Growing the map invalidates open transactions: the store waits for reads in progress.
    Each commit gives m1 a point and a ledger entry; a read sees one commit, whole. A reader that
    never yields takes the GIL back each time py-lmdb's writer lets it go, once a row, and the
    400 commits took 16-60 s; yielding every 500 reads they take a few, and a resize that does
    not wait for reads still fails the test in every run tried (six of six)."""
    import threading
    import time

    store = ShardStore(tmp_path, "relaxed", map_bytes=1 << 20, max_map_bytes=1 << 30)
    writer = store.writer()
    writer.put_meta("rules_text", "the rules")
    writer.put_members([Member("m1", 20_000)])
    writer.commit()
    start, failures, seen, done = store.map_bytes(), [], [], threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                member, rules_text, _ = store.committed("m1")
                seen.append((member.points, member.ledger_seq, rules_text))
            except Exception as error:  # any failure of a read is the finding
                failures.append(error)
            if len(seen) % 500 == 0:  # hand the writer the GIL now and then (docstring)
                time.sleep(0)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(1, 400):
            commit(store, [Member("m1", 20_000, points=n, ledger_seq=n),
                           *(Member(f"pad{n}-{i}", 20_000) for i in range(50))], [entry("m1", n)])
    finally:
        done.set()
        reader.join()
    assert store.map_bytes() > start  # the map did grow, while reads went on
    assert failures == []
    assert seen
    assert all(points == seq and rules_text == "the rules" for points, seq, rules_text in seen)
    store.close()


def test_a_run_finds_and_drops_exactly_the_wakeups_it_visits(tmp_path):
    """`woken_by` lists the days and members indexed up to the run; `drop_wakeups` removes the
    visited members' entries on those days and no one else's (members between them stay)."""
    store = ShardStore(tmp_path, durability="relaxed")
    ids = ["a", "b", "bé", "c", "d", "é"]

    @settings(max_examples=40, deadline=None)
    @given(st.sets(st.tuples(st.sampled_from([0, 5, 9]), st.sampled_from(ids))),
           st.lists(st.sampled_from([*ids, "z"]), unique=True), st.sampled_from([0, 5, 9]))
    def check(entries: set[tuple[int, str]], visited: list[str], run: int) -> None:
        writer = store.writer()
        writer.clear_wakeups()
        writer.put_wakeups(entries)
        writer.commit()
        due = {(day, m) for day, m in entries if day <= run}
        assert store.woken_by(run) == (sorted({day for day, _ in due}), sorted({m for _, m in due}))
        writer = store.writer()
        writer.drop_wakeups(sorted({day for day, _ in due}), visited)
        writer.commit()
        left = {(day, m) for day, m in entries if not (day <= run and m in visited)}
        assert store.woken_by(9) == (sorted({day for day, _ in left}), sorted({m for _, m in left}))

    check()
    store.close()


def test_members_read_together_are_those_stored_and_commit_keeps_their_ledger_chains(tmp_path):
    store = ShardStore(tmp_path)
    commit(store, [Member("b", 1), Member("a", 1)], [entry("a", 1), entry("b", 1)])
    writer = store.writer()
    assert [m.member_id for m in writer.members(["b", "x", "a", "b", ""])] == ["a", "b"]
    writer.put_members([Member("a", 2), Member("b", 2)])
    writer.put_ledger([entry("b", 2)])
    writer.commit()
    assert [e.seq for e in store.ledger("a")] == [1]
    assert [e.seq for e in store.ledger("b")] == [1, 2]
    assert store.member("a").enrolled == 2


def test_a_member_put_in_an_open_write_is_read_back_as_put_not_as_stored(tmp_path):
    """A midnight step writes a part's members into its write, and they may leave memory before
    the step commits: read again in that write, they must be what was put, or the commit would
    write the older record over it."""
    store = ShardStore(tmp_path)
    commit(store, [Member("a", 1), Member("b", 1)], [entry("a", 1)])
    writer = store.writer()
    writer.put_members([Member("a", 1, tier=2)])
    assert writer.member("a").tier == 2
    assert {m.member_id: m.tier for m in writer.members(["a", "b"], ordered=True)} == {"a": 2, "b": 0}
    writer.commit()
    assert store.member("a").tier == 2
    assert [e.seq for e in store.ledger("a")] == [1]


def test_a_store_over_its_mapped_budget_drops_the_pages_and_reads_every_member_right(disk_tmp_path):
    """Over its budget the writer unmaps LMDB's pages before its next batch (storage/mapped_pages.py):
    the process's file-backed memory falls by the store's size, and the pages fault back in with
    the same bytes: every member reads back as written, through the store, through a writer, and
    through a read transaction that was open across the drop. (On a disk: on tmpfs the pages are
    not file-backed memory.)"""
    store = ShardStore(disk_tmp_path, "relaxed", mapped_budget=1)  # over it before every batch
    members = [Member(f"m{i:06d}", 20_000, points=i, ledger_seq=i % 7) for i in range(20_000)]
    for start in range(0, len(members), 10_000):
        commit(store, members[start:start + 10_000], [])
    with store.env.begin(db=store.dbs["members"], buffers=True) as snapshot:
        held = snapshot.get(b"m000123")
        assert list(store.members()) == members  # every page of the members mapped
        mapped, drops = file_resident_bytes(), store.mapping_drops
        writer = store.writer()
        assert store.mapping_drops == drops + 1
        assert file_resident_bytes() < mapped - store.bytes_of("members") // 2
        assert member_of(held) == members[123]  # the snapshot's page, faulted back in
    assert writer.members([m.member_id for m in members[::97]]) == members[::97]
    writer.txn.abort()
    assert [store.member(m.member_id) for m in members] == members
    store.close()


def test_a_refused_unmapping_costs_no_batch_and_is_said_once(tmp_path, monkeypatch, caplog):
    """madvise can be refused (a kernel without it, a seccomp profile): the batch still commits,
    the store stops asking and logs why, once."""
    def refused(path):
        raise OSError(1, f"madvise(MADV_DONTNEED) of {path}: Operation not permitted")
    monkeypatch.setattr("storage.shard_store.drop_mapping", refused)
    store = ShardStore(tmp_path, "relaxed", mapped_budget=1)
    members = [Member(f"m{i}", 20_000, points=i) for i in range(3)]
    commit(store, members[:2], [])
    commit(store, members[2:], [])
    assert [store.member(m.member_id) for m in members] == members
    assert store.mapped_budget == 0
    assert store.mapping_drops == 0
    assert [r.getMessage() for r in caplog.records if "madvise" in r.getMessage()] == [
        f"[Errno 1] madvise(MADV_DONTNEED) of {tmp_path / 'data.mdb'}: Operation not permitted; "
        "mapped pages are no longer given back (memory grows with reads)"]


def test_why_a_shard_is_down_is_one_plain_line():
    # Ray colours its errors: `patron status` showed the escapes (an outside probe)
    from actors.coordinator import _why_down

    coloured = RuntimeError("\x1b[36mActorDiedError\x1b[0m: the actor died in its creation task\nmore detail")
    assert _why_down(coloured) == "RuntimeError: ActorDiedError: the actor died in its creation task"
    assert _why_down(TimeoutError()) == "it did not answer within 5 s (restarting, or too busy)"


def test_the_days_transactions_read_for_the_anomaly_report_are_those_counted_in_its_sum():
    """As the engine's history (engine/scoring.py): what gave points, or whose points were blocked."""
    def record(kind: str, points: int, reason: str = "") -> TxnRecord:
        return TxnRecord("m1", kind, 1, points, 0, reason, 1)

    counted = [record("purchase", 60), record("purchase", 0, "blocked"), record("recharge", 30)]
    not_counted = [record("event", 0, "capped"), record("purchase", 0, "frozen"), record("recharge", 0),
                   record("redeem", -5)]
    assert [remembered(r) for r in counted + not_counted] == [True] * 3 + [False] * 4


def test_a_checkpoints_failure_counts_until_a_newer_checkpoint_and_an_older_note_for_nothing(tmp_path):
    """A note a crash left beside the checkpoint that succeeded after it, or one a folder restored
    from a backup brought back, must not say the last checkpoint failed."""
    import os

    from storage.checkpoints import FAILURE, Manifest, last_checkpoint_failure, note_checkpoint_failure
    from storage.folder import DataFolder

    folder = DataFolder(tmp_path / "data")
    assert last_checkpoint_failure(folder) == 0
    failed = note_checkpoint_failure(folder, "OSError: no room")
    assert failed == last_checkpoint_failure(folder) > 0
    made = folder.checkpoints / "20261205T000000000000Z"
    made.mkdir()
    (made / "manifest.json").write_bytes(msgspec.json.encode(Manifest(made.name, "2026-12-05T00:00:00+00:00", "",
                                                                      1, 1, 0)))
    newer = datetime(2026, 12, 5, tzinfo=UTC).timestamp()
    os.utime(folder.checkpoints / FAILURE, (newer - 60, newer - 60))  # noted a minute before that checkpoint
    assert last_checkpoint_failure(folder) == 0
    os.utime(folder.checkpoints / FAILURE, (newer + 60, newer + 60))
    assert last_checkpoint_failure(folder) == newer + 60


def _holding(data: Path):
    """A process that holds `data` as serve does (its serve.pid), and sleeps."""
    import subprocess
    import sys

    claimed = "import os, sys, time; from pathlib import Path; from storage.folder import DataFolder; " \
              "DataFolder(Path(sys.argv[1])).claim(os.getpid()); print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", claimed, str(data)], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).parents[1])
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_served_folder_is_held_by_its_process_not_by_another_given_its_number_since(tmp_path):
    """serve.pid keeps its process's start: after a reboot a server's number may be a shell's, and
    the folder was refused as "served by process N", telling the operator to stop that shell."""
    from storage.folder import DataFolder

    holder = _holding(tmp_path / "data")
    try:
        folder = DataFolder(tmp_path / "data")
        with pytest.raises(RuntimeError, match=f"is served by process {holder.pid}"):
            folder.claim(12345678)
        marker = tmp_path / "data" / "serve.pid"
        pid, started = marker.read_text().split()
        marker.write_text(f"{pid} {int(started) + 1}")  # its number, but another process's start
        folder.claim(12345678)
        assert marker.read_text().split()[0] == "12345678"
    finally:
        holder.kill()
        holder.communicate()


def test_a_data_folder_patron_made_an_empty_one_or_a_new_one_can_be_served_and_no_other():
    from storage.folder import serve_problem

    def folder(name: str, *holds: str) -> Path:
        root = Path(tempfile.mkdtemp()) / name
        root.mkdir()
        for held in holds:
            (root / held).write_text("")
        return root

    assert serve_problem(Path(tempfile.mkdtemp()) / "new") == ""
    assert serve_problem(folder("empty")) == ""
    assert serve_problem(folder("served", "layout.json", "data-id", "notes.txt")) == ""  # a deployment's own notes
    assert serve_problem(folder("mount", ".hidden", "lost+found")) == ""  # a filesystem's root
    assert serve_problem(folder("cut", "serve.pid.tmp")) == ""  # a first start killed mid-write
    assert "holds files that are not patron's (notes.txt)" in serve_problem(folder("mine", "notes.txt"))
    assert "is a checkpoint" in serve_problem(folder("checkpoint", "manifest.json", "layout.json"))


def test_a_checkpoint_a_shard_failed_is_noted_in_words_not_as_rays_traceback(tmp_path):
    """last-failure.json held Ray's wrapper of the shard's error: its traceback in colour, actor
    ids and a repr (an outside probe of the operations guide)."""
    from types import SimpleNamespace

    from ray.exceptions import RayTaskError

    from actors.coordinator import Coordinator
    from actors.metrics import Metrics
    from engine.errors import StorageFullError
    from storage.checkpoints import FAILURE
    from storage.folder import DataFolder

    folder = DataFolder(tmp_path / "data")
    traceback = "Traceback (most recent call last):\n  \x1b[36mray::ShardActor\x1b[39m"
    wrapped = RayTaskError("ShardActor.checkpoint", traceback, StorageFullError("the disk is full"))
    wrapped = wrapped.as_instanceof_cause()
    Coordinator._checkpoint_failed(SimpleNamespace(metrics=Metrics(), folder=folder), wrapped)
    assert json.loads((folder.checkpoints / FAILURE).read_text())["error"] == "StorageFullError: the disk is full"


def test_a_folder_whose_server_was_killed_and_not_yet_reaped_is_free(tmp_path):
    # a start a second after a kill -9 was refused as "served by process N": N was a zombie
    import os
    import signal
    import time

    from storage import folder as folder_module
    from storage.folder import DataFolder

    holder = _holding(tmp_path / "data")
    try:
        os.kill(holder.pid, signal.SIGKILL)  # killed; Popen has not waited for it: a zombie
        deadline = time.monotonic() + 10
        while folder_module._stat(holder.pid)[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        DataFolder(tmp_path / "data").claim(12345678)
    finally:
        holder.kill()
        holder.communicate()
