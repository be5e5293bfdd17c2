"""The outbox on real LMDB, driven through a shard without Ray: events are committed with the
change that caused them or not at all, numbered per shard, kept for retention, and an older
data folder opens with an empty outbox."""

import json
from pathlib import Path

import lmdb
import pytest

from actors.shard_outbox import decode_page
from engine.calendar import parse_day
from engine.errors import StorageFullError
from tests.builders import buy, line, without_coupon_triggers
from tests.test_shard import RULES, open_shard

DAY = "2026-11-17 10:00"
GOLD = 1_000_000  # 10,000.00 in the example rules: Silver by growth, Gold by spend, and over the anomaly threshold
NO_COUPON_TRIGGERS = without_coupon_triggers(RULES)
"""The outbox's own mechanics, without the example's enrollment and upgrade coupons."""


def shard_at(path: Path, **options: object):
    return open_shard(path, NO_COUPON_TRIGGERS, **options)


def events(shard, after: int = 0, kinds: tuple[str, ...] = ()) -> list[tuple[int, str, str]]:
    page = decode_page(shard.outbox.page(after, 1000, list(kinds)))
    return [(seq, event.kind, event.member_id) for seq, event in page.events]


def test_a_batch_commits_its_events_in_order_with_a_sequence(tmp_path):
    shard = shard_at(tmp_path)
    shard.apply([buy("t1", "m1", DAY, line(2900)), buy("t2", "m2", DAY, line(GOLD))])
    assert events(shard) == [(1, "anomaly_flagged", "m2"), (2, "tier_changed", "m2")]
    detail = json.loads(decode_page(shard.outbox.page(1, 10, [])).events[0][1].detail)
    assert (detail["from_tier"], detail["to_tier"]) == ("Basic", "Gold")
    assert events(shard, kinds=("tier_changed",)) == [(2, "tier_changed", "m2")]
    state = shard.outbox.state()
    assert (state.pruned, state.newest, state.written) == (0, 2, {"anomaly_flagged": 1, "tier_changed": 1})
    assert shard.outbox.state().written == {}  # counted once


def test_events_of_skipped_kinds_still_move_the_page_on(tmp_path):
    shard = shard_at(tmp_path)
    shard.apply([buy("t2", "m2", DAY, line(GOLD))])
    page = decode_page(shard.outbox.page(0, 10, ["birthday"]))
    assert (page.events, page.through, page.newest) == ([], 2, 2)


def test_a_batch_that_cannot_be_committed_writes_no_event(tmp_path):
    shard = shard_at(tmp_path, map_bytes=256 << 10, max_map_bytes=256 << 10)
    huge = [buy("t1", "big", DAY, line(GOLD))] + [buy(f"t{n}", f"m{n}", DAY, line(1000)) for n in range(2, 3000)]
    with pytest.raises(StorageFullError):
        shard.apply(huge)
    assert events(shard) == []
    assert shard.book.notices == []
    shard.apply([buy("t9", "m9", DAY, line(GOLD))])
    assert [seq for seq, _, _ in events(shard)] == [1, 2]


def test_committed_events_survive_a_restart_and_numbering_goes_on(tmp_path):
    shard = shard_at(tmp_path)
    shard.apply([buy("t1", "m1", DAY, line(GOLD))])
    shard.close()
    again = shard_at(tmp_path)
    again.apply([buy("t2", "m2", DAY, line(GOLD))])
    assert [(seq, member) for seq, _, member in events(again)] == [(1, "m1"), (2, "m1"), (3, "m2"), (4, "m2")]


def midnight(shard, date: str) -> None:
    shard.midnight_begin(parse_day(date))
    while not shard.midnight_step()[2]:
        pass


def test_midnight_prunes_what_is_older_than_retention_and_numbering_goes_on(tmp_path):
    shard = shard_at(tmp_path)  # retention 7 days in the example rules
    shard.apply([buy("t1", "m1", DAY, line(GOLD))])
    for day in range(18, 25):
        midnight(shard, f"2026-11-{day}")
    assert shard.store.events_bounds() == (0, 2)  # written on the 17th, kept through the run of the 24th
    midnight(shard, "2026-11-25")
    assert shard.store.events_bounds() == (2, 2)
    assert events(shard) == []
    assert shard.outbox.state().removed == 2
    shard.close()
    again = shard_at(tmp_path)
    again.apply([buy("t2", "m2", "2026-11-25 10:00", line(GOLD))])
    assert [seq for seq, _, _ in events(again, after=2)] == [3, 4]


def test_a_data_folder_from_before_the_outbox_opens_with_an_empty_one(tmp_path):
    shard = shard_at(tmp_path)
    shard.apply([buy("t1", "m1", DAY, line(2900))])
    shard.close()
    env = lmdb.open(str(tmp_path), max_dbs=8)
    with env.begin(write=True) as txn:
        txn.drop(env.open_db(b"events", txn=txn), delete=True)
    env.close()
    again = shard_at(Path(tmp_path))
    assert again.member("m1").points == 20
    assert events(again) == []
    again.apply([buy("t2", "m2", DAY, line(GOLD))])
    assert [seq for seq, _, _ in events(again)] == [1, 2]
