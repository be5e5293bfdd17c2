"""Moving a virtual shard at the storage level, on real LMDB: the export holds exactly the records
of that virtual shard's members, the destination keeps them (ledgers re-chained at its own
positions), the source keeps everything else."""

import tempfile
import zlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.anomaly_report import AnomalyRow
from engine.ledger import LedgerEntry
from engine.members import Member
from engine.transactions import TxnRecord
from storage import vshard_move
from storage.codecs import decode_keys, decode_txn, wakeup_of
from storage.shard_store import ShardStore

VIRTUAL = 4
MEMBERS = [f"m{n}" for n in range(12)]


def vshard(member_id: str) -> int:
    return zlib.crc32(member_id.encode()) % VIRTUAL


def fill(store: ShardStore, history: list[list[tuple[str, int]]], tag: str) -> None:
    """Commits of (member, entries) pairs; each entry also indexes a transaction, flags an
    anomaly and wakes the member up on a day of its own."""
    seqs: dict[str, int] = {}
    for number, parts in enumerate(history):
        writer = store.writer()
        members, entries, rows, wakeups = {}, [], [], []
        for member_id, count in parts:
            for _ in range(count):
                seqs[member_id] = seq = seqs.get(member_id, 0) + 1
                entries.append(LedgerEntry(member_id, seq, 20_000 + number, "txn", f"{tag}-{member_id}-{seq}",
                                           1, "earn", points=seq))
                writer[(member_id, f"{tag}-{member_id}-{seq}")] = TxnRecord(member_id, "purchase", 20_000 + number,
                                                                            seq, 0, "", 1)
            members[member_id] = Member(member_id, 20_000, points=sum(range(seqs[member_id] + 1)))
            rows.append(AnomalyRow(member_id, f"2026-11-{10 + number % 9:02d}", seqs[member_id], [tag]))
            wakeups.append((20_100 + number, member_id))
        writer.put_members(members.values())
        writer.put_ledger(entries)
        writer.put_anomalies(rows)
        writer.put_wakeups(wakeups)
        writer.commit()


def contents(store: ShardStore) -> dict[str, tuple]:
    """Everything the store keeps, per member."""
    found: dict[str, tuple] = {}
    with store.env.begin() as txn:
        index = [decode_txn(v) for _, v in txn.cursor(db=store.dbs["txn_index"])]
        pairs = sorted(p for _, v in txn.cursor(db=store.dbs["txn_days"]) for p in decode_keys(v))
        rows = [bytes(k) for k in txn.cursor(db=store.dbs["anomalies"]).iternext(values=False)]
        wakeups = [wakeup_of(k) for k in txn.cursor(db=store.dbs["wakeups"]).iternext(values=False)]
        ledger_size = txn.stat(store.dbs["ledger"])["entries"]
    for member in store.members():
        m = member.member_id
        found[m] = (member, store.ledger(m), sorted((r.day, r.points) for r in index if r.member_id == m),
                    [p for p in pairs if p[0] == m], [k for k in rows if k.endswith(b"\x00" + m.encode())],
                    sorted(w for w in wakeups if w[1] == m))
    total = sum(len(found[m][1]) for m in found)
    assert ledger_size == total, "a ledger entry no member leads to"
    assert len(index) == len(pairs) == sum(len(found[m][2]) for m in found), "an index record of nobody"
    return found


histories = st.lists(st.lists(st.tuples(st.sampled_from(MEMBERS), st.integers(1, 3)), min_size=1, max_size=6),
                     min_size=1, max_size=6)


@settings(max_examples=25, deadline=None)
@given(histories, histories, st.sets(st.integers(0, VIRTUAL - 1), min_size=1, max_size=2))
def test_a_virtual_shard_moves_whole_and_alone(source_history, destination_history, moving):
    with tempfile.TemporaryDirectory() as folder:
        source, destination = ShardStore(Path(folder) / "a"), ShardStore(Path(folder) / "b")
        fill(source, source_history, "a")
        # the destination's members are of other virtual shards, so positions there are taken
        fill(destination, [[(m, n) for m, n in parts if vshard(m) not in moving] for parts in destination_history],
             "b")
        before_source, before_destination = contents(source), contents(destination)

        records = vshard_move.export(source, frozenset(moving), VIRTUAL)
        assert sorted(m.member_id for m in records.members) == sorted(m for m in before_source if vshard(m) in moving)
        writer = destination.writer()
        vshard_move.put(writer, records)
        writer.commit()
        writer = source.writer()
        gone = vshard_move.delete(writer, frozenset(moving), VIRTUAL)
        writer.commit()

        moved = {m: found for m, found in before_source.items() if vshard(m) in moving}
        assert gone == len(moved)
        assert contents(source) == {m: found for m, found in before_source.items() if vshard(m) not in moving}
        after = contents(destination)
        assert {m: found for m, found in after.items() if vshard(m) not in moving} == before_destination
        for member_id, (member, ledger, index, pairs, rows, wakeups) in moved.items():
            assert after[member_id][:3] == (member, ledger, index)
            assert after[member_id][3:] == (pairs, rows, wakeups)
        source.close()
        destination.close()


def test_moving_nothing_changes_nothing(tmp_path):
    store = ShardStore(tmp_path / "a")
    fill(store, [[("m1", 2), ("m2", 1)]], "a")
    before = contents(store)
    empty = [v for v in range(VIRTUAL) if v not in {vshard("m1"), vshard("m2")}]
    records = vshard_move.export(store, frozenset(empty), VIRTUAL)
    assert (records.members, records.ledger, records.index, records.anomalies, records.wakeups) == ([], [], [], [], [])
    writer = store.writer()
    assert vshard_move.delete(writer, frozenset(empty), VIRTUAL) == 0
    writer.commit()
    assert contents(store) == before
    store.close()


def test_a_days_report_lists_each_member_once_while_its_rows_are_on_both_shards(tmp_path):
    # between the destination's put and the source's delete the rows are on both: a report read
    # then listed the moved members twice
    from actors.coordinator import merged_rows

    source, destination = ShardStore(tmp_path / "a"), ShardStore(tmp_path / "b")
    fill(source, [[(m, 1) for m in MEMBERS]], "a")
    moving = frozenset({vshard("m1")})
    writer = destination.writer()
    vshard_move.put(writer, vshard_move.export(source, moving, VIRTUAL))
    writer.commit()
    day = "2026-11-10"
    report = merged_rows([source.anomalies(day), destination.anomalies(day)])
    assert [row.member_id for row in report] == sorted(MEMBERS)
    assert report == sorted(source.anomalies(day), key=lambda row: row.member_id)
    source.close()
    destination.close()
