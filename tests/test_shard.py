"""A shard's logic on real LMDB in a temporary folder, driven without Ray."""

import errno
import logging
import os
import time
from pathlib import Path

import pytest

from actors.shard import Shard, ShardConfig
from engine.anomaly_report import AnomalyRow
from engine.book import Book
from engine.calendar import iso, parse_day
from engine.errors import StorageFullError
from engine.operators import Enrollment
from engine.programme import Programme
from engine.replay import advance_to, replay_stream
from engine.summary import summarise
from engine.transactions import Transaction
from engine.validation import load_rules
from storage import shard_store
from storage.codecs import linked_position, position_key
from storage.shard_store import BatchWriter, ShardStore
from tests.builders import buy, line, ms, pay, recharge, redeem, refund

RULES = (Path(__file__).parents[1] / "examples" / "rules.toml").read_text()
DAY = "2026-11-17 10:00"


def open_shard(path: Path, rules: str = RULES, **options: object) -> Shard:
    options.setdefault("start_day", parse_day("2026-11-17"))
    return Shard(ShardConfig(0, str(path), rules, **options))


def test_a_committed_batch_survives_a_restart(tmp_path):
    shard = open_shard(tmp_path)
    results = shard.apply([buy("t1", "m1", DAY, line(2900)), buy("t2", "m2", DAY, line(100_000))])
    assert [r.points for r in results] == [20, 1000]
    shard.close()
    again = open_shard(tmp_path)
    assert again.member("m2").points == 1000
    assert [r.outcome for r in again.apply([buy("t1", "m1", DAY, line(2900))])] == ["duplicate"]


def test_a_bounded_start_says_it_reads_every_member_only_when_there_are_members_to_read(tmp_path, caplog):
    """operations.md names the line as a folder last written another way; a new folder logged it
    too, at every shard's first bounded start (an outside probe)."""
    caplog.set_level(logging.INFO, logger="patron.shard")
    open_shard(tmp_path / "new", hot_members=2).close()
    assert "reading every member once to index them" not in caplog.messages
    every = open_shard(tmp_path / "old")  # every member in memory: the bounded index is not kept
    every.apply([buy("t1", "m1", DAY, line(2900))])
    every.close()
    open_shard(tmp_path / "old", hot_members=2).close()
    assert caplog.messages.count("reading every member once to index them") == 1


def test_stored_balances_equal_the_sum_of_the_stored_ledger(tmp_path):
    shard = open_shard(tmp_path)
    shard.apply([buy("t1", "m1", DAY, line(2900)), buy("t2", "m1", DAY, line(10_000)),
                 refund("r1", "m1", DAY, "t2", 5000)])
    member = shard.store.member("m1")
    assert member.points == sum(e.points for e in shard.store.ledger("m1")) == 20 + 100 - 50


def test_a_batch_that_cannot_be_committed_leaves_memory_as_lmdb_has_it(tmp_path):
    shard = open_shard(tmp_path, map_bytes=256 << 10, max_map_bytes=256 << 10)
    shard.apply([buy("t0", "m1", DAY, line(2900))])
    huge = [buy(f"t{n}", f"m{n}", DAY, line(1000)) for n in range(2, 3000)]
    with pytest.raises(StorageFullError):
        shard.apply(huge)
    assert shard.member("m1").points == 20
    assert shard.member("m2") is None
    assert [r.outcome for r in shard.apply([buy("t9", "m1", DAY, line(1000))])] == ["accepted"]


class _FailingCommit:
    """An LMDB write transaction whose commit fails as a full or failing disk's does: nothing of it
    is kept (LMDB aborts it)."""

    def __init__(self, txn: object, error: OSError) -> None:
        self._txn, self._error = txn, error

    def __getattr__(self, name: str) -> object:
        return getattr(self._txn, name)

    def commit(self) -> None:
        self._txn.abort()
        raise self._error


def _stored_as_known(shard: Shard) -> list[str]:
    """What contradicts the store: a member the commit takes as stored at a newest ledger entry (a
    known head) that LMDB does not hold so, a ledger whose links come back on themselves (a position
    given twice), or a balance that is not its ledger's sum."""
    store = shard.store
    with store.env.begin() as txn:
        records = {member_id: store.member_table.get(txn, member_id.encode()) for member_id in store.heads}
    problems = [f"{member_id}: newest entry {head} known, {'none stored' if raw is None else linked_position(raw)}"
                for member_id, head in store.heads.items()
                if (raw := records[member_id]) is None or linked_position(raw) != head]
    for member_id in sorted(store.member_ids()):
        positions = _ledger_walk(store, member_id)  # ShardStore.ledger would walk a loop for ever
        if positions is None:
            problems.append(f"{member_id}: its ledger's links come back to an entry")
        elif store.member(member_id).points != sum(entry.points for entry in store.entries_at(positions)):
            problems.append(f"{member_id}: its balance is not its ledger's sum")
    return problems


def _ledger_walk(store: ShardStore, member_id: str) -> list[int] | None:
    """The member's ledger positions, newest first, or None where a link leads back."""
    positions: list[int] = []
    with store.env.begin() as txn:
        position = linked_position(store.member_table.get(txn, member_id.encode()))
        while position:
            if position in positions:
                return None
            positions.append(position)
            position = linked_position(txn.get(position_key(position), db=store.dbs["ledger"]))
    return positions


@pytest.mark.parametrize("hot", [0, 2])
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_a_commit_the_disk_refuses_leaves_the_members_known_stored_as_lmdb_has_them(tmp_path, monkeypatch, hot, code):
    """A commit knows a member is stored by its head (ShardStore.heads), which only a commit that
    LMDB made durable may add to: else a new member's next record went to a log the table has no
    row for, and the ledger's next entry took a position the failed commit never kept (a
    reviewer planted it: the ledger's read then looped for ever)."""
    shard = open_shard(tmp_path, hot_members=hot)
    shard.apply([buy("t1", "m1", DAY, line(2900))])
    opened, failures = BatchWriter.__init__, [OSError(code, os.strerror(code))]

    def failing_once(writer: BatchWriter, store: ShardStore) -> None:
        opened(writer, store)
        if failures:
            writer.txn = _FailingCommit(writer.txn, failures.pop())

    monkeypatch.setattr(BatchWriter, "__init__", failing_once)
    batch = [buy("t2", "m2", DAY, line(2900)), buy("t3", "m1", DAY, line(2900))]  # a new member, a stored one
    try:
        assert [r.outcome for r in shard.apply(batch)] == ["accepted", "accepted"]  # ENOSPC: grown, retried
    except OSError:
        assert code == errno.EIO  # a failing disk's error is the batch's
        assert [r.outcome for r in shard.apply(batch)] == ["accepted", "accepted"]
    assert _stored_as_known(shard) == []
    for n in range(30):  # the logs swap and are placed
        shard.apply([buy(f"u{n}", f"m{n % 5}", DAY, line(1000 + n))])
        assert _stored_as_known(shard) == []
    kept = {member_id: shard.store.member(member_id).points for member_id in shard.store.member_ids()}
    shard.close()
    again = open_shard(tmp_path, hot_members=hot)
    assert {member_id: again.store.member(member_id).points for member_id in again.store.member_ids()} == kept
    assert len(kept) == 5


class _SlowDisk:
    """An LMDB write transaction whose commit takes 50 ms longer, as on a slow disk."""

    def __init__(self, txn: object) -> None:
        self._txn = txn

    def __getattr__(self, name: str) -> object:
        return getattr(self._txn, name)

    def commit(self) -> None:
        time.sleep(0.05)
        self._txn.commit()


def test_a_batch_says_how_long_its_commit_waited_on_lmdb_and_the_disk_within_its_commit_time(tmp_path, monkeypatch):
    shard = open_shard(tmp_path)  # its first commit (the rules) was quick
    shard.apply([buy("t0", "m1", DAY, line(2900))])
    opened = BatchWriter.__init__

    def on_a_slow_disk(writer: BatchWriter, store: ShardStore) -> None:
        opened(writer, store)
        writer.txn = _SlowDisk(writer.txn)

    def slow_rows(*args: object, **options: object) -> object:  # the rows' encoding and puts, before LMDB's commit
        time.sleep(0.05)
        return rows(*args, **options)

    rows = shard_store.index_rows
    monkeypatch.setattr(BatchWriter, "__init__", on_a_slow_disk)
    monkeypatch.setattr(shard_store, "index_rows", slow_rows)
    _, stats = shard.apply_counted([buy("t1", "m1", DAY, line(2900)), buy("t2", "m2", DAY, line(5000))])
    assert stats.disk_write_seconds >= 0.05
    assert stats.commit_seconds - stats.disk_write_seconds >= 0.05  # the slow rows are the commit's, not the disk's


def test_the_midnight_run_goes_in_chunks_and_moves_the_business_day_at_the_end(tmp_path):
    shard = open_shard(tmp_path)
    shard.apply([buy(f"t{n}", f"m{n}", DAY, line(2900)) for n in range(5)])
    assert shard.midnight_begin(parse_day("2026-11-18")) == 5
    assert shard.midnight_step(limit=2)[0] == 2
    assert shard.status().business_day == "2026-11-17"
    assert shard.midnight_step(limit=2)[0] == 2
    assert shard.midnight_step(limit=2) == (1, [], True)
    assert shard.status().business_day == "2026-11-18"
    assert shard.midnight_begin(parse_day("2026-11-18")) == 0  # done: a second run changes nothing


def test_a_midnight_run_cut_short_by_a_crash_resumes_where_it_stopped(tmp_path):
    rules = RULES.replace("pending_days = 0", "pending_days = 1")
    shard = open_shard(tmp_path, rules)
    shard.apply([buy(f"t{n}", f"m{n}", DAY, line(2900)) for n in range(4)])
    shard.midnight_begin(parse_day("2026-11-18"))
    shard.midnight_step(limit=3)  # three members released; then the process dies
    shard.store.env.close()
    again = open_shard(tmp_path, rules)
    assert again.status().business_day == "2026-11-17"
    assert again.midnight_begin(parse_day("2026-11-18")) == 1  # the three already visited are done
    while not again.midnight_step(limit=3)[2]:
        pass
    assert [again.member(f"m{n}").points for n in range(4)] == [20, 20, 20, 20]
    assert [e.kind for e in again.ledger("m0")].count("release") == 1


@pytest.mark.parametrize("hot_members", [0, 2])
def test_a_batch_during_a_midnight_run_meets_its_members_after_that_midnight_as_in_replay(tmp_path, hot_members):
    # a member the run had not reached yet was scored as before it: points that lapsed at 00:00 were
    # spent, held points not yet released were refused (an outside probe: 340 of 400 redeems accepted)
    rules = RULES.replace('policy = "jan1_after_years"', 'policy = "rolling_days"').replace(
        "years = 1                           # with jan1_after_years", "days = 1")
    members = [f"m{n}" for n in range(6)]
    before = [buy(f"t-{m}", m, DAY, line(2900)) for m in members]
    after = [redeem(f"r-{m}", m, "2026-11-18 10:00", points=20) for m in members] + [
        buy(f"u-{m}", m, "2026-11-18 11:00", line(5000)) for m in members]
    shard = open_shard(tmp_path, rules, hot_members=hot_members)
    shard.apply(before)
    shard.midnight_begin(parse_day("2026-11-18"))
    shard.midnight_step(limit=2)  # two members visited, four not yet
    answers = shard.apply(after)
    while not shard.midnight_step(limit=2)[2]:
        pass
    replayed = Book(Programme(load_rules(rules)))
    expected = list(replay_stream(replayed, before + after))[len(before):]
    assert [(a.outcome, a.reason, a.points) for a in answers] == [(e.outcome, e.reason, e.points) for e in expected]
    assert {m: shard.member(m) for m in members} == {m: summarise(replayed.programme, replayed.members[m])
                                                     for m in members}
    assert [[e.kind for e in shard.ledger(m)].count("expire") for m in members] == [1] * 6  # each once
    shard.midnight_begin(parse_day("2026-11-19"))  # the next run still finds every member it must visit
    while not shard.midnight_step(limit=2)[2]:
        pass
    advance_to(replayed, parse_day("2026-11-19"))
    assert {m: shard.member(m) for m in members} == {m: summarise(replayed.programme, replayed.members[m])
                                                     for m in members}
    assert [[e.kind for e in shard.ledger(m)].count("expire") for m in members] == [2] * 6


@pytest.mark.parametrize("hot_members", [0, 2])
def test_a_member_with_nothing_due_meets_the_run_before_a_batch_and_not_again_after_it(tmp_path, hot_members):
    # the run's list held members with nothing due (a wake-up left by lots since redeemed); the
    # batch's visit did nothing, and the walk then ran their midnight after the batch, taking its
    # batch upgrade a day early: the next night's run passed them by, and Gold was never entered
    rules = RULES.replace('policy = "jan1_after_years"', 'policy = "rolling_days"').replace(
        "years = 1                           # with jan1_after_years", "days = 3").replace(
        'on_change = "upgrade_only"', 'on_change = "batch"')
    members = [f"m{n}" for n in range(4)]
    earned = [buy(f"t-{m}", m, "2026-11-17 10:00", line(2900)) for m in members]
    spent = [redeem(f"r-{m}", m, "2026-11-18 10:00", points=20) for m in members]
    bought = [buy(f"u-{m}", m, "2026-11-20 10:00", line(1_200_000)) for m in members]
    shard = open_shard(tmp_path, rules, hot_members=hot_members)

    def run(day: str) -> None:
        shard.midnight_begin(parse_day(day))
        while not shard.midnight_step(limit=2)[2]:
            pass

    shard.apply(earned)
    run("2026-11-18")
    shard.apply(spent)
    run("2026-11-19")
    shard.midnight_begin(parse_day("2026-11-20"))
    shard.midnight_step(limit=1)
    shard.apply(bought)
    while not shard.midnight_step(limit=2)[2]:
        pass
    run("2026-11-21")
    replayed = Book(Programme(load_rules(rules)))
    list(replay_stream(replayed, earned + spent + bought))
    advance_to(replayed, parse_day("2026-11-21"))
    assert {m: shard.member(m) for m in members} == {m: summarise(replayed.programme, replayed.members[m])
                                                     for m in members}


@pytest.mark.parametrize("hot_members", [0, 2])
def test_a_transaction_dated_past_midnight_meets_that_midnight_first_as_in_replay(tmp_path, hot_members):
    # before the run began (the clock's run starts within a minute of 00:00; a manual run later),
    # a redeem dated after midnight spent points that had lapsed at it; a transaction of the
    # same batch dated before midnight still meets the day before
    rules = RULES.replace('policy = "jan1_after_years"', 'policy = "rolling_days"').replace(
        "years = 1                           # with jan1_after_years", "days = 1").replace(
        'on_change = "upgrade_only"', 'on_change = "batch"')
    earned = [buy(f"t-m{n}", f"m{n}", DAY, line(2900)) for n in range(3)]
    batch = [redeem("r1", "m0", "2026-11-17 23:00", points=5), redeem("r2", "m0", "2026-11-18 01:00", points=5),
             redeem("r3", "m1", "2026-11-18 01:00", points=5), buy("u1", "m1", "2026-11-18 02:00", line(1_200_000)),
             buy("n1", "new", "2026-11-18 03:00", line(1_200_000))]
    shard = open_shard(tmp_path, rules, hot_members=hot_members)
    shard.apply(earned)
    answers = shard.apply(batch)
    replayed = Book(Programme(load_rules(rules)))
    expected = list(replay_stream(replayed, earned + batch))[len(earned):]
    assert [(a.outcome, a.reason, a.points) for a in answers] == [(e.outcome, e.reason, e.points) for e in expected]
    members = ["m0", "m1", "m2", "new"]
    for day in ("2026-11-18", "2026-11-19"):
        shard.midnight_begin(parse_day(day))
        while not shard.midnight_step(limit=2)[2]:
            pass
        advance_to(replayed, parse_day(day))
        assert {m: shard.member(m) for m in members} == {m: summarise(replayed.programme, replayed.members[m])
                                                         for m in members}, day


def test_a_malformed_transaction_dated_past_midnight_moves_its_member_no_more_than_replay_moves_its_clock(tmp_path):
    """It can never apply: the member stays on the business day, and its late purchase (7 days back,
    the lateness allowed) is accepted in both (the reviewer of an outside probe's fix)."""
    malformed = Transaction("x1", "m1", ms("2026-11-18 00:05"), "purchasee", amount_minor=2900)
    batch = [buy("t1", "m1", DAY, line(2900)), malformed, buy("t2", "m1", "2026-11-10 10:00", line(2900))]
    answers = open_shard(tmp_path).apply(batch)
    expected = list(replay_stream(Book(Programme(load_rules(RULES))), batch))
    assert [(a.outcome, a.reason) for a in answers] == [(e.outcome, e.reason) for e in expected] == [
        ("accepted", ""), ("rejected", "unknown_kind"), ("accepted", "")]


def test_an_unpaid_transaction_dated_past_midnight_moves_its_member_as_replay_moves_its_clock(tmp_path):
    """Well-formed, it is the till's clock: the member meets that midnight, and its purchase 7 days
    before the business day is then one day too late, in both (a reviewer: replay once skipped it)."""
    unpaid = buy("x1", "m1", "2026-11-18 00:05", line(2900), status="pending")
    batch = [buy("t1", "m1", DAY, line(2900)), unpaid, buy("t2", "m1", "2026-11-10 10:00", line(2900))]
    answers = open_shard(tmp_path).apply(batch)
    expected = list(replay_stream(Book(Programme(load_rules(RULES))), batch))
    assert [(a.outcome, a.reason) for a in answers] == [(e.outcome, e.reason) for e in expected] == [
        ("accepted", ""), ("ignored", "not_paid"), ("rejected", "too_late")]


@pytest.mark.parametrize("hot_members", [0, 2])
def test_a_tier_entered_after_a_member_met_the_next_midnight_early_lasts_as_in_replay(tmp_path, hot_members):
    # the member was already on the new date, but the tier's validity counted from the business day
    # before it: a day short, and a Gold member of a short tier was dropped a day early (outside probe)
    batch = [buy("x1", "m1", "2026-11-18 00:05", line(100)), buy("g1", "m1", "2026-11-17 23:00", line(1_000_000))]
    shard = open_shard(tmp_path, hot_members=hot_members)
    shard.apply(batch)
    replayed = Book(Programme(load_rules(RULES)))
    list(replay_stream(replayed, batch))
    assert shard.member("m1") == summarise(replayed.programme, replayed.members["m1"])
    assert shard.member("m1").tier == "Gold"


def test_a_quote_dated_past_midnight_says_what_the_purchase_then_meets(tmp_path):
    # an outside probe: the quote counted points that lapse at that midnight, which a redeem then
    # found gone, and after its member met the midnight early it took a time the purchase is too late for
    from engine.errors import InvalidRequestError
    from engine.transactions import LineItem

    rules = RULES.replace('policy = "jan1_after_years"', 'policy = "rolling_days"').replace(
        "years = 1                           # with jan1_after_years", "days = 1")
    shard = open_shard(tmp_path, rules)
    shard.apply([buy("t1", "m1", DAY, line(2900)), buy("t2", "m2", DAY, line(2900)),
                 buy("x2", "m2", "2026-11-18 00:05", line(100))])
    basket = [LineItem(sku="A", paid_minor=10_000)]
    assert shard.reads.quote("m1", basket, ms(DAY)).available_points == 20
    after = shard.reads.quote("m1", basket, ms("2026-11-18 01:00"))
    assert (after.day, after.available_points) == ("2026-11-18", 0)
    assert 0 < after.cash_points <= after.points  # the purchase's own points only: t1's lapsed
    assert shard.member("m1").points == 20  # the quote changed nothing
    [spent] = shard.apply([redeem("r1", "m1", "2026-11-18 01:00", points=5)])
    assert (spent.outcome, spent.reason) == ("rejected", "insufficient_points")
    with pytest.raises(InvalidRequestError, match="too_late"):
        shard.reads.quote("m2", basket, ms("2026-11-10 12:00"))
    [late] = shard.apply([buy("t3", "m2", "2026-11-10 12:00", line(100))])
    assert (late.outcome, late.reason) == ("rejected", "too_late")


def test_a_member_on_the_next_date_is_put_in_a_tier_by_an_operator_or_a_publish_as_of_that_date(tmp_path):
    # a tier given by hand or by the new rules counted its validity from the business day before
    easier = RULES.replace("version = 1", "version = 2").replace("threshold = 1000000 ", "threshold = 100000 ", 1)
    shard = open_shard(tmp_path)
    shard.apply([buy("x1", "m1", "2026-11-18 00:05", line(200_000)), buy("x2", "m2", "2026-11-18 00:05", line(100))])
    assert shard.member("m1").tier == "Basic"
    assert shard.set_tier("m2", "Gold", "complaint").tier_valid_until == "2027-11-17"  # 12 months from 11-18
    shard.publish(easier)
    while not shard.reevaluate_step(limit=10)[1]:
        pass
    assert (shard.member("m1").tier, shard.member("m1").tier_valid_until) == ("Gold", "2027-11-17")
    shard.set_status("m1", "freeze", "card stolen")  # its ledger goes on from that date, never back
    assert [iso(e.day) for e in shard.ledger("m1")][-1] == "2026-11-18"


@pytest.mark.parametrize("hot_members", [0, 2])
def test_a_member_that_met_midnight_early_counts_lateness_from_the_new_date(tmp_path, hot_members):
    # a review found it: accepted a day past max_lateness, where replay rejects it too_late
    batch = [buy("x1", "m1", "2026-11-18 00:05", line(100)), buy("t2", "m1", "2026-11-10 12:00", line(100)),
             buy("t3", "m2", "2026-11-10 12:00", line(100))]  # another member: on the business day still
    shard = open_shard(tmp_path, hot_members=hot_members)
    answers = shard.apply(batch)
    replayed = Book(Programme(load_rules(RULES)), today=parse_day("2026-11-17"))
    expected = list(replay_stream(replayed, batch[:2]))
    assert [(a.outcome, a.reason) for a in answers[:2]] == [(e.outcome, e.reason) for e in expected]
    assert [(a.outcome, a.reason) for a in answers] == [("accepted", ""), ("rejected", "too_late"), ("accepted", "")]


@pytest.mark.parametrize("hot_members", [0, 2])
def test_a_member_that_met_midnight_early_and_changed_since_is_visited_by_the_next_run(tmp_path, hot_members):
    # every member in memory: the run's walk took it from the members awake and passed it (already
    # through that run), so its next_day tier waited a day for the member's next transaction
    rules = RULES.replace('effective = "immediate"', 'effective = "next_day"').replace(
        'issue_on = "enroll"', 'issue_on = "api"')  # no welcome coupon: its reminder would wake the member
    batch = [buy("x1", "m1", "2026-11-18 00:05", line(100)), buy("g1", "m1", "2026-11-17 23:00", line(1_000_000))]
    shard = open_shard(tmp_path, rules, hot_members=hot_members)
    shard.apply(batch)
    replayed = Book(Programme(load_rules(rules)))
    list(replay_stream(replayed, batch))
    for day in ("2026-11-18", "2026-11-19"):
        shard.midnight_begin(parse_day(day))
        while not shard.midnight_step(limit=1)[2]:
            pass
        advance_to(replayed, parse_day(day))
        assert shard.member("m1") == summarise(replayed.programme, replayed.members["m1"]), day
    assert shard.member("m1").tier == "Gold"
    assert shard.ledger("m1") == [e for e in replayed.ledger if e.member_id == "m1"]


def test_a_day_reported_after_a_transaction_ran_ahead_of_midnight_lists_all_of_the_days_transactions(tmp_path):
    # a member brought through midnight early wrote its anomaly row then, reading the whole day's
    # index in the middle of ingestion (a tenth more CPU in `bench ingest`) and keeping it as it was:
    # members flagged later in the day were reported without their later transactions
    rules = RULES.replace("daily_points_threshold = 5000", "daily_points_threshold = 100")
    stream = [buy("a1", "m1", "2026-11-17 09:00", line(9000)), buy("a2", "m1", "2026-11-17 10:00", line(9000)),
              buy("x1", "m1", "2026-11-18 00:01", line(100)),  # the till's clock past midnight
              buy("b1", "m2", "2026-11-17 22:00", line(9000)), buy("b2", "m2", "2026-11-17 23:00", line(9000))]
    shard = open_shard(tmp_path, rules)
    for txn in stream:
        shard.apply([txn])
    shard.midnight_begin(parse_day("2026-11-18"))
    while not shard.midnight_step(limit=1)[2]:
        pass
    replayed, rows = Book(Programme(load_rules(rules))), []
    list(replay_stream(replayed, [t for t in stream if t.txn_id != "x1"], rows))
    rows += advance_to(replayed, parse_day("2026-11-18"))
    assert shard.anomalies("2026-11-17") == sorted(rows, key=lambda row: row.member_id)
    assert [row.transactions for row in shard.anomalies("2026-11-17")] == [["a1", "a2"], ["b1", "b2"]]


def test_members_a_batch_brought_through_a_run_cut_short_by_a_crash_are_still_woken_later(tmp_path):
    # resumed after a restart, the run's walk dropped their wake-up entries and, with nothing due,
    # wrote none back: their points never expired
    rules = RULES.replace('policy = "jan1_after_years"', 'policy = "rolling_days"').replace(
        "years = 1                           # with jan1_after_years", "days = 1")
    members = [f"m{n}" for n in range(6)]
    shard = open_shard(tmp_path, rules, hot_members=2)
    shard.apply([buy(f"t-{m}", m, DAY, line(2900)) for m in members])
    shard.midnight_begin(parse_day("2026-11-18"))
    shard.midnight_step(limit=2)
    shard.apply([buy(f"u-{m}", m, "2026-11-18 11:00", line(5000)) for m in members])  # lots that lapse 11-19
    shard.store.env.close()  # the process dies; the run is resumed after the restart
    again = open_shard(tmp_path, rules, hot_members=2)
    for day in ("2026-11-18", "2026-11-19"):
        again.midnight_begin(parse_day(day))
        while not again.midnight_step(limit=2)[2]:
            pass
    assert {m: again.member(m).points for m in members} == dict.fromkeys(members, 0)


def test_a_batch_during_a_re_evaluation_meets_its_members_under_the_new_rules(tmp_path):
    # a member the re-evaluation had not reached yet earned at the tier the new rules moved it off,
    # and the purchase, not the publish, moved it up
    shard = open_shard(tmp_path)
    shard.apply([buy(f"t-m{n}", f"m{n}", DAY, line(600_000)) for n in range(4)])  # 6,000 growth: Basic
    assert {shard.member(f"m{n}").tier for n in range(4)} == {"Basic"}
    easier = RULES.replace("version = 1", "version = 2").replace("threshold = 10000\n", "threshold = 5000\n", 1)
    assert shard.publish(easier) == 4
    shard.apply([buy("u-m3", "m3", DAY, line(5000))])
    while not shard.reevaluate_step(limit=1)[1]:
        pass
    ledger = [(e.kind, e.cause, e.ref) for e in shard.ledger("m3")]
    assert ledger[-2:] == [("tier", "rules", "v2"), ledger[-1]]  # the publish first, then the purchase
    assert ledger[-1][1:] == ("txn", "u-m3")
    assert [e.kind for e in shard.ledger("m3")].count("tier") == 1  # not again when the walk got there
    assert {shard.member(f"m{n}").tier for n in range(4)} == {"Silver"}


def test_a_batch_after_the_re_evaluation_passed_a_member_leaves_it_to_what_came_since(tmp_path):
    # every member of a batch was re-evaluated, also those the walk had passed: one an operator
    # had put back in Basic since was moved up again by its next purchase
    shard = open_shard(tmp_path)
    shard.apply([buy(f"t-m{n}", f"m{n}", DAY, line(600_000)) for n in range(4)])
    easier = RULES.replace("version = 1", "version = 2").replace("threshold = 10000\n", "threshold = 5000\n", 1)
    shard.publish(easier)
    shard.reevaluate_step(limit=2)  # m0 and m1 passed
    shard.set_tier("m0", "Basic", "complaint")
    shard.apply([redeem("r-m0", "m0", DAY, points=10)])  # spending: no tier is judged on it
    assert shard.member("m0").tier == "Basic"


def test_anomaly_rows_are_stored_with_the_member_that_made_them(tmp_path):
    rules = RULES.replace("daily_points_threshold = 5000", "daily_points_threshold = 100")
    shard = open_shard(tmp_path, rules)
    shard.apply([buy("t1", "m1", DAY, line(9000)), buy("t2", "m1", DAY, line(9000))])
    shard.midnight_begin(parse_day("2026-11-18"))
    assert shard.midnight_step()[1] == ["2026-11-17"]
    assert shard.anomalies("2026-11-17") == [AnomalyRow("m1", "2026-11-17", 180, ["t1", "t2"])]


def test_each_days_crossing_of_the_anomaly_threshold_is_counted_also_by_a_member_flagged_already(tmp_path):
    """patron_anomalies_flagged_total counted a member's first flag only (its status entry): a card
    crossing day after day, flagged since the first, was counted once while its anomaly_flagged
    events and report rows said every day (an outside probe)."""
    shard = open_shard(tmp_path, RULES.replace("daily_points_threshold = 5000", "daily_points_threshold = 100"))
    counted = []
    for when, run in ((DAY, "2026-11-18"), ("2026-11-18 10:00", "2026-11-19")):
        batch = [buy(f"{run}-1", "m1", when, line(9000)), buy(f"{run}-2", "m1", when, line(9000)),
                 buy(f"{run}-3", "m2", when, line(2900))]
        _, stats = shard.apply_counted(batch)
        counted.append(stats.anomalies)
        shard.midnight_begin(parse_day(run))
        while not shard.midnight_step()[2]:
            pass
    assert shard.member("m1").abnormal
    assert counted == [1, 1]


def test_the_days_of_anomaly_rows_are_owed_a_report_until_one_is_written_even_across_a_restart(tmp_path):
    rules = RULES.replace("daily_points_threshold = 5000", "daily_points_threshold = 100")
    shard = open_shard(tmp_path, rules, start_day=parse_day("2026-11-18"))
    shard.apply([buy("t1", "m1", "2026-11-16 10:00", line(9000)), buy("t2", "m1", "2026-11-16 11:00", line(9000)),
                 buy("t3", "m2", DAY, line(9000)), buy("t4", "m2", DAY, line(9000))])
    assert shard.reports_owed() == []
    shard.midnight_begin(parse_day("2026-11-19"))
    while not shard.midnight_step(limit=1)[2]:
        pass
    shard.close()
    again = open_shard(tmp_path, rules)
    assert again.reports_owed() == ["2026-11-16", "2026-11-17"]
    again.reports_written(["2026-11-17", "2026-11-18"])
    assert again.reports_owed() == ["2026-11-16"]


def test_the_anomaly_report_lists_the_transactions_replay_lists(tmp_path):
    # read from the day index, the server's report left out a recharge whose bonus points it
    # counted, and listed a purchase twice once a refund in a later batch had written it again
    rules = RULES.replace("daily_points_threshold = 5000", "daily_points_threshold = 100")
    day = "2026-12-02 10:00"  # the example's bonus of 500 points for a recharge of 500.00 runs from 1 Dec
    batches = [[buy("t1", "m1", day, line(9000)), recharge("r1", "m1", day, 50_000), buy("t2", "m2", day, line(900))],
               [refund("f1", "m1", day, "t1", 3000), buy("t3", "m1", day, line(2000))]]
    shard = open_shard(tmp_path, rules, start_day=parse_day("2026-12-02"))
    for batch in batches:
        shard.apply(batch)
    shard.midnight_begin(parse_day("2026-12-03"))
    while not shard.midnight_step()[2]:
        pass
    replayed, rows = Book(Programme(load_rules(rules))), []
    list(replay_stream(replayed, [txn for batch in batches for txn in batch], rows))
    rows += advance_to(replayed, parse_day("2026-12-03"))
    assert [row.transactions for row in rows] == [["t1", "r1", "t3"]]
    assert shard.anomalies("2026-12-02") == rows


def test_the_index_forgets_transactions_past_retention_at_midnight(tmp_path):
    shard = open_shard(tmp_path, RULES.replace("max_lateness_days = 7", "max_lateness_days = 0"),
                       index_retention_days=1)
    shard.apply([buy("t1", "m1", DAY, line(2900))])
    for day in ("2026-11-18", "2026-11-19"):
        shard.midnight_begin(parse_day(day))
        while not shard.midnight_step()[2]:
            pass
    assert shard.store.count("txn_index") == 0


def test_the_index_remembers_a_transaction_while_one_of_its_day_may_still_come(tmp_path):
    # rules allowing more lateness than the server's retention: a resend that late was scored again,
    # where replay answers duplicate (a probe)
    shard = open_shard(tmp_path, index_retention_days=1)  # the example rules: 7 days late
    shard.apply([buy("t1", "m1", DAY, line(2900))])
    earned = shard.member("m1").points
    for day in ("2026-11-18", "2026-11-19", "2026-11-20"):
        shard.midnight_begin(parse_day(day))
        while not shard.midnight_step()[2]:
            pass
    [again] = shard.apply([buy("t1", "m1", DAY, line(2900))])
    assert (again.outcome, shard.member("m1").points) == ("duplicate", earned)


def test_publishing_changed_tiers_keeps_members_by_tier_name_then_reevaluates(tmp_path):
    rules = RULES.replace("threshold = 1000000 ", "threshold = 9000000 ")
    shard = open_shard(tmp_path, rules)
    shard.apply([buy("t1", "m1", DAY, line(1_000_000))])  # 10,000 points of growth: Silver
    assert shard.member("m1").tier == "Silver"
    renamed = rules.replace("version = 1", "version = 2").replace('name = "Basic"', 'name = "Member"')
    renamed = renamed.replace('pos = "Basic", online = "Basic"', 'pos = "Member", online = "Member"')
    renamed = renamed.replace("threshold = 9000000 ", "threshold = 1000000 ")  # Gold: 10,000.00 in 3 months
    assert shard.publish(renamed) == 1
    assert shard.member("m1").tier == "Silver"
    assert shard.reevaluate_step() == (1, True)
    assert shard.member("m1").tier == "Gold"
    assert [(e.cause, e.ref) for e in shard.ledger("m1") if e.kind == "tier"][-1] == ("rules", "v2")
    shard.close()
    assert open_shard(tmp_path, renamed).member("m1").tier == "Gold"


@pytest.mark.parametrize("restart", [False, True])
def test_a_publish_of_other_notice_during_a_tier_walk_still_re_judges_every_members_tier(tmp_path, restart):
    """A walk a restart cut short is brought on by the next publish; one that changed only the
    reminders' notice replaced it with a walk that judged no tier (a review): the members not
    reached yet kept their tiers for good."""
    rules = RULES.replace("threshold = 1000000 ", "threshold = 9000000 ")
    shard = open_shard(tmp_path, rules)
    shard.apply([buy(f"t{n}", f"m{n}", DAY, line(1_000_000)) for n in range(4)])  # Silver each
    v2 = rules.replace("version = 1", "version = 2").replace("threshold = 9000000 ", "threshold = 1000000 ")
    assert shard.publish(v2) == 4
    assert shard.reevaluate_step(limit=1) == (1, False)
    if restart:
        shard.close()
        shard = open_shard(tmp_path, v2)
    v3 = v2.replace("version = 2", "version = 3").replace("expiring_days = 30", "expiring_days = 14")
    assert shard.publish(v3) == 4
    while not shard.reevaluate_step(limit=1)[1]:
        pass
    assert [shard.member(f"m{n}").tier for n in range(4)] == ["Gold"] * 4


def test_a_publish_leaves_no_walk_on_a_shard_without_members(tmp_path):
    # the empty job, left for the watch to end a second later, refused moves meanwhile: a rebalance's
    # new shard stopped it part-way (a probe)
    shard = open_shard(tmp_path)
    v2 = RULES.replace("version = 1", "version = 2").replace("threshold = 1000000 ", "threshold = 900000 ")
    v3 = v2.replace("version = 2", "version = 3").replace("expiring_days = 30", "expiring_days = 14")
    assert (shard.publish(v2), shard.job) == (0, None)
    assert (shard.publish(v3), shard.job) == (0, None)
    shard.close()
    assert open_shard(tmp_path, v3).job is None


def test_a_publish_that_removes_a_members_tier_records_the_move_and_keeps_it_after_a_restart(tmp_path):
    rules = RULES.replace("threshold = 1000000 ", "threshold = 9000000 ")
    shard = open_shard(tmp_path, rules)
    shard.apply([buy("t1", "m1", DAY, line(1_000_000))])  # 10,000 points of growth: Silver
    silver = rules[rules.index('[[tiers]]\nname = "Silver"'):rules.index('[[tiers]]\nname = "Gold"')]
    v2 = rules.replace("version = 1", "version = 2").replace(silver, "").replace('upgrade_to = "Silver"', "")
    assert shard.publish(v2) == 1
    assert shard.member("m1").tier == "Basic"  # at once, in the publish's commit
    assert shard.reevaluate_step() == (1, True)
    shard.close()
    again = open_shard(tmp_path, v2)
    moves = [(e.rule_version, e.cause, e.ref, e.tier_from, e.tier_to)
             for e in again.ledger("m1") if e.kind == "tier"]
    assert moves == [(1, "txn", "t1", 0, 1), (2, "rules", "v2", -1, 0)]
    assert [e.tier_from_name for e in again.ledger("m1") if e.kind == "tier"] == ["", "Silver"]


@pytest.mark.parametrize("hot_members", [0, 2])
def test_a_next_day_tier_a_publish_opens_is_entered_at_the_next_run_after_a_restart(tmp_path, hot_members):
    """A member quiet on the day of the publish, rules without tags (whose check wakes everyone), a
    restart between the publish and the run: the upgrade the publish deferred was lost (a reviewer)."""
    rules = RULES[:RULES.index("[[tags]]")] + RULES[RULES.index("[notify]"):]
    shard = open_shard(tmp_path, rules, hot_members=hot_members)
    shard.apply([buy("t1", "m1", DAY, line(50_000))] + [buy(f"o{n}", f"other{n}", DAY, line(100)) for n in range(4)])
    shard.midnight_begin(parse_day("2026-11-18"))
    while not shard.midnight_step()[2]:
        pass
    easier = rules.replace("version = 1", "version = 2").replace(
        'threshold = 1000000                 # 10,000.00', 'threshold = 10000 #').replace(
        'effective = "immediate"', 'effective = "next_day"')
    shard.publish(easier)
    while not shard.reevaluate_step()[1]:
        pass
    assert shard.member("m1").tier == "Basic"  # Gold waits for the next run
    shard.close()
    again = open_shard(tmp_path, easier, hot_members=hot_members)
    again.midnight_begin(parse_day("2026-11-19"))
    while not again.midnight_step()[2]:
        pass
    assert again.member("m1").tier == "Gold"


def test_a_checkpoint_is_a_consistent_copy_of_the_shard(tmp_path):
    shard = open_shard(tmp_path / "live")
    shard.apply([buy("t1", "m1", DAY, line(2900))])
    assert shard.checkpoint(str(tmp_path / "copy")) > 0
    shard.apply([buy("t2", "m1", DAY, line(2900))])
    copy = ShardStore(tmp_path / "copy")
    assert copy.member("m1").points == 20
    assert iso(copy.meta("business_day")) == "2026-11-17"


def test_an_operators_adjustment_is_idempotent_by_its_request_id(tmp_path):
    shard = open_shard(tmp_path)
    first, member = shard.adjust("m1", "req-1", 50, "goodwill")
    again, _ = shard.adjust("m1", "req-1", 50, "goodwill")
    assert (first.outcome, again.outcome, shard.member("m1").points) == ("accepted", "duplicate", 50)
    assert member.points == 50


def test_transactions_for_a_day_after_tomorrow_are_rejected(tmp_path):
    shard = open_shard(tmp_path)
    result = shard.apply([Transaction("t1", "m1", ms("2026-11-19 10:00"), "purchase", amount_minor=100)])[0]
    assert (result.outcome, result.reason) == ("rejected", "in_future")


def test_the_map_grows_before_it_fills(tmp_path):
    shard = open_shard(tmp_path, map_bytes=256 << 10)
    for start in range(0, 6000, 500):
        shard.apply([buy(f"t{n}", f"m{n}", DAY, line(1000)) for n in range(start, start + 500)])
    assert shard.store.map_bytes() > 256 << 10
    assert len(shard.book.members) == 6000


ONE_TIER = (RULES[:RULES.index("\n[[tiers]]")] + '\n[[tiers]]\nname = "Basic"\n').replace(
    'when = { tiers = ["Gold"] }', 'when = { weekdays = ["mon"] }')


def test_activating_tiers_without_past_spend_judges_members_only_on_what_comes_after(tmp_path):
    one_tier = ONE_TIER
    shard = open_shard(tmp_path, one_tier)
    shard.apply([buy("t1", "m1", DAY, line(2_000_000))])  # 20,000 yuan before tiers exist
    tiers = RULES.replace("version = 1", "version = 2")
    assert shard.publish(tiers, count_past_spend=False) == 1
    shard.reevaluate_step()
    assert shard.member("m1").tier == "Silver"  # growth (lifetime) counts; spend starts from zero
    shard.apply([buy("t2", "m1", DAY, line(100))])
    assert shard.book.members["m1"].total_spend == 100


def test_activating_tiers_with_past_spend_counts_it(tmp_path):
    one_tier = ONE_TIER
    shard = open_shard(tmp_path, one_tier)
    shard.apply([buy("t1", "m1", DAY, line(2_000_000))])
    shard.publish(RULES.replace("version = 1", "version = 2"), count_past_spend=True)
    shard.reevaluate_step()
    assert shard.member("m1").tier == "Gold"


@pytest.mark.parametrize("before", ['metric = "points"\nwindow = "3 months"', 'metric = "spend"\nwindow = "7 days"'])
def test_a_publish_that_looks_back_further_counts_the_days_the_index_remembers(tmp_path, before):
    # an outside probe: a later publish adding Gold on 3 months' spend (or lengthening its window)
    # judged members only on what they spent after it; replay of the same stream under it gave Gold
    v2 = RULES[:RULES.index("[[tags]]")] + RULES[RULES.index("[notify]"):]  # no tag keeps a spend window
    v1 = v2.replace('metric = "spend"\nwindow = "3 months"', before)
    v1 = v1.replace("threshold = 1000000 ", "threshold = 9000000 ")
    v2 = v2.replace("version = 1", "version = 2")
    shard = open_shard(tmp_path, v1)
    shard.apply([buy("t1", "m1", DAY, line(600_000)), buy("t3", "m2", DAY, line(600_000)),
                 buy("t4", "m3", DAY, line(600_000))])
    _midnights_to(shard, "2026-12-07")  # past a 7-day window's days
    shard.apply([buy("t2", "m1", "2026-12-07 10:00", line(600_000)),
                 refund("r3", "m2", "2026-12-07 10:00", "t3", 100_000),
                 refund("r4", "m3", "2026-12-07 10:00", "unknown", 0, line(100_000))])  # on its own day
    before = [shard.member(m).tier for m in ("m1", "m2", "m3")]
    assert "Gold" not in before
    shard.publish(v2)
    shard.reevaluate_step()
    assert [shard.member(m).tier for m in ("m1", "m2", "m3")] == ["Gold", *before[1:]]  # 12,000.00; 5,000.00 twice
    windows = [shard.book.members[m].windows["spend"] for m in ("m2", "m3")]
    assert windows == [{parse_day("2026-11-17"): 500_000},
                       {parse_day("2026-11-17"): 600_000, parse_day("2026-12-07"): -100_000}]


def test_a_publish_that_lengthens_a_window_keeps_the_days_the_index_has_forgotten(tmp_path):
    # a reviewer: the days were made again from the index alone, which keeps 30 days here
    v2 = RULES[:RULES.index("[[tags]]")] + RULES[RULES.index("[notify]"):]
    v1 = v2.replace("threshold = 1000000 ", "threshold = 9000000 ")
    v2 = v2.replace("version = 1", "version = 2").replace('window = "3 months"', 'window = "4 months"')
    shard = open_shard(tmp_path, v1, index_retention_days=30)
    shard.apply([buy("t1", "m1", DAY, line(600_000))])
    _midnights_to(shard, "2026-12-27")
    shard.apply([buy("t2", "m1", "2026-12-27 10:00", line(500_000))])
    assert [r.day for _, r in shard.store.records_by_id()] == [parse_day("2026-12-27")]  # t1 forgotten by the index
    shard.publish(v2)
    shard.reevaluate_step()
    assert shard.book.members["m1"].windows["spend"] == {parse_day("2026-11-17"): 600_000,
                                                         parse_day("2026-12-27"): 500_000}
    assert shard.member("m1").tier == "Gold"


def test_a_publish_that_lowers_a_single_purchase_threshold_counts_the_orders_between(tmp_path):
    # an outside probe: only orders at or above the old threshold were remembered, so a member
    # whose order met the new one stayed where it was (replay under the new version: Gold)
    single = RULES.replace('metric = "spend"\nwindow = "3 months"\nthreshold = 1000000 ',
                           'metric = "single_purchase"\nwindow = "3 months"\nthreshold = 9000000 ')
    assert single != RULES
    shard = open_shard(tmp_path, single)
    shard.apply([buy("t1", "m1", DAY, line(350_000)), buy("t2", "m2", DAY, line(250_000)),
                 buy("t3", "m3", DAY, line(400_000))])
    shard.apply([refund("r3", "m3", "2026-11-17 11:00", "t3", 200_000)])  # 2,000.00 of it left
    shard.publish(single.replace("version = 1", "version = 2").replace("threshold = 9000000 ", "threshold = 300000 "))
    shard.reevaluate_step()
    assert [shard.member(m).tier == "Gold" for m in ("m1", "m2", "m3")] == [True, False, False]
    assert [s[1] for s in shard.book.members["m1"].singles] == [0]  # used for the upgrade, as a transaction's would be


def _midnights_to(shard: Shard, date: str) -> None:
    for day in range(shard.book.today + 1, parse_day(date) + 1):
        shard.midnight_begin(day)
        while not shard.midnight_step()[2]:
            pass


def test_tags_and_their_counts_survive_a_restart(tmp_path):
    shard = open_shard(tmp_path)
    shard.apply([buy("t1", "m1", DAY, line(2900)), buy("t2", "m2", DAY, line(2900))])
    for day in range(parse_day("2026-11-18"), parse_day("2027-02-17") + 1):  # 90 quiet days
        shard.midnight_begin(day)
        while not shard.midnight_step()[2]:
            pass
    assert shard.member("m1").tags == ["lapsed"]
    assert shard.set_tags("m2", ["vip"], [], "store manager").tags == ["lapsed", "vip"]
    assert shard.status().tags == {"lapsed": 2, "vip": 1}
    shard.close()
    again = open_shard(tmp_path)
    assert again.status().tags == {"lapsed": 2, "vip": 1}
    assert again.member("m2").tags == ["lapsed", "vip"]


def test_enroll_batch_refuses_a_row_that_would_take_a_member_past_48_attributes_and_enrolls_the_rest(tmp_path):
    shard = open_shard(tmp_path)
    first = {f"a{n}": n for n in range(48)}
    shard.enroll(Enrollment(member_id="E20", attributes=first))
    answers = shard.enroll_many([Enrollment(member_id="E20", attributes={f"b{n}": n for n in range(48)}),
                                 Enrollment(member_id="E21", attributes={"city": "Hangzhou"})])
    assert [(summary is None, created, error) for summary, created, error in answers] == [
        (True, False, "attributes: member 'E20' has 48 and this adds 48, 96 in all; at most 48"), (False, True, "")]
    shard.close()
    assert open_shard(tmp_path).member("E20").attributes == first


def _with_defect(monkeypatch, poison: str, effect: str) -> None:
    """Plant an engine defect for one transaction id: it raises while scoring, or leaves its
    member with a balance no record can store (what overflow did before the bounds)."""
    import actors.shard

    real = actors.shard.score_transaction

    def scoring(book, txn):
        result = real(book, txn)
        if txn.txn_id == poison and effect == "raise":
            raise ZeroDivisionError("planted")
        if txn.txn_id == poison:
            book.members[txn.member_id].stored_value = 2**70
            book.dirty[txn.member_id] = book.members[txn.member_id]
        return result

    def until(book, txns, results, starts_ms, ends_ms, skip, release=False):  # engine/scoring.py `score_until`, planted
        index = len(results)
        while index < len(txns):
            if (skip and index in skip) or starts_ms <= txns[index].occurred_at_ms < ends_ms:
                return index
            results.append(scoring(book, txns[index]))
            if release:
                txns[index] = None
            index += 1
        return index

    monkeypatch.setattr(actors.shard, "score_transaction", scoring)
    monkeypatch.setattr(actors.shard, "score_until", until)  # compiled, it calls the engine's own scoring


def test_a_member_the_midnight_run_fails_on_sinks_its_own_transactions_not_the_batch(tmp_path, monkeypatch):
    import actors.shard

    visited = actors.shard.visit

    def visit(book: Book, member_ids: list[str], run: int, planned: object = None) -> list:
        if member_ids == ["m2"]:
            raise ZeroDivisionError("planted: an engine defect on one member's midnight")
        return visited(book, member_ids, run, planned)

    shard = open_shard(tmp_path)
    shard.apply([buy(f"t-m{n}", f"m{n}", DAY, line(2900)) for n in range(4)])
    shard.midnight_begin(parse_day("2026-11-18"))
    monkeypatch.setattr(actors.shard, "visit", visit)
    results = shard.apply([buy("u1", "m1", DAY, line(2900)), buy("u2", "m2", DAY, line(2900)),
                           buy("u3", "m2", DAY, line(2900)), buy("u4", "m3", DAY, line(2900))])
    assert [(r.outcome, r.reason) for r in results] == [
        ("accepted", ""), ("rejected", "cannot_apply"), ("rejected", "cannot_apply"), ("accepted", "")]


def test_a_transaction_the_engine_fails_on_is_rejected_and_the_rest_of_its_batch_applied_once(tmp_path, monkeypatch):
    shard = open_shard(tmp_path)
    _with_defect(monkeypatch, "bad", "raise")
    results = shard.apply([buy("t1", "m1", DAY, line(2900)), buy("bad", "m1", DAY, line(5000)),
                           buy("t2", "m2", DAY, line(10_000))])
    assert [(r.outcome, r.reason) for r in results] == [("accepted", ""), ("rejected", "cannot_apply"),
                                                        ("accepted", "")]
    assert (shard.member("m1").points, shard.member("m2").points) == (20, 100)
    assert shard.store.member("m1").points == 20


def test_a_shard_defect_that_fails_every_transaction_where_it_was_skipped_is_raised_not_retried(tmp_path, monkeypatch):
    """A failure that rejecting its transaction does not end (the scoring loop itself is at fault)
    is raised at the second try: the batch was retried without end, holding its shard."""
    import actors.shard

    real, calls = actors.shard.score_until, []

    def broken(*args, **options):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) <= 20:  # the shard's defect: fails before any transaction, for a while
            raise TypeError("planted")
        return real(*args, **options)

    shard = open_shard(tmp_path)
    monkeypatch.setattr(actors.shard, "score_until", broken)
    with pytest.raises(actors.shard.ScoringLoopError, match=r"transaction 0 \('t1'\) after rejecting it") as raised:
        shard.apply([buy("t1", "m1", DAY, line(2900)), buy("t2", "m2", DAY, line(2900))])
    assert isinstance(raised.value.__cause__, TypeError)  # the engine's own error, kept for the log and the answer
    assert len(calls) == 2  # once, then once more with the first transaction rejected
    monkeypatch.setattr(actors.shard, "score_until", real)
    assert [r.outcome for r in shard.apply([buy("t1", "m1", DAY, line(2900))])] == ["accepted"]


def test_a_batch_that_fails_to_commit_in_a_group_sinks_no_other(tmp_path, monkeypatch):
    """The second part fails to commit; the group is committed part by part: the others are
    applied, the later part of the same stream too (the failed one has its final answer)."""
    from tests.parts import part, results_of

    shard = open_shard(tmp_path)
    _with_defect(monkeypatch, "bad", "unstorable")
    payloads = [part([buy("t1", "m1", DAY, line(2900))]),
                part([buy("t2", "m2", DAY, line(3000)), buy("bad", "m3", DAY, line(100))], "s", 1),
                part([buy("t3", "m1", DAY, line(10_000))], "s", 2, after=1)]
    answers = [results_of(answer) for answer in shard.apply_encoded(payloads)]
    assert [[(r.outcome, r.reason) for r in answer] for answer in answers] == [
        [("accepted", "")], [("rejected", "cannot_apply")] * 2, [("accepted", "")]]
    assert shard.store.member("m1").points == 120
    assert shard.store.member("m2") is None
    assert shard.store.member("m3") is None
    later = shard.apply_encoded([part([buy("t4", "m4", DAY, line(1000))], "s", 3, after=2)])
    assert [r.outcome for r in results_of(later[0])] == ["accepted"]


def test_a_group_whose_every_batch_fails_alone_is_the_store_at_fault_and_nothing_is_committed(tmp_path, monkeypatch):
    from tests.parts import part

    shard = open_shard(tmp_path)
    _with_defect(monkeypatch, "bad", "unstorable")
    payloads = [part([buy("bad", f"m{n}", DAY, line(100))]) for n in range(2)]
    answers = shard.apply_encoded(payloads)
    assert [type(answer) for answer in answers] == [OverflowError, OverflowError]
    assert shard.member("m0") is None


def issue(txn_id: str, member: str, coupon_id: str) -> Transaction:
    return Transaction(txn_id, member, ms(DAY), "coupon_issue", coupon_id=coupon_id)


def test_coupon_inventory_taken_survives_a_restart(tmp_path):
    rules = RULES.replace("inventory = 200000", "inventory = 2")
    shard = open_shard(tmp_path, rules)
    shard.apply([buy(f"b{n}", f"m{n}", DAY, line(100)) for n in range(3)])
    assert [r.coupon_code for r in shard.apply([issue("i1", "m1", "RECHARGE20"), issue("i2", "m2", "RECHARGE20")])
            ] == ["RECHARGE20-m1-1", "RECHARGE20-m2-1"]
    shard.close()
    again = open_shard(tmp_path, rules)
    result = again.apply([issue("i3", "m0", "RECHARGE20")])[0]
    assert (result.outcome, result.reason) == ("rejected", "out_of_stock")


def test_a_batch_that_cannot_be_committed_gives_its_coupon_units_back(tmp_path):
    shard = open_shard(tmp_path, map_bytes=256 << 10, max_map_bytes=256 << 10)
    shard.apply([buy("t0", "m1", DAY, line(2900))])
    huge = [buy(f"t{n}", f"m{n}", DAY, line(1000)) for n in range(2, 3000)]  # each enrollment issues WELCOME10
    with pytest.raises(StorageFullError):
        shard.apply(huge)
    assert shard.book.stock.snapshot() == {"WELCOME10": 1}


# -- what metrics read: stored value held, and what commits outside batches did ------------


def held(shard: Shard) -> tuple[int, int]:
    """Principal and bonus as the stored members hold them."""
    members = list(shard.store.members())
    return sum(m.stored_value for m in members), sum(m.bonus_value for m in members)


def test_stored_value_held_follows_commits_and_is_the_same_after_a_restart(tmp_path):
    shard = open_shard(tmp_path)
    shard.apply([recharge("c1", "m1", DAY, 20_000), recharge("c2", "m2", DAY, 5_000), pay("p1", "m1", DAY, 6_000)])
    status = shard.status()
    assert (status.stored_value, status.bonus_value) == held(shard)
    assert status.bonus_value > 0  # "recharge 100, get 10" gave m1 a bonus
    assert status.stored_value + status.bonus_value == 20_000 + 1_000 + 5_000 - 6_000
    shard.close()
    again = open_shard(tmp_path)
    assert (again.status().stored_value, again.status().bonus_value) == (status.stored_value, status.bonus_value)


def failing_commits(monkeypatch: pytest.MonkeyPatch) -> None:
    from storage.shard_store import BatchWriter

    def fail(writer: BatchWriter) -> None:
        raise OSError("the disk went away")

    monkeypatch.setattr(BatchWriter, "commit", fail)


def test_stored_value_held_does_not_move_for_a_batch_that_cannot_be_committed(tmp_path, monkeypatch):
    shard = open_shard(tmp_path)
    shard.apply([recharge("c0", "m0", DAY, 20_000)])
    before = shard.status()
    with monkeypatch.context() as patched:
        failing_commits(patched)
        with pytest.raises(OSError, match="disk went away"):
            shard.apply([recharge("c1", "m1", DAY, 10_000), pay("p0", "m0", DAY, 5_000)])
    assert (shard.status().stored_value, shard.status().bonus_value) == (before.stored_value, before.bonus_value)
    shard.apply([recharge("c1", "m1", DAY, 10_000)])
    assert (shard.status().stored_value, shard.status().bonus_value) == held(shard)


def test_enrollment_and_midnight_changes_are_counted_once_committed_and_batches_are_not_counted_twice(tmp_path):
    shard = open_shard(tmp_path)
    shard.enroll(Enrollment(member_id="m1"))
    _, stats = shard.apply_counted([buy("t1", "m2", DAY, line(2900)), issue("i1", "m2", "BIRTHDAY-CAKE")])
    assert stats.coupons == {"issued WELCOME10": 1, "issued BIRTHDAY-CAKE": 1}
    assert shard.counts()[0].stats.coupons == {"issued WELCOME10": 1}  # the batch's travel with its answer
    before = shard.counts()[0]
    for day in range(parse_day("2026-11-18"), parse_day("2026-12-19")):
        shard.midnight_begin(day)
        while not shard.midnight_step()[2]:
            pass
    assert shard.counts()[0].stats.since(before.stats).coupons == {"expired BIRTHDAY-CAKE": 1, "expired WELCOME10": 2}


def test_what_a_shard_counted_outside_its_answers_survives_its_death(tmp_path):
    # held in memory until the coordinator's next look, a killed shard's last second of midnight
    # work and events written was never counted (an outside probe: half of them, after a kill)
    shard = open_shard(tmp_path)
    shard.enroll_many([Enrollment(member_id=f"m{n}") for n in range(3)])
    shard.midnight_begin(parse_day("2026-11-18"))
    while not shard.midnight_step()[2]:
        pass
    counted = shard.counts()[0]
    assert counted.stats.coupons == {"issued WELCOME10": 3}
    assert sum(counted.events.values()) == shard.outbox.state().newest > 0  # every event written, once
    shard.store.env.close()  # killed: nothing more is written
    again = open_shard(tmp_path)
    assert again.counts() == (counted, counted)


def test_an_enrollment_that_cannot_be_committed_is_not_counted(tmp_path, monkeypatch):
    shard = open_shard(tmp_path)
    with monkeypatch.context() as patched:
        failing_commits(patched)
        with pytest.raises(OSError, match="disk went away"):
            shard.enroll_many([Enrollment(member_id=f"m{n}") for n in range(3)])
    assert shard.counts()[0].stats.coupons == {}
    shard.enroll(Enrollment(member_id="m1"))
    assert shard.counts()[0].stats.coupons == {"issued WELCOME10": 1}


def test_a_resent_batch_is_answered_as_it_was_and_a_rejected_id_sent_in_another_batch_is_scored_again(tmp_path):
    # resent because its answer was lost, a batch's rejected redeem and payment were scored again
    # against what later batches had done: points and stored value moved that the first answer refused
    from tests.parts import part, results_of

    spending = [redeem("R1", "m1", DAY, points=500), pay("P1", "m1", DAY, 5_000)]
    first = [buy("T1", "m1", DAY, line(1_000)), *spending]
    later = [buy("T2", "m1", DAY, line(100_000)), recharge("C1", "m1", DAY, 20_000)]
    shard = open_shard(tmp_path)
    answered = results_of(shard.apply_encoded([part(first, batch_id="B1")])[0])
    assert [(r.outcome, r.reason) for r in answered] == [
        ("accepted", ""), ("rejected", "insufficient_points"), ("rejected", "insufficient_balance")]
    results_of(shard.apply_encoded([part(later, batch_id="B2")])[0])
    shard.close()
    shard = open_shard(tmp_path)  # remembered in the commit: a restart between answers the same
    before = shard.member("m1")
    again = results_of(shard.apply_encoded([part(first, batch_id="B1")])[0])
    assert [(r.outcome, r.reason) for r in again] == [
        ("duplicate", ""), ("rejected", "insufficient_points"), ("rejected", "insufficient_balance")]
    assert shard.member("m1") == before
    anew = results_of(shard.apply_encoded([part(spending, batch_id="B3")])[0])  # the till sends them again
    assert [(r.outcome, r.points, r.value_minor) for r in anew] == [("accepted", -500, 0), ("accepted", 0, -5_000)]


def test_a_resent_batchs_rejections_answered_as_they_were_are_counted_as_answers(tmp_path):
    # patron_transactions_total counts answers: a rejection answered from memory was left out, so
    # a file sent twice counted fewer answers than it had lines (an outside probe)
    from tests.parts import counted_of, part

    batch = part([buy("T1", "m1", DAY, line(1_000)), redeem("R1", "m1", DAY, points=500)], batch_id="B1")
    shard = open_shard(tmp_path)
    first = counted_of(shard.apply_encoded([batch]))
    again = counted_of(shard.apply_encoded([batch]))
    grouped = counted_of(shard.apply_encoded([batch, part([buy("T2", "m1", DAY, line(100))], batch_id="B2"), batch]))
    assert first == {"purchase accepted ": 1, "redeem rejected insufficient_points": 1}
    assert again == {"purchase duplicate ": 1, "redeem rejected insufficient_points": 1}
    assert grouped == {"purchase duplicate ": 2, "purchase accepted ": 1, "redeem rejected insufficient_points": 2}
    together = counted_of(shard.apply_encoded([batch, part([redeem("R3", "m1", DAY, points=10**6)], batch_id="B3")]))
    assert together == {"purchase duplicate ": 1, "redeem rejected insufficient_points": 2}  # one commit, both parts


def test_an_id_a_batch_sent_twice_rejected_both_times_is_answered_at_each_place_as_it_was(tmp_path):
    """One reason was kept per (member, id) and batch, the last: a resend answered a negative
    purchase `insufficient_points`, its redeem's reason (an outside probe)."""
    from tests.parts import part, results_of

    shard = open_shard(tmp_path)
    shard.apply_encoded([part([buy("T0", "m1", DAY, line(1_500))])])
    batch = part([buy("X2", "m1", DAY, line(1_000), amount_minor=-5), redeem("X2", "m1", DAY, points=999_999),
                  redeem("X1", "m1", DAY, points=999_999), buy("X1", "m1", DAY, line(-1))], batch_id="B1")
    first = results_of(shard.apply_encoded([batch])[0])
    again = results_of(shard.apply_encoded([batch])[0])
    grouped = [results_of(answer) for answer in shard.apply_encoded([batch, batch])]
    assert [r.reason for r in first] == ["negative_amount", "insufficient_points", "insufficient_points",
                                         "negative_amount"]
    assert [r.outcome for r in first] == ["rejected"] * 4
    assert again == first
    assert grouped == [first, first]


def test_a_batchs_rejections_are_forgotten_after_two_business_days(tmp_path):
    from tests.parts import part

    shard = open_shard(tmp_path)
    shard.apply_encoded([part([redeem("R1", "m1", DAY, points=500)], batch_id="B1")])
    shard.apply_encoded([part([buy("T1", "m1", DAY, line(100))], batch_id="B0")])  # nothing rejected: nothing kept
    assert shard.store.rejections("B1") == {("m1", "R1"): ["unknown_member"]}
    for day in ("2026-11-18", "2026-11-19", "2026-11-20"):
        shard.midnight_begin(parse_day(day))
        while not shard.midnight_step()[2]:
            pass
        kept = shard.store.rejections("B1")
        assert bool(kept) == (day != "2026-11-20")
    assert shard.store.rejections("B0") == {}


def test_a_resend_queued_with_its_batch_and_an_id_applied_on_its_second_sending_are_answered_as_they_were(tmp_path):
    from tests.parts import part, results_of

    shard = open_shard(tmp_path)
    batch = part([buy("T0", "m1", DAY, line(100)), redeem("R1", "m1", DAY, points=500),
                  buy("T1", "m1", DAY, line(100_000)), redeem("R1", "m1", DAY, points=500)], batch_id="B1")
    first, resent = (results_of(answer) for answer in shard.apply_encoded([batch, batch]))
    assert [(r.outcome, r.reason) for r in first] == [
        ("accepted", ""), ("rejected", "insufficient_points"), ("accepted", ""), ("accepted", "")]
    assert [r.outcome for r in resent] == ["duplicate"] * 4  # R1 was applied by the batch: the index says so
    assert shard.store.rejections("B1") == {}
    assert shard.member("m1").points == first[0].points + first[2].points - 500


def test_a_resend_in_the_same_group_as_its_batch_finds_what_the_batch_rejected(tmp_path):
    from tests.parts import part, results_of

    shard = open_shard(tmp_path)
    shard.apply([buy("T0", "m1", DAY, line(100))])
    rejected = part([redeem("R2", "m1", DAY, points=500)], batch_id="B2")
    answers = shard.apply_encoded([rejected, part([buy("T1", "m1", DAY, line(100_000))], batch_id="B3"), rejected])
    assert [[(r.outcome, r.reason) for r in results_of(answer)] for answer in answers] == [
        [("rejected", "insufficient_points")], [("accepted", "")], [("rejected", "insufficient_points")]]


def test_a_resent_batchs_rejected_id_applied_since_in_another_batch_is_answered_duplicate(tmp_path):
    # an outside probe: a payment refused in B1 was sent again in B3 and taken; B1 resent (its
    # answer lost) said "rejected insufficient_balance" for money that had been taken (SPEC §2: a
    # resubmitted applied id answers duplicate, with what it did)
    from tests.parts import part, results_of

    shard = open_shard(tmp_path)
    first = part([recharge("C0", "m1", DAY, 1_000), pay("P1", "m1", DAY, 5_000)], batch_id="B1")
    assert [(r.outcome, r.reason) for r in results_of(shard.apply_encoded([first])[0])] == [
        ("accepted", ""), ("rejected", "insufficient_balance")]
    shard.apply_encoded([part([recharge("C1", "m1", DAY, 9_999)], batch_id="B2")])
    [taken] = results_of(shard.apply_encoded([part([pay("P1", "m1", DAY, 5_000)], batch_id="B3")])[0])
    assert (taken.outcome, taken.value_minor) == ("accepted", -5_000)
    before = shard.member("m1")
    again = results_of(shard.apply_encoded([first])[0])
    assert [(r.outcome, r.value_minor) for r in again] == [("duplicate", 1_000), ("duplicate", -5_000)]
    assert shard.member("m1") == before
    # the same when the id is applied earlier in the resend's own group (one commit)
    refused = part([pay("P2", "m1", DAY, 9_000)], batch_id="B4")
    assert [r.reason for r in results_of(shard.apply_encoded([refused])[0])] == ["insufficient_balance"]
    answers = shard.apply_encoded([part([recharge("C2", "m1", DAY, 5_000), pay("P2", "m1", DAY, 9_000)],
                                        batch_id="B5"), refused])
    assert [[(r.outcome, r.value_minor) for r in results_of(answer)] for answer in answers] == [
        [("accepted", 5_000), ("accepted", -9_000)], [("duplicate", -9_000)]]
    assert shard.member("m1").stored_value == 1_000 + 9_999 - 5_000 + 5_000 - 9_000


def test_a_resent_batchs_recalled_rejections_are_counted_and_remembered_once(tmp_path):
    # answered from memory, a resend's rejections were counted again in the coupons' out_of_stock
    # and remembered again under a new day, kept past their two business days (a review)
    from tests.parts import part, results_of, stats_of

    shard = open_shard(tmp_path, RULES.replace("inventory = 200000", "inventory = 1"))
    shard.apply([buy("b1", "m1", DAY, line(100)), buy("b2", "m2", DAY, line(100))])
    coupons = part([issue("i1", "m1", "RECHARGE20"), issue("i2", "m2", "RECHARGE20")], batch_id="B1")
    first, again = shard.apply_encoded([coupons]), shard.apply_encoded([coupons])
    assert [r.reason for r in results_of(again[0])] == ["", "out_of_stock"]
    assert stats_of(first).coupons["out_of_stock RECHARGE20"] == 1
    assert "out_of_stock RECHARGE20" not in stats_of(again).coupons
    redeems = part([redeem("R1", "m3", DAY, points=500)], batch_id="B2")
    shard.apply_encoded([redeems])
    kept = []
    for day in ("2026-11-18", "2026-11-19", "2026-11-20"):
        shard.midnight_begin(parse_day(day))
        while not shard.midnight_step()[2]:
            pass
        if day == "2026-11-18":
            assert [r.reason for r in results_of(shard.apply_encoded([redeems])[0])] == ["unknown_member"]
        kept.append(bool(shard.store.rejections("B2")))
    assert kept == [True, True, False]  # two business days from the first sending, the resend's none


def test_a_recalled_transactions_member_is_not_brought_through_midnight_for_it(tmp_path, monkeypatch):
    # brought through a run under way for a transaction answered from memory, a member the run
    # failed on turned the recalled answer into cannot_apply, and remembered that (a review)
    import actors.shard
    from tests.parts import part, results_of

    shard = open_shard(tmp_path)
    shard.apply([buy(f"t-m{n}", f"m{n}", DAY, line(2900)) for n in range(4)])
    batch = part([redeem("R1", "m3", DAY, points=5_000)], batch_id="B1")
    assert [r.reason for r in results_of(shard.apply_encoded([batch])[0])] == ["insufficient_points"]
    shard.midnight_begin(parse_day("2026-11-18"))
    visited = actors.shard.visit

    def visit(book, member_ids, run, planned=None):  # type: ignore[no-untyped-def]
        if member_ids == ["m3"]:
            raise ZeroDivisionError("planted")
        return visited(book, member_ids, run, planned)

    monkeypatch.setattr(actors.shard, "visit", visit)
    assert [(r.outcome, r.reason) for r in results_of(shard.apply_encoded([batch])[0])] == [
        ("rejected", "insufficient_points")]
    assert shard.store.rejections("B1") == {("m3", "R1"): ["insufficient_points"]}


def test_a_resend_with_an_engine_defect_elsewhere_or_dated_past_midnight_answers_each_once(tmp_path, monkeypatch):
    from tests.parts import counted_of, part, results_of

    shard = open_shard(tmp_path)
    batch = part([recharge("C0", "m1", DAY, 1_000), pay("P1", "m1", DAY, 5_000), buy("bad", "m2", DAY, line(100)),
                  pay("P2", "m1", "2026-11-18 00:30", 9_000)], batch_id="B1")
    assert [(r.outcome, r.reason) for r in results_of(shard.apply_encoded([batch])[0])] == [
        ("accepted", ""), ("rejected", "insufficient_balance"), ("accepted", ""), ("rejected", "insufficient_balance")]
    shard.apply_encoded([part([recharge("C1", "m1", DAY, 50_000), pay("P2", "m1", "2026-11-18 00:30", 9_000)],
                              batch_id="B2")])
    before = shard.member("m1")
    _with_defect(monkeypatch, "bad", "raise")
    answers = shard.apply_encoded([batch])
    assert [(r.outcome, r.reason, r.value_minor) for r in results_of(answers[0])] == [
        ("duplicate", "", 1_000), ("rejected", "insufficient_balance", 0), ("rejected", "cannot_apply", 0),
        ("duplicate", "", -9_000)]
    assert shard.member("m1") == before
    assert sum(counted_of(answers).values()) == 4


def test_held_points_voided_stay_taken_back_once_after_a_restart(tmp_path):
    # the void's mark on the purchase's index record is committed with it: a refund after a
    # restart takes nothing again (an outside probe's member was left in debt without the mark)
    rules = RULES.replace('action = "flag"', 'action = "hold"')
    shard = open_shard(tmp_path, rules)
    [held] = shard.apply([buy("t1", "m1", DAY, line(800_000))])
    assert held.reason == "held"
    shard.set_status("m1", "void_held", "fraud confirmed")
    shard.close()
    again = open_shard(tmp_path, rules)
    [refunded] = again.apply([Transaction("r1", "m1", ms(DAY), "refund", refund_of="t1", amount_minor=800_000)])
    member = again.member("m1")
    assert (refunded.outcome, refunded.points, member.points, member.pending_points) == ("accepted", 0, 0, 0)


@pytest.mark.parametrize("hot_members", [0, 2])
def test_held_points_released_inside_their_return_window_become_spendable_at_its_end(tmp_path, hot_members):
    # a probe: released points were spendable at once, redeemed, and the purchase then refunded,
    # leaving a debt. Released after a run has planned the member's next one, the run at the
    # window's end must still visit it (every member in memory: no wake-up index to tell it).
    rules = RULES.replace("pending_days = 0 ", "pending_days = 3 ").replace('action = "flag"', 'action = "hold"')
    rules = rules.replace('issue_on = "enroll"', 'issue_on = "api"')  # no welcome coupon: its reminder wakes the member
    shard = open_shard(tmp_path, rules, hot_members=hot_members)
    [held] = shard.apply([buy("t1", "m1", DAY, line(800_000))])
    assert held.reason == "held"

    def run(day: str) -> tuple[int, int]:
        shard.midnight_begin(parse_day(day))
        while not shard.midnight_step(limit=1)[2]:
            pass
        member = shard.member("m1")
        return member.points, member.pending_points

    assert run("2026-11-18") == (0, held.points)
    shard.set_status("m1", "release_held", "checked")
    assert shard.apply([redeem("g1", "m1", "2026-11-18 10:00", points=1)])[0].reason == "insufficient_points"
    assert run("2026-11-19") == (0, held.points)
    assert run("2026-11-20") == (held.points, 0)  # the run of 11-17 + 3 days


@pytest.mark.parametrize("hot_members", [0, 2])
def test_held_points_released_while_the_run_that_ends_their_window_walks_are_spendable_at_once(tmp_path,
                                                                                            hot_members):
    # a review: released during the walk of 11-20 (the member not on its list), they were
    # dated 11-19, kept pending until 11-20, and that run had passed: spendable a day late
    rules = RULES.replace("pending_days = 0 ", "pending_days = 3 ").replace('action = "flag"', 'action = "hold"')
    rules = rules.replace('issue_on = "enroll"', 'issue_on = "api"')
    shard = open_shard(tmp_path, rules, hot_members=hot_members)
    [held] = shard.apply([buy("t1", "m1", DAY, line(800_000))])
    for day in ("2026-11-18", "2026-11-19", "2026-11-20"):
        shard.midnight_begin(parse_day(day))
        if day == "2026-11-20":
            shard.set_status("m1", "release_held", "checked")
        while not shard.midnight_step(limit=1)[2]:
            pass
    member = shard.member("m1")
    assert (member.points, member.pending_points) == (held.points, 0)
    ledger = shard.ledger("m1")
    assert (sum(e.points for e in ledger), sum(e.pending for e in ledger)) == (held.points, 0)


def test_a_members_row_in_a_later_chunk_of_the_import_is_refused_unless_it_is_the_same_row(tmp_path):
    """A later chunk is not a resend: a row of a member an earlier chunk imported with other
    balances was counted as imported before, its balances dropped in silence (a probe)."""
    from actors.opening_wire import encode_rows
    from engine.opening import Opening, OpeningLot

    shard = open_shard(tmp_path / "s")
    first = shard.import_members("imp-1", encode_rows([Opening(member_id="IM1", growth=5,
                                                               points=[OpeningLot(40)])]))
    later = shard.import_members("imp-1", encode_rows([
        Opening(member_id="IM2"), Opening(member_id="IM1", growth=5, points=[OpeningLot(41)])]))
    same = shard.import_members("imp-1", encode_rows([Opening(member_id="IM1", growth=5,
                                                              points=[OpeningLot(40)])]))
    frozen = shard.import_members("imp-1", encode_rows([Opening(member_id="IM1", growth=5, status="frozen",
                                                                points=[OpeningLot(40)])]))
    silver = shard.import_members("imp-1", encode_rows([Opening(member_id="IM1", growth=5, tier="Silver",
                                                                points=[OpeningLot(40)])]))
    member = shard.member("IM1")
    shard.close()
    assert (first.imported, later.imported, later.imported_before) == (1, 1, 0)
    assert [(r.index, r.reason) for r in later.rejected] == [(1, "member_exists")]
    assert "another row of this import" in later.rejected[0].detail
    assert (same.imported, same.imported_before, same.rejected) == (0, 1, [])  # as a resend is
    assert [(r.index, r.reason) for r in frozen.rejected + silver.rejected] == [(0, "member_exists")] * 2
    assert (member.points, member.growth) == (40, 5)


def test_an_import_chunk_resent_after_a_run_made_one_of_its_lots_lapse_is_answered_imported_before(tmp_path):
    # its row was judged first: points expiring 11-18 had lapsed by then, `points_expired`
    from actors.opening_wire import encode_rows
    from engine.opening import Opening, OpeningLot

    shard = open_shard(tmp_path / "s")
    rows = encode_rows([Opening(member_id="IM1", points=[OpeningLot(40, "2026-11-18"), OpeningLot(5)])])
    first = shard.import_members("imp-1", rows)
    shard.midnight_begin(parse_day("2026-11-18"))
    while not shard.midnight_step(limit=100)[2]:
        pass
    again = shard.import_members("imp-1", rows)
    member = shard.member("IM1")
    shard.close()
    assert (first.imported, first.rejected) == (1, [])
    assert (again.imported, again.imported_before, again.rejected) == (0, 1, [])
    assert member.points == 5  # the 40 expired at the run, not imported again


def test_a_resent_import_chunk_answers_a_members_second_row_as_it_did_the_first_time(tmp_path):
    """The first send imported the first row and refused the second `member_exists`; resent, the
    second counted as imported before, as if it had been imported (an outside probe)."""
    from actors.opening_wire import encode_rows
    from engine.opening import Opening

    shard = open_shard(tmp_path / "s")
    rows = encode_rows([Opening(member_id="IM1", growth=5), Opening(member_id="IM2"),
                        Opening(member_id="IM1", growth=7)])
    first = shard.import_members("imp-1", rows)
    again = shard.import_members("imp-1", rows)
    shard.close()
    assert (first.imported, first.imported_before, [(r.index, r.reason) for r in first.rejected]) == (
        2, 0, [(2, "member_exists")])
    assert (again.imported, again.imported_before, [(r.index, r.reason) for r in again.rejected]) == (
        0, 2, [(2, "member_exists")])


def test_a_group_scored_again_after_an_engine_defect_reads_its_parts_again(tmp_path, monkeypatch):
    """The gateway's path lets each transaction go as it is scored (engine/scoring.py `release`):
    scoring again without the one that failed reads the parts' bytes again. Scored again from the
    list it had let go, it met None where the transactions were."""
    from tests.parts import part, results_of

    shard = open_shard(tmp_path)
    _with_defect(monkeypatch, "bad", "raise")
    payloads = [part([buy("t1", "m1", DAY, line(2900)), buy("bad", "m1", DAY, line(5000))], batch_id="b1"),
                part([buy("t2", "m2", DAY, line(10_000)), refund("r1", "m1", DAY, "t1", 2900)], batch_id="b2")]
    answers = [results_of(answer) for answer in shard.apply_encoded(payloads)]
    assert [[(r.txn_id, r.outcome, r.reason) for r in answer] for answer in answers] == [
        [("t1", "accepted", ""), ("bad", "rejected", "cannot_apply")],
        [("t2", "accepted", ""), ("r1", "accepted", "")]]
    assert (shard.store.member("m1").points, shard.store.member("m2").points) == (0, 100)  # each once


def test_a_group_scored_again_after_the_store_grew_reads_its_parts_again(tmp_path, monkeypatch):
    shard = open_shard(tmp_path)
    from tests.parts import part, results_of

    opened, failures = BatchWriter.__init__, [OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))]

    def failing_once(writer: BatchWriter, store: ShardStore) -> None:
        opened(writer, store)
        if failures:
            writer.txn = _FailingCommit(writer.txn, failures.pop())

    # one part: a commit of a group fails over to its parts one by one only for errors other than a full store
    payloads = [part([buy("t1", "m1", DAY, line(2900)), buy("t2", "m1", DAY, line(5000))])]
    plain = open_shard(tmp_path / "plain")
    expected = [results_of(answer) for answer in plain.apply_encoded(payloads)]
    monkeypatch.setattr(BatchWriter, "__init__", failing_once)
    answers = [results_of(answer) for answer in shard.apply_encoded(payloads)]
    assert not failures  # the first commit failed, the map grew, the part was scored again
    assert answers == expected
    assert [[r.outcome for r in answer] for answer in answers] == [["accepted", "accepted"]]
    assert shard.store.member("m1") == plain.store.member("m1")


def test_the_gateways_transactions_are_held_by_the_scoring_alone_and_let_go_as_scored(tmp_path, monkeypatch):
    """No list of the group's parts still holds them, and the scoring lets each go: freed then."""
    import sys

    import actors.shard
    from tests.parts import part

    scoring_until, held, released = actors.shard.score_until, [], []

    def references(txns: list) -> list[int]:
        return [sys.getrefcount(txn) for txn in txns]

    def watching(book, txns, results, *rest, **options):  # type: ignore[no-untyped-def]
        held.extend(references(txns))
        try:
            return scoring_until(book, txns, results, *rest, **options)
        finally:
            released.extend(txn is None for txn in txns)

    monkeypatch.setattr(actors.shard, "score_until", watching)
    baseline = references([buy("t0", "m0", DAY, line(100))])[0]  # held by its list alone
    shard = open_shard(tmp_path)
    shard.apply_encoded([part([buy("t1", "m1", DAY, line(2900))]), part([buy("t2", "m2", DAY, line(2900))])])
    assert held == [baseline, baseline]
    assert released == [True, True]  # let go as they were scored


def test_a_commits_ledger_entries_and_index_records_are_held_by_the_commit_alone_and_let_go(tmp_path, monkeypatch):
    """The shard keeps no list of the write's entries past its counting, so the commit frees each
    entry and index record as it encodes it (storage/row_packer.pyx, `release`)."""
    import sys

    from engine.ledger import LedgerEntry
    from engine.transactions import TxnRecord

    chaining, indexing, entries, records, let_go = shard_store.chained_ledger_rows, shard_store.index_rows, [], [], []

    def references(held: object) -> list[int]:
        return [sys.getrefcount(one) for one in held]  # type: ignore[attr-defined]

    def watch_entries(given, *rest, **options):  # type: ignore[no-untyped-def]
        entries.extend(references(given))
        try:
            return chaining(given, *rest, **options)
        finally:
            let_go.extend(entry is None for entry in given)

    def watch_records(index, *rest, **options):  # type: ignore[no-untyped-def]
        records.extend(references(index.values()))
        try:
            return indexing(index, *rest, **options)
        finally:
            let_go.extend(record is None for record in index.values())

    monkeypatch.setattr(shard_store, "chained_ledger_rows", watch_entries)
    monkeypatch.setattr(shard_store, "index_rows", watch_records)
    alone = references([LedgerEntry("m", 1, 20_000, "txn", "t", 1, "earn")])  # held by its list alone
    alone += references({("m", "t"): TxnRecord("m", "purchase", 20_000, 1, 1, "", 1)}.values())
    shard = open_shard(tmp_path)
    shard.apply([buy("t1", "m1", DAY, line(2900)), buy("t2", "m2", DAY, line(2900))])
    assert len(entries) >= 2
    assert len(records) == 2
    assert set(entries) == {alone[0]}
    assert set(records) == {alone[1]}
    assert let_go == [True] * (len(entries) + len(records))


NO_TAGS = RULES[:RULES.index("[[tags]]")] + RULES[RULES.index("[notify]"):]


def test_a_window_a_publish_brings_back_counts_each_day_once(tmp_path):
    # a version without a spend window left the days of the one before on members, and the next
    # publish with a window made them again from the index on top: 6,000.00 spent reached Gold's 10,000.00
    gold_by_growth = NO_TAGS.replace('metric = "spend"\nwindow = "3 months"\nthreshold = 1000000 ',
                                     'metric = "growth"\nwindow = "12 months"\nthreshold = 9000000 ')
    assert gold_by_growth != NO_TAGS
    shard = open_shard(tmp_path, NO_TAGS)
    shard.apply([buy("t1", "m1", DAY, line(600_000))])
    for version, text in ((2, gold_by_growth), (3, NO_TAGS)):
        shard.publish(text.replace("version = 1", f"version = {version}"))
        shard.reevaluate_step()
    assert shard.book.members["m1"].windows["spend"] == {parse_day(DAY[:10]): 600_000}
    assert shard.member("m1").tier != "Gold"


def test_a_growth_window_a_publish_brings_back_starts_from_the_publish(tmp_path):
    # a review: made again from nothing, it still held the days a version before the one in between kept
    by_growth = NO_TAGS.replace('metric = "spend"\nwindow = "3 months"\nthreshold = 1000000 ',
                                'metric = "growth"\nwindow = "12 months"\nthreshold = 9000 ')
    shard = open_shard(tmp_path, by_growth)
    shard.apply([buy("t1", "m1", DAY, line(600_000))])  # 6,000 growth
    for version, text in ((2, NO_TAGS), (3, by_growth)):
        shard.publish(text.replace("version = 1", f"version = {version}"))
        shard.reevaluate_step()
    before = shard.book.members["m1"].growth
    shard.apply([buy("t2", "m1", DAY, line(400_000))])
    member = shard.book.members["m1"]
    assert member.windows["growth"] == {parse_day(DAY[:10]): member.growth - before}
    assert shard.member("m1").tier != "Gold"


COUNTING_TAGS = ('[[tags]]\nname = "buyer"\npurchases = 1\nwindow = "30 days"\n\n'
                 '[[tags]]\nname = "ever bought"\npurchases = 1\nwindow = "lifetime"\n\n')


def test_a_purchase_count_tag_a_publish_brings_back_counts_the_purchases_the_index_remembers(tmp_path):
    # an events probe: the tag came back for the members who bought while an earlier version counted
    # purchases, and not for those who bought before it, although each had one purchase in the window
    counted = NO_TAGS.replace("[notify]", COUNTING_TAGS + "[notify]")
    shard = open_shard(tmp_path, NO_TAGS)
    shard.apply([buy("t1", "m1", DAY, line(1000))])
    shard.publish(counted.replace("version = 1", "version = 2"))
    shard.apply([buy("t2", "m2", DAY, line(1000)), buy("t3", "m3", DAY, line(1000)),
                 refund("r3", "m3", "2026-11-17 11:00", "t3", 1000)])  # refunded in full: not counted
    shard.publish(NO_TAGS.replace("version = 1", "version = 3"))
    shard.publish(counted.replace("version = 1", "version = 4"))
    shard.reevaluate_step()
    _midnights_to(shard, "2026-11-18")
    assert [shard.member(m).tags for m in ("m1", "m2", "m3")] == [["buyer", "ever bought"]] * 2 + [[]]
    assert [shard.book.members[m].purchases for m in ("m1", "m2", "m3")] == [1, 1, 0]


def test_members_created_while_a_midnight_run_walks_are_brought_through_it(tmp_path):
    # an import probe: a chunk that came during the run for 18 November was opened as of the 17th,
    # and the walk, listed when the run began, never reached it: the points lapsing at 00:00 of the
    # 18th were spent that day, and Gold, valid through the 17th, was kept a day more
    from actors.opening_wire import encode_rows
    from engine.opening import Opening, OpeningLot

    shard = open_shard(tmp_path)
    shard.apply([buy("t1", "m1", DAY, line(2900))])
    run = parse_day("2026-11-18")
    shard.midnight_begin(run)  # begun, its walk not yet stepped
    row = Opening(member_id="i1", tier="Gold", tier_valid_until="2026-11-17",
                  points=[OpeningLot(10, "2026-11-18"), OpeningLot(5, "never")])
    assert shard.import_members("import-1", encode_rows([row])).imported == 1
    shard.enroll(Enrollment(member_id="e1"))
    shard.enroll_many([Enrollment(member_id="e2")])

    def state() -> tuple:
        imported = shard.member("i1")
        return (imported.points, imported.tier, [shard.book.members[m].midnight_done for m in ("i1", "e1", "e2")])

    assert state() == (5, "Basic", [run] * 3)
    while not shard.midnight_step()[2]:
        pass
    assert state() == (5, "Basic", [run] * 3)
    assert [(e.kind, e.points) for e in shard.ledger("i1") if e.kind in ("expire", "tier")] == [
        ("expire", -10), ("tier", 0)]  # once each, by the run


def test_a_first_publish_with_tiers_not_counting_past_spend_still_counts_purchases_for_tags(tmp_path):
    # a review: it made no count again, so a member who had bought got no purchase-count tag, and the
    # full refund of an order made before it took the count below zero
    shard = open_shard(tmp_path, ONE_TIER)
    shard.apply([buy("t1", "m1", DAY, line(1000)), buy("t3", "m3", DAY, line(1000))])
    shard.publish(NO_TAGS.replace("[notify]", COUNTING_TAGS + "[notify]").replace("version = 1", "version = 2"),
                  count_past_spend=False)
    shard.reevaluate_step()
    shard.apply([refund("r3", "m3", "2026-11-17 11:00", "t3", 1000), buy("t4", "m3", "2026-11-17 12:00", line(1000))])
    _midnights_to(shard, "2026-11-18")
    assert [shard.member(m).tags for m in ("m1", "m3")] == [["buyer", "ever bought"]] * 2
    assert [shard.book.members[m].purchases for m in ("m1", "m3")] == [1, 1]


def test_a_refund_of_an_order_the_window_no_longer_holds_leaves_no_day_behind(tmp_path):
    # a review: the refund wrote the pruned day back, alone and negative, and a publish looking
    # further back then made again only the days before it: 6,500.00 of 11,000.00, and no Gold
    gold = NO_TAGS
    shard = open_shard(tmp_path, gold, start_day=parse_day("2026-01-10"))
    shard.apply([buy("t0", "m1", "2026-01-10 10:00", line(50_000))])
    _midnights_to(shard, "2026-01-20")
    shard.apply([buy("ta", "m1", "2026-01-20 10:00", line(400_000))])
    _midnights_to(shard, "2026-05-01")
    shard.apply([buy("t1", "m1", "2026-05-01 10:00", line(700_000))])  # 3 months: the January days go
    shard.apply([refund("r0", "m1", "2026-05-01 11:00", "t0", 50_000)])
    assert shard.book.members["m1"].windows["spend"] == {parse_day("2026-05-01"): 700_000}
    shard.publish(gold.replace("version = 1", "version = 2").replace('window = "3 months"', 'window = "12 months"'))
    shard.reevaluate_step()
    assert sum(shard.book.members["m1"].windows["spend"].values()) == 1_100_000
    assert shard.member("m1").tier == "Gold"


@pytest.mark.parametrize("during", [False, True])
def test_a_member_a_late_transaction_creates_while_a_midnight_run_walks_is_brought_through_it(tmp_path, during):
    # found reading the import probe's case: the walk, listed when the run began, never reached a
    # member created by a late purchase during it, whose pending points then waited a run more
    shard = open_shard(tmp_path, RULES.replace("pending_days = 0", "pending_days = 1"))
    shard.apply([buy("t1", "m1", DAY, line(2900))])
    late = [buy("n1", "n1", "2026-11-17 11:00", line(2900)), buy("n2", "n2", "2026-11-18 09:00", line(2900))]
    if not during:
        shard.apply(late[:1])
    shard.midnight_begin(parse_day("2026-11-18"))
    shard.apply(late[1:] + late[:1] if during else late[1:])
    while not shard.midnight_step()[2]:
        pass
    n1, n2 = shard.book.members["n1"], shard.book.members["n2"]
    assert (n1.points, n1.pending) == (20, 0)  # released by the run of the 18th, as before it began
    assert (n2.points, n2.pending) == (0, 20)  # created on the 18th: pending until the run of the 19th


def test_an_order_used_for_an_upgrade_stays_used_when_a_publish_lowers_the_threshold_again(tmp_path):
    # a review: a version raised a single purchase's threshold above an order used for an upgrade,
    # the next lowered it again, and the order, made again from the index, renewed the tier
    silver = NO_TAGS.replace('metric = "spend"\nwindow = "3 months"\nthreshold = 1000000 ',
                             'metric = "single_purchase"\nwindow = "12 months"\nthreshold = 10000 ').replace(
        'validity = "12 months"', 'validity = "1 months"', 1)
    shard = open_shard(tmp_path, silver)
    shard.apply([buy("t1", "m1", DAY, line(15_000))])
    assert shard.member("m1").tier == "Gold"
    _midnights_to(shard, "2026-12-18")  # its month over
    assert shard.member("m1").tier != "Gold"
    for version, threshold in ((2, "20000"), (3, "10000")):
        shard.publish(silver.replace("version = 1", f"version = {version}").replace(
            "threshold = 10000 ", f"threshold = {threshold} "))
        shard.reevaluate_step()
    assert shard.member("m1").tier != "Gold"
