"""A shard that keeps only a few members in memory gives exactly what one that keeps them all
gives: the same answers, the same stored members and ledger, the same counts, on a mixed stream
of purchases, refunds, events, spending, operators' changes, midnight runs, publishing and
restarts. Both run on real LMDB, driven without Ray."""

import tempfile
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.shard import Shard, ShardConfig
from engine.calendar import iso, parse_day
from engine.errors import PatronError, StorageFullError
from engine.operators import Enrollment
from tests.builders import buy, line, ms
from tests.engine.test_invariants import EXAMPLE, _make, changed, lines

START = "2026-11-17"
MEMBERS = ("a", "b", "c", "d", "e", "f")
HOT = 2
PUBLISHED = (
    changed(EXAMPLE, ("version = 1", "version = 2"), ("threshold = 10000", "threshold = 300")),  # tiers change
    changed(EXAMPLE, ("version = 1", "version = 3"), ("threshold = 10000", "threshold = 300"),
            ("pending_days = 0", "pending_days = 1")),  # tiers as before: no re-evaluation
)


@st.composite
def steps(draw) -> list[tuple]:
    """What a shard is asked, in order: batches dated on the business day, midnight runs,
    publishes, restarts, reads and operators' changes."""
    plan: list[tuple] = []
    day, number, earlier, published = parse_day(START), 0, [], 0
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["batch"] * 5 + ["midnight"] * 2 + ["restart", "read", "operator", "publish"]))
        if kind == "batch":
            at = ms(f"{iso(day)} 08:00")
            batch = []
            for _ in range(draw(st.integers(1, 6))):
                at += draw(st.integers(0, 3_600_000))
                txn_kind = draw(st.sampled_from(["purchase"] * 4 + ["refund", "event", "recharge", "adjustment",
                                                                     "redeem", "payment", "coupon_issue",
                                                                     "coupon_use"]))
                txn = _make(draw, f"t{number}", draw(st.sampled_from(MEMBERS)), at, txn_kind, earlier)
                number += 1
                earlier.append(txn)
                batch.append(txn)
            plan.append(("batch", batch))
        elif kind == "midnight":
            day += 1
            plan.append(("midnight", day))
        elif kind == "publish":
            if published < len(PUBLISHED):
                plan.append(("publish", PUBLISHED[published]))
                published += 1
        elif kind == "read":
            plan.append(("read", draw(st.sampled_from(MEMBERS)), draw(st.lists(lines, min_size=1, max_size=2)),
                         ms(f"{iso(day)} 12:00")))
        elif kind == "operator":
            plan.append(("operator", draw(st.sampled_from((*MEMBERS, "new"))), draw(st.integers(0, 3)), number))
            number += 1
        else:
            plan.append(("restart",))
    return plan


def _do(shard: Shard, step: tuple) -> object:
    """One step; its answer as plain data (an error as its type and message)."""
    kind = step[0]
    try:
        if kind == "batch":
            return shard.apply(step[1])
        if kind == "midnight":  # a bounded shard finds whom to visit in LMDB: the anomaly rows must agree
            shard.midnight_begin(step[1])
            rows = []
            while True:
                _, days, finished = shard.midnight_step(limit=2)
                rows += days
                if finished:
                    return rows
        if kind == "publish":
            answer = [shard.publish(step[1])]
            while not (done := shard.reevaluate_step(limit=2))[1]:
                answer.append(done)
            return answer
        if kind == "read":
            member_id, basket, at_ms = step[1:]
            return [shard.member(member_id), shard.reads.member(member_id), shard.reads.quote(member_id, basket, at_ms),
                    shard.reads.coupons(member_id), shard.ledger(member_id, 0, 0)]
        if kind == "operator":
            return _operator(shard, *step[1:])
    except PatronError as error:
        return (type(error).__name__, str(error))
    raise AssertionError(step)


def _operator(shard: Shard, member_id: str, which: int, number: int) -> object:
    if which == 0:
        return shard.enroll(Enrollment(member_id=f"{member_id}{number}", birthday="11-20"))
    if which == 1:
        return shard.set_tags(member_id, ["vip"], [], "test")
    if which == 2:
        return shard.adjust(member_id, f"adj{number}", 250, "goodwill")
    return shard.enroll_many([Enrollment(member_id=member_id), Enrollment(member_id=f"{member_id}-x{number}")])


def _open(path: Path, hot: int) -> Shard:
    """A midnight step of two members goes in two parts (`ShardConfig.midnight_part`)."""
    return Shard(ShardConfig(0, str(path), EXAMPLE, start_day=parse_day(START), hot_members=hot, midnight_part=1))


def _state(shard: Shard) -> dict:
    """Everything a shard shows: stored members and their ledgers, counts, liability, anomalies."""
    status = shard.status()
    members = list(shard.store.members())
    return {
        "members": members,
        "ledgers": {m.member_id: shard.ledger(m.member_id) for m in members},
        "status": (status.members, status.business_day, status.rule_version, status.tags, status.stored_value,
                   status.bonus_value),
        "liability": shard.liability(),
        "stock": shard.book.stock.taken,
        "anomalies": [shard.anomalies(f"2026-11-{d}") for d in range(17, 30)],
    }


def _plain(value: object) -> object:
    return msgspec.to_builtins(value, builtin_types=(bytes,), str_keys=True)


@settings(max_examples=40, deadline=None)
@given(plan=steps())
def test_a_tiny_hot_set_answers_exactly_as_every_member_in_memory(plan):
    with tempfile.TemporaryDirectory() as folder:
        every, hot = _open(Path(folder) / "all", 0), _open(Path(folder) / "hot", HOT)
        try:
            for step in plan:
                if step[0] == "restart":
                    every.close()
                    hot.close()
                    every, hot = _open(Path(folder) / "all", 0), _open(Path(folder) / "hot", HOT)
                    continue
                assert _plain(_do(hot, step)) == _plain(_do(every, step)), step
                assert hot.members.held() <= HOT
            assert _plain(_state(hot)) == _plain(_state(every))
        finally:
            every.close()
            hot.close()


def test_members_leave_memory_and_come_back_from_lmdb(tmp_path):
    shard = _open(tmp_path, 1)
    shard.apply([buy("t1", "m1", f"{START} 10:00", line(2900)), buy("t2", "m2", f"{START} 10:00", line(5000))])
    assert shard.members.held() == 1
    before = shard.members.loads
    assert shard.member("m1").points == 20  # m2 was used last: m1 is read from LMDB again
    assert shard.members.loads == before + 1
    shard.apply([buy("t3", "m1", f"{START} 11:00", line(1000))])
    assert shard.member("m1").points == 30
    assert shard.member("nobody") is None
    assert shard.status().members == 2
    shard.close()
    assert _open(tmp_path, 0).member("m1").points == 30


def test_a_failed_batch_puts_back_cold_members_as_lmdb_has_them(tmp_path):
    shard = Shard(ShardConfig(0, str(tmp_path), EXAMPLE, start_day=parse_day(START), map_bytes=256 << 10,
                              max_map_bytes=256 << 10, hot_members=2))
    shard.apply([buy("t0", "m1", f"{START} 10:00", line(2900))])
    huge = [buy(f"t{n}", f"m{n % 3}", f"{START} 10:00", line(1000)) for n in range(2, 4000)]
    with pytest.raises(StorageFullError):
        shard.apply(huge)
    assert shard.members.held() <= 2
    assert shard.member("m1").points == 20
    assert shard.member("m2") is None
    assert sum(shard.liability().values()) == 20
    assert [r.points for r in shard.apply([buy("t9", "m1", f"{START} 11:00", line(1000))])] == [10]
    assert sum(shard.liability().values()) == 30


def test_a_midnight_step_that_fails_after_its_parts_left_memory_puts_back_the_totals(tmp_path):
    """A step writes out each part and lets the members it read leave memory before it commits:
    when the commit cannot be made, the liability and tag counts are the last commit's again,
    and the members still held are as LMDB has them."""
    rules = EXAMPLE.replace("pending_days = 0", "pending_days = 1")  # the run releases points: liability moves
    shard = Shard(ShardConfig(0, str(tmp_path), rules, start_day=parse_day(START), map_bytes=256 << 10,
                              max_map_bytes=256 << 10, hot_members=2, midnight_part=1))
    members = 0
    while True:  # big spenders (tagged so by the run) until the map is full
        try:
            shard.apply([buy(f"t{n}", f"m{n}", f"{START} 10:00", line(600_000)) for n in range(members, members + 20)])
        except StorageFullError:
            break
        members += 20
    liability, tags = shard.liability(), dict(shard.book.tag_counts)
    assert shard.midnight_begin(parse_day("2026-11-18")) == members
    with pytest.raises(StorageFullError):
        shard.midnight_step(limit=members)
    assert (shard.liability(), shard.book.tag_counts) == (liability, tags) == ({}, {})
    assert 0 < shard.members.held() <= 2
    assert all(shard.members.peek(m) == shard.store.member(m) for m in (f"m{n}" for n in range(members))
               if shard.members.peek(m) is not None)


def _indexing_logged(caplog) -> bool:
    return any("reading every member" in record.getMessage() for record in caplog.records)


def test_a_bounded_start_reads_no_member_and_a_folder_written_otherwise_is_indexed_once(tmp_path, caplog):
    rules = EXAMPLE.replace("pending_days = 0", "pending_days = 1")
    every = Shard(ShardConfig(0, str(tmp_path), rules, start_day=parse_day(START)))
    every.apply([buy(f"t{n}", f"m{n}", f"{START} 10:00", line(2900 * n)) for n in range(1, 8)])
    every.set_tags("m1", ["vip"], [], "test")
    every.close()
    caplog.set_level("INFO", logger="patron.shard")
    hot = Shard(ShardConfig(0, str(tmp_path), rules, start_day=parse_day(START), hot_members=2))
    assert _indexing_logged(caplog)  # written with every member in memory: no totals record yet
    assert (hot.status().tags, hot.members.held()) == ({"vip": 1}, 0)
    hot.apply([buy("t9", "m9", f"{START} 11:00", line(1000))])
    hot.close()
    caplog.clear()
    again = Shard(ShardConfig(0, str(tmp_path), rules, start_day=parse_day(START), hot_members=2))
    assert not _indexing_logged(caplog)
    assert (again.members.held(), again.members.loads) == (0, 0)
    assert again.status().tags == {"vip": 1}
    assert again.liability() == {}  # every point is pending until the run of the 18th
    assert again.midnight_begin(parse_day("2026-11-18")) == 8  # found in the wake-up index
    while not again.midnight_step(limit=3)[2]:
        pass
    assert again.members.held() <= 2
    assert sum(again.liability().values()) == sum(again.member(f"m{n}").points for n in (*range(1, 8), 9)) > 0
    assert again.midnight_begin(parse_day("2026-11-19")) == 0  # nothing is due: nobody is read
    again.close()
    _open(tmp_path, 0).close()  # with every member in memory the index is not kept: it is dropped
    caplog.clear()
    _open(tmp_path, 2).close()
    assert _indexing_logged(caplog)


def test_a_restored_folder_is_indexed_at_its_first_bounded_start_only(tmp_path, caplog):
    # an outside probe: after `patron restore` (which gives the shards an event floor), each start
    # wrote the floor again, which moved LMDB past the totals' stamp: every start read every member
    def start() -> Shard:
        return Shard(ShardConfig(0, str(tmp_path), EXAMPLE, start_day=parse_day(START), hot_members=2,
                                 event_floor=50))

    every = Shard(ShardConfig(0, str(tmp_path), EXAMPLE, start_day=parse_day(START)))
    every.apply([buy(f"t{n}", f"m{n}", f"{START} 10:00", line(2900)) for n in range(1, 5)])
    every.close()
    caplog.set_level("INFO", logger="patron.shard")
    start().close()
    assert _indexing_logged(caplog)
    for _ in range(2):
        caplog.clear()
        start().close()
        assert not _indexing_logged(caplog)


def test_a_bounded_midnight_run_cut_short_by_a_crash_resumes_where_it_stopped(tmp_path):
    rules = EXAMPLE.replace("pending_days = 0", "pending_days = 1")
    shard = Shard(ShardConfig(0, str(tmp_path), rules, start_day=parse_day(START), hot_members=1))
    shard.apply([buy(f"t{n}", f"m{n}", f"{START} 10:00", line(2900)) for n in range(4)])
    shard.midnight_begin(parse_day("2026-11-18"))
    shard.midnight_step(limit=3)  # three members released; then the process dies
    shard.store.env.close()
    again = Shard(ShardConfig(0, str(tmp_path), rules, start_day=parse_day(START), hot_members=1))
    assert again.midnight_begin(parse_day("2026-11-18")) == 1  # the index lost the three visited
    while not again.midnight_step(limit=3)[2]:
        pass
    assert [again.member(f"m{n}").points for n in range(4)] == [20, 20, 20, 20]
    assert [e.kind for e in again.ledger("m0")].count("release") == 1


def test_a_midnight_run_over_cold_members_leaves_the_hot_ones_in_memory(tmp_path):
    rules = EXAMPLE.replace("pending_days = 0", "pending_days = 1")
    shard = _open(tmp_path, 2)
    shard.apply([buy(f"t{n}", f"c{n}", f"{START} 10:00", line(2900)) for n in range(8)])
    shard.close()
    shard = Shard(ShardConfig(0, str(tmp_path), rules, start_day=parse_day(START), hot_members=2))
    shard.apply([buy("h1", "c1", f"{START} 11:00", line(1000)), buy("h2", "c2", f"{START} 11:00", line(1000))])
    assert shard.midnight_begin(parse_day("2026-11-18")) == 8
    while not shard.midnight_step(limit=3)[2]:
        pass
    assert {m for m in (f"c{n}" for n in range(8)) if shard.members.peek(m)} == {"c1", "c2"}
    assert shard.members.loads == 2 + 6  # each cold member read once, by the run
    assert [shard.member(f"c{n}").points for n in (0, 1)] == [20, 30]


def test_members_read_from_lmdb_share_their_id_and_common_strings(tmp_path):
    """What keeps a held member small: its key in memory is its own id, and a status, channel,
    birthday or campaign that many members have is one string for all of them, not a copy each."""
    shard = _open(tmp_path, 3)
    shard.enroll_many([Enrollment(member_id=f"m{n}", channel="app", birthday="03-14", campaign="spring")
                       for n in range(2)])
    shard.close()
    shard = _open(tmp_path, 3)
    first, second = shard.members.get("".join(["m", "0"])), shard.members.get("m1")  # read from LMDB
    assert shard.members.loads == 2
    assert first.status is second.status
    assert first.profile.channel is second.profile.channel
    assert first.profile.birthday is second.profile.birthday
    assert first.profile.campaign is second.profile.campaign
    assert next(key for key in shard.members._hot if key == "m0") is first.member_id
    assert shard.member("m0").member_id == "m0"
    shard.close()


def test_a_bounded_midnight_run_in_parts_keeps_heads_only_of_members_in_memory(tmp_path):
    """Each part's members leave memory inside the step's one write: its commit must not give
    them their heads back (`ShardStore.heads` would grow with every member the run visits)."""
    rules = EXAMPLE.replace("pending_days = 0", "pending_days = 1")
    shard = Shard(ShardConfig(0, str(tmp_path), rules, start_day=parse_day(START), hot_members=2, midnight_part=1))
    shard.apply([buy(f"t{n}", f"m{n}", f"{START} 10:00", line(2900)) for n in range(12)])
    assert shard.midnight_begin(parse_day("2026-11-18")) == 12
    while not shard.midnight_step(limit=12)[2]:
        pass
    held = {m for m in (f"m{n}" for n in range(12)) if shard.members.peek(m) is not None}
    assert set(shard.store.heads) <= held
    assert len(shard.store.heads) <= shard.members.capacity == 2
    assert [shard.member(f"m{n}").points for n in range(12)] == [20] * 12  # chained right after
