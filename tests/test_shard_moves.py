"""A shard's side of moving virtual shards, without Ray, on real LMDB: what each shard keeps in
memory after a move is what it computes from its store when it starts, and the destination
answers for the moved members as the source did (refunds, duplicates, ledgers)."""

from pathlib import Path

import pytest

from actors import shard_moves
from actors.routing import VIRTUAL_SHARDS, virtual_shard
from actors.shard import Shard, ShardConfig
from engine.calendar import parse_day
from engine.errors import MovedAwayError, OutOfOrderError
from engine.operators import Enrollment
from storage.codecs import rejected_rows
from tests.builders import buy, line, recharge, redeem, refund
from tests.parts import part, results_of
from tests.test_shard import DAY, RULES

MEMBERS = [f"m{n}" for n in range(40)]


def open_shard(path: Path, shard: int, hot_members: int) -> Shard:
    return Shard(ShardConfig(shard, str(path), RULES, start_day=parse_day("2026-11-17"), hot_members=hot_members))


def kept(shard: Shard) -> tuple:
    """What a shard keeps in memory about its members, as a restart would compute it (who the
    coming midnight runs visit: a restart plans the wake-ups a run would plan)."""
    status = shard.status()
    book = shard.book
    visited = set(book.awake).union(*book.wakeups.values())
    return (status.members, status.tags, status.stored_value, status.bonus_value, shard.liability(),
            {c: n for c, n in book.stock.taken.items() if n}, visited)


@pytest.mark.parametrize("hot_members", [0, 3])
def test_after_a_move_both_shards_keep_what_a_restart_computes(tmp_path, hot_members):
    source, destination = open_shard(tmp_path / "a", 0, hot_members), open_shard(tmp_path / "b", 1, hot_members)
    source.apply([buy(f"t-{m}", m, DAY, line(20_000 + 100 * n)) for n, m in enumerate(MEMBERS)])
    source.apply([recharge(f"r-{m}", m, DAY, 10_000) for m in MEMBERS[::3]])
    for m in MEMBERS[::4]:
        source.set_tags(m, ["vip"], [], "test")
    destination.apply([buy("t-other", "other", DAY, line(5_000))])
    moving = sorted({virtual_shard(m) for m in MEMBERS[:12]})
    moved = [m for m in MEMBERS if virtual_shard(m) in moving]
    ledgers = {m: source.ledger(m) for m in moved}

    data = shard_moves.export(source, moving, VIRTUAL_SHARDS)
    assert shard_moves.take_in(destination, data, VIRTUAL_SHARDS) == len(moved)
    assert shard_moves.let_go(source, moving, VIRTUAL_SHARDS) == len(moved)

    assert {m: destination.ledger(m) for m in moved} == ledgers
    assert all(source.store.member(m) is None for m in moved)
    # the transaction index came along: a refund of a purchase made at the source, and a resend
    first = moved[0]
    answers = destination.apply([refund(f"back-{first}", first, DAY, f"t-{first}", 1_000),
                                 buy(f"t-{first}", first, DAY, line(1))])
    assert [a.outcome for a in answers] == ["accepted", "duplicate"]
    assert answers[0].points < 0
    # and back: the source chains their entries to what it holds now, not to the positions it deleted
    history = destination.ledger(first)
    assert shard_moves.take_in(source, shard_moves.export(destination, moving, VIRTUAL_SHARDS), VIRTUAL_SHARDS) == len(
        moved)
    assert shard_moves.let_go(destination, moving, VIRTUAL_SHARDS) == len(moved)
    source.apply([buy(f"again-{first}", first, DAY, line(1_000))])
    assert source.ledger(first)[:-1] == history
    assert source.ledger(first)[-1].ref == f"again-{first}"
    for shard, path, number in ((source, tmp_path / "a", 0), (destination, tmp_path / "b", 1)):
        counted = kept(shard)
        shard.close()
        restarted = open_shard(path, number, 0)  # every member read: counted from the members themselves
        # bounded, the coming runs' members are in the wake-up index (moved by storage/vshard_move.py)
        assert counted[:-1] == kept(restarted)[:-1]
        assert hot_members or counted[-1] == kept(restarted)[-1]
        restarted.close()


def test_a_move_is_refused_while_a_midnight_run_is_under_way(tmp_path):
    shard = open_shard(tmp_path, 0, 0)
    shard.apply([buy("t1", "m1", DAY, line(20_000))])
    assert shard.midnight_begin(parse_day("2026-11-18")) > 0
    with pytest.raises(Exception, match="midnight job"):
        shard_moves.export(shard, [virtual_shard("m1")], VIRTUAL_SHARDS)
    shard.close()


def test_a_shard_refuses_writes_for_a_virtual_shard_it_exported_until_the_move_is_undone(tmp_path):
    """The safety net under a stale route: from its export on, the source applies nothing for the
    moving virtual shard's members (a batch part is refused whole, the stream's next part too),
    and takes them again once the move is undone."""
    shard = open_shard(tmp_path, 0, 0)
    shard.apply([buy("t1", "m1", DAY, line(20_000)), buy("t2", "m2", DAY, line(20_000))])
    assert virtual_shard("m1") != virtual_shard("m2")
    moving = [virtual_shard("m1")]
    shard_moves.export(shard, moving, VIRTUAL_SHARDS)
    before = shard.ledger("m1")

    answers = shard.apply_encoded([part([buy("t3", "m2", DAY, line(20_000)), buy("t4", "m1", DAY, line(20_000))],
                                        "S", 1),
                                   part([buy("t5", "m2", DAY, line(20_000))], "S", 2, after=1),
                                   part([buy("t6", "m2", DAY, line(20_000))], "T", 1)])
    assert [type(a) for a in answers[:2]] == [MovedAwayError, OutOfOrderError]
    assert "virtual shard" in str(answers[0])
    assert "send it again" in str(answers[0])
    assert [r.outcome for r in results_of(answers[2])] == ["accepted"]
    for write in (lambda: shard.set_tags("m1", ["vip"], [], "test"),
                  lambda: shard.adjust("m1", "adj-1", 50, "test"),
                  lambda: shard.enroll(Enrollment(member_id="m1"))):
        with pytest.raises(MovedAwayError):
            write()
    assert shard.ledger("m1") == before
    assert {e.ref for e in shard.ledger("m2")} == {"t2", "t6"}

    shard_moves.keep(shard, moving)
    assert [r.outcome for r in results_of(shard.apply_encoded([part([buy("t4", "m1", DAY, line(20_000))], "U", 1)])[0])
            ] == ["accepted"]
    shard.close()


def test_a_batch_resent_after_its_members_moved_is_answered_as_the_first_time(tmp_path):
    # the rejections stayed in the source's store, so the destination scored a resent redeem again
    # and accepted what the first answer had refused
    source, destination = open_shard(tmp_path / "a", 0, 0), open_shard(tmp_path / "b", 1, 0)
    mover = MEMBERS[0]
    stayer = next(m for m in MEMBERS if virtual_shard(m) != virtual_shard(mover))
    both = [redeem(f"R-{m}", m, DAY, points=500) for m in (mover, stayer)]
    source.apply([buy(f"t-{m}", m, DAY, line(1_000)) for m in (mover, stayer)])
    first = results_of(source.apply_encoded([part(both, batch_id="B1")])[0])
    assert [r.reason for r in first] == ["insufficient_points"] * 2

    data = shard_moves.export(source, [virtual_shard(mover)], VIRTUAL_SHARDS)
    shard_moves.take_in(destination, data, VIRTUAL_SHARDS)
    shard_moves.let_go(source, [virtual_shard(mover)], VIRTUAL_SHARDS)
    for shard, member in ((destination, mover), (source, stayer)):  # enough points now, in a later batch
        shard.apply_encoded([part([buy(f"big-{member}", member, DAY, line(100_000))], batch_id="B2")])
        resent = results_of(shard.apply_encoded([part([both[(shard is source)]], batch_id="B1")])[0])
        assert [(r.outcome, r.reason) for r in resent] == [("rejected", "insufficient_points")]
    assert destination.store.rejections("B1") == {(mover, f"R-{mover}"): ["insufficient_points"]}
    assert source.store.rejections("B1") == {(stayer, f"R-{stayer}"): ["insufficient_points"]}


def test_rejections_of_members_never_enrolled_move_once_and_leave_nothing_behind(tmp_path):
    # a virtual shard with no member record was not let go at all, so its rejections stayed at the
    # source, and a move back doubled them
    source, destination = open_shard(tmp_path / "a", 0, 0), open_shard(tmp_path / "b", 1, 0)
    ghost = "never-enrolled"
    moving = [virtual_shard(ghost)]
    source.apply_encoded([part([redeem("R-g", ghost, DAY, points=500)], batch_id="B9")])
    assert source.store.rejections("B9") == {(ghost, "R-g"): ["unknown_member"]}
    for there, back in ((source, destination), (destination, source)):
        shard_moves.take_in(back, shard_moves.export(there, moving, VIRTUAL_SHARDS), VIRTUAL_SHARDS)
        assert shard_moves.let_go(there, moving, VIRTUAL_SHARDS) == 0  # no member went
        assert there.store.rejections("B9") == {}
        assert back.store.rejections("B9") == {(ghost, "R-g"): ["unknown_member"]}
    with source.store.env.begin(db=source.store.dbs["rejections"]) as txn:
        [(_, raw)] = list(txn.cursor())
    assert rejected_rows(raw) == [(ghost, "R-g", "unknown_member")]  # once, not once per move
