"""The member table with its two logs in front (storage/member_table.py) reads as one table keyed
by member would: every read, in any transaction, gives each member's newest record; the logs stay
bounded and every logged member reaches the table."""

import lmdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import member_table
from storage.member_table import DATABASES, SLICES, MemberTable

KEYS = st.sampled_from([f"m{n:03d}".encode() for n in range(60)])
# a commit: members deleted first or last (a virtual shard's move deletes, then its commit writes),
# members written (a record each, the newest wins)
COMMITS = st.lists(st.tuples(st.booleans(), st.lists(st.tuples(KEYS, st.binary(min_size=1, max_size=40)), max_size=25),
                             st.lists(KEYS, max_size=3)), min_size=1, max_size=40)


def opened(path) -> tuple[lmdb.Environment, MemberTable]:
    env = lmdb.open(str(path), map_size=1 << 26, max_dbs=6)
    table = MemberTable(env.open_db(b"members"), [env.open_db(name) for name in DATABASES], env.open_db(b"meta"))
    return env, table


def commit(env: lmdb.Environment, table: MemberTable, written: list, deleted: list, first: bool = False) -> None:
    with env.begin(write=True) as txn:
        reader = table.reader(txn)  # made at the write's start, as a BatchWriter's is
        if first:
            for key in deleted:
                table.delete(txn, key)
        table.put(txn, list(dict(written).items()))
        if not first:
            for key in deleted:
                table.delete(txn, key)
        for key, record in dict(written).items():
            if key not in deleted or first:
                assert reader.get(key) == record


def read_back(env: lmdb.Environment, table: MemberTable) -> tuple[dict, dict, list]:
    with env.begin(buffers=True) as txn:
        listed = list(table.items(txn))
        reader = table.reader(txn)
        each = {key: reader.get(key) for key in (f"m{n:03d}".encode() for n in range(60))}
        alone = {key: table.get(txn, key) for key in each}  # a read outside a write
        assert {key: bytes(raw) for key, raw in alone.items() if raw is not None} == {
            key: bytes(raw) for key, raw in each.items() if raw is not None}
        many = reader.getmulti(sorted(key for key, _ in listed))
    return dict(listed), {key: bytes(raw) for key, raw in each.items() if raw is not None}, many


@pytest.fixture
def short_logs():
    """Logs that swap every 3 commits, so that a few commits place, drop and swap them."""
    kept = member_table.SLICES
    member_table.SLICES = 3
    yield
    member_table.SLICES = kept


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(COMMITS)
def test_every_read_gives_each_member_s_newest_record_as_one_table_would(tmp_path_factory, short_logs, commits):
    env, table = opened(tmp_path_factory.mktemp("members"))
    model: dict[bytes, bytes] = {}
    for first, written, deleted in commits:
        commit(env, table, written, deleted, first)
        if first:
            for key in deleted:
                model.pop(key, None)
        model.update(dict(written))
        if not first:
            for key in deleted:
                model.pop(key, None)
        listed, each, many = read_back(env, table)
        assert listed == model
        assert list(listed) == sorted(model)
        assert each == model
        assert many == sorted(model.items())
        with env.begin() as txn:  # the table's keys are the members stored (a count needs no log)
            assert [bytes(k) for k in txn.cursor(db=table.table).iternext(values=False)] == sorted(model)
    env.close()


def logged(env: lmdb.Environment, table: MemberTable) -> tuple[int, int]:
    """Records in both logs, entries in both indexes."""
    with env.begin() as txn:
        counts = [txn.stat(db)["entries"] for pair in table.logs for db in pair]
    return counts[0] + counts[2], counts[1] + counts[3]


def test_the_logs_stay_bounded_and_every_logged_member_reaches_the_table(tmp_path):
    env, table = opened(tmp_path)
    members = [f"m{n:04d}".encode() for n in range(2_000)]
    commit(env, table, [(key, b"v0") for key in members], [])  # new members: in the table at once
    assert logged(env, table) == (0, 0)
    sizes = []
    for round_ in range(1, 200):  # each commit rewrites a tenth of the members
        commit(env, table, [(key, b"v%d" % round_) for key in members[round_ % 10::10]], [])
        sizes.append(logged(env, table)[0])
    assert max(sizes) <= 2 * SLICES * 200  # the records of the last two logs' commits at most
    assert min(sizes[2 * SLICES:]) >= SLICES * 200  # a log is dropped whole, not emptied as it goes
    for _ in range(2 * SLICES):  # commits that write nothing still place, and the logs swap
        commit(env, table, [], [])
    assert logged(env, table) == (0, 0)
    with env.begin() as txn:
        stored = dict(txn.cursor(db=table.table))
    assert stored == {key: b"v%d" % max(r for r in range(1, 200) if r % 10 == n % 10) for n, key in enumerate(members)}
    env.close()


def test_a_log_s_last_share_places_all_it_holds_though_deletes_shrank_the_shares(tmp_path):
    """Each share is a twentieth of the closed log's index as it is then: members placed and then
    deleted (a virtual shard's move) make the later shares smaller, and without the last commit
    placing all that is left, the log would be dropped holding members' newest records."""
    env, table = opened(tmp_path)
    members = [f"m{n:03d}".encode() for n in range(40)]
    commit(env, table, [(key, b"old") for key in members], [])  # in the table
    commit(env, table, [(key, b"new") for key in members], [])  # logged
    while logged(env, table) != (40, 40) or _open_for(env, table) != 0:  # until the logs swap
        commit(env, table, [], [])
    for _ in range(SLICES // 2):  # half of the closed log placed, in key order: m000..m019
        commit(env, table, [], [])
    commit(env, table, [], members[:20])  # those placed leave
    for _ in range(SLICES):
        commit(env, table, [], [])
    with env.begin() as txn:
        assert dict(table.items(txn)) == {key: b"new" for key in members[20:]}
    env.close()


def _open_for(env: lmdb.Environment, table: MemberTable) -> int:
    with env.begin() as txn:
        state = txn.get(b"member_logs", db=table.meta)
    return state[1] if state is not None else 0


# the logs' loops compiled (storage/row_packer.pyx) against the pure ones, their specification
needs_compiled = pytest.mark.skipif(not member_table.COMPILED_LOGS, reason="storage/row_packer is not built")


@needs_compiled
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(KEYS, st.binary(max_size=12)), max_size=30), st.sets(KEYS),
       st.sampled_from([0, 1, 255, 2**32, 2**64 - 40, 2**64 - 3, 2**64 - 1]))
def test_the_compiled_split_gives_the_pure_rows(records, stored, position):
    def split(split_with):
        try:
            return split_with(records, stored.__contains__, position)
        except OverflowError:  # past 2**64 - 1: both refuse
            return "overflow"
    assert split(member_table.logged_or_fresh) == split(member_table.logged_or_fresh_pure)


@needs_compiled
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(KEYS, st.binary(max_size=12)), max_size=30),
       st.sampled_from([0, 1, 255, 2**32, 2**64 - 40, 2**64 - 3, 2**64 - 1]))
def test_the_compiled_log_rows_give_the_pure_rows(records, position):
    def logged(log_with):
        try:
            return log_with(records, position)
        except OverflowError:  # past 2**64 - 1: both refuse
            return "overflow"
    assert logged(member_table.logged_rows) == logged(member_table.logged_rows_pure)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(COMMITS)
def test_members_put_as_known_are_stored_as_members_looked_up(tmp_path_factory, short_logs, commits):
    """A commit that says which members the table holds (`put` with `fresh`) stores every byte as
    one that has each looked up, and a member read with `stored` is as read with `get`."""
    stores = []
    for known in (False, True):
        env, table = opened(tmp_path_factory.mktemp("known"))
        for first, written, deleted in commits:
            with env.begin(write=True) as txn:
                reader = table.reader(txn)
                if first:
                    for key in deleted:
                        table.delete(txn, key)
                records = list(dict(written).items())
                for key, _ in records:
                    assert reader.stored(key) == reader.get(key)
                if known:
                    in_table = txn.cursor(db=table.table)
                    table.put(txn, [r for r in records if in_table.set_key(r[0])],
                              [r for r in records if not in_table.set_key(r[0])])
                else:
                    table.put(txn, records)
                if not first:
                    for key in deleted:
                        table.delete(txn, key)
        with env.begin() as txn:
            stores.append([list(txn.cursor(db=db)) for db in (table.table, table.meta, *table.logs[0], *table.logs[1])])
        env.close()
    assert stores[0] == stores[1]


@needs_compiled
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(KEYS, unique=True, min_size=1, max_size=30), st.integers(0, 40), st.booleans(), st.data())
def test_the_compiled_placing_gives_the_pure_rows(tmp_path_factory, keys, quota, whole, data):
    env = lmdb.open(str(tmp_path_factory.mktemp("placing")), map_size=1 << 24, max_dbs=4)
    log, logged = env.open_db(b"log"), env.open_db(b"logged")
    lost = data.draw(st.sets(st.sampled_from(keys)))  # index entries whose record is not in the log
    with env.begin(write=True) as txn:
        for position, key in enumerate(sorted(keys), 1):
            at = position.to_bytes(8, "big")
            txn.put(key, at, db=logged)
            if key not in lost:
                txn.put(at, b"record of " + key, db=log)
    start = data.draw(st.sampled_from(sorted(keys)))

    def placed(place_with):
        with env.begin() as txn:
            index = txn.cursor(db=logged)
            assert index.set_key(start)
            try:
                rows = place_with(index, txn.cursor(db=log).get, quota, whole)
            except RuntimeError as error:
                return str(error)
            return rows, index.key()  # and where the cursor was left
    assert placed(member_table.placed_records) == placed(member_table.placed_records_pure)
    env.close()


@needs_compiled
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(COMMITS)
def test_the_compiled_logs_store_the_pure_bytes(tmp_path_factory, short_logs, commits):
    """Every database, the logs too, byte for byte after the same commits."""
    stores = []
    for pure in (False, True):
        env, table = opened(tmp_path_factory.mktemp("members"))
        kept = member_table.logged_or_fresh, member_table.placed_records
        if pure:
            member_table.logged_or_fresh, member_table.placed_records = (member_table.logged_or_fresh_pure,
                                                                         member_table.placed_records_pure)
        try:
            for first, written, deleted in commits:
                commit(env, table, written, deleted, first)
        finally:
            member_table.logged_or_fresh, member_table.placed_records = kept
        with env.begin() as txn:
            stores.append([list(txn.cursor(db=db)) for db in (table.table, table.meta, *table.logs[0], *table.logs[1])])
        env.close()
    assert stores[0] == stores[1]
