"""The outbox on real LMDB, driven through a shard without Ray: events are committed with the
change that caused them or not at all, numbered per shard, kept for retention, and an older
data folder opens with an empty outbox."""

import json
import re
import struct
import tempfile
from pathlib import Path

import lmdb
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.event_feed import EventFeed, Subscription, format_position, parse_position
from actors.shard_outbox import decode_page
from engine.calendar import parse_day
from engine.errors import InvalidRequestError, StorageFullError
from engine.notices import NOTICE_KINDS, Notice
from engine.operators import Enrollment
from proto import patron_pb2 as pb
from storage.outbox import Run, append, event_message, read_after
from tests.builders import buy, line, without_coupon_triggers
from tests.test_shard import RULES, open_shard

DAY = "2026-11-17 10:00"
GOLD = 1_000_000  # 10,000.00 in the example rules: Silver by growth, Gold by spend, and over the anomaly threshold
NO_COUPON_TRIGGERS = without_coupon_triggers(RULES)
"""The outbox's own mechanics, without the example's enrollment and upgrade coupons."""


def shard_at(path: Path, **options: object):
    return open_shard(path, NO_COUPON_TRIGGERS, **options)


def messages(shard, after: int = 0, limit: int = 1000, kinds: tuple[str, ...] = ()) -> list[tuple[int, pb.Event]]:
    run = decode_page(shard.outbox.page(after, limit, list(kinds))).run
    return [(seq, pb.Event.FromString(message)) for seq, message in zip(run.seqs, run.messages, strict=True)]


def events(shard, after: int = 0, kinds: tuple[str, ...] = ()) -> list[tuple[int, str, str]]:
    return [(seq, event.kind, event.member_id) for seq, event in messages(shard, after, kinds=kinds)]


def test_a_batch_commits_its_events_in_order_with_a_sequence(tmp_path):
    shard = shard_at(tmp_path)
    shard.apply([buy("t1", "m1", DAY, line(2900)), buy("t2", "m2", DAY, line(GOLD))])
    assert events(shard) == [(1, "anomaly_flagged", "m2"), (2, "tier_changed", "m2")]
    [(_, upgrade)] = messages(shard, after=1, limit=1)
    assert (upgrade.day, upgrade.position) == ("2026-11-17", "")  # the gateway writes the position
    detail = json.loads(upgrade.detail)
    assert (detail["from_tier"], detail["to_tier"]) == ("Basic", "Gold")
    assert events(shard, kinds=("tier_changed",)) == [(2, "tier_changed", "m2")]
    state = shard.outbox.state()
    assert (state.pruned, state.newest) == (0, 2)
    assert shard.counts()[0].events == {"anomaly_flagged": 1, "tier_changed": 1}


def test_events_of_skipped_kinds_still_move_the_page_on(tmp_path):
    shard = shard_at(tmp_path)
    shard.apply([buy("t2", "m2", DAY, line(GOLD))])
    page = decode_page(shard.outbox.page(0, 10, ["birthday"]))
    assert (page.run.seqs, page.run.messages, page.run.through, page.newest) == ([], [], 2, 2)


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
    assert shard.counts()[0].pruned == 2
    shard.close()
    again = shard_at(tmp_path)
    again.apply([buy("t2", "m2", "2026-11-25 10:00", line(GOLD))])
    assert [seq for seq, _, _ in events(again, after=2)] == [3, 4]


def test_a_catch_up_longer_than_retention_prunes_none_of_its_own_events(tmp_path):
    # a run over more dates than retention_days, at its last dates, pruned what its first dates had
    # just written (reminders, sent once): no subscriber could read them (an outside probe)
    from engine.operators import Enrollment

    shard = shard_at(tmp_path)  # retention 7 days; a birthday is announced 3 days before
    shard.enroll(Enrollment(member_id="m1", birthday="11-21"))
    for day in range(18, 29):  # one catch-up, as the coordinator runs missed dates
        shard.midnight_begin(parse_day(f"2026-11-{day}"), first=day == 18)
        while not shard.midnight_step()[2]:
            pass
    assert events(shard) == [(1, "birthday", "m1")]  # written by the run of the 18th
    midnight(shard, "2026-11-29")  # the next run prunes it
    assert (events(shard), shard.outbox.state().pruned) == ([], 1)


def test_a_subscriber_asking_for_some_kinds_missed_nothing_when_only_other_kinds_were_pruned(tmp_path):
    """Its position moves only with the events it asked for: after a quiet retention window it was
    told its events were pruned when only other kinds had been (an outside probe)."""
    shard = shard_at(tmp_path)
    shard.apply([buy("t1", "m1", DAY, line(GOLD))])  # 1 anomaly_flagged, 2 tier_changed
    assert events(shard) == [(1, "anomaly_flagged", "m1"), (2, "tier_changed", "m1")]
    for day in range(18, 26):
        midnight(shard, f"2026-11-{day}")  # the run of the 25th prunes the 17th's
    flags, tiers = (decode_page(shard.outbox.page(1, 10, [kind])) for kind in ("anomaly_flagged", "tier_changed"))
    assert (flags.pruned, flags.pruned_asked) == (2, 1)  # after 1, no anomaly was pruned: nothing missed
    assert (flags.run.through, flags.newest) == (2, 2)  # read on past the pruned: not asked again at once, for ever
    assert (tiers.pruned, tiers.pruned_asked) == (2, 2)  # the tier change after 1 was
    assert decode_page(shard.outbox.page(1, 10, [])).pruned_asked == 2
    shard.close()
    again = shard_at(tmp_path)  # kept with the store
    assert decode_page(again.outbox.page(1, 10, ["anomaly_flagged", "birthday"])).pruned_asked == 1


def test_events_pruned_where_their_kinds_were_not_kept_count_as_of_every_kind(tmp_path):
    """A patron from before the kinds were kept (or run again after a downgrade) prunes without
    them: what it pruned counts as of every kind, also after this patron's next prune."""
    from storage.outbox import PRUNED_KINDS_KEY

    shard = shard_at(tmp_path)
    shard.apply([buy("t1", "m1", DAY, line(GOLD))])  # 1 anomaly_flagged, 2 tier_changed
    for day in range(18, 26):
        midnight(shard, f"2026-11-{day}")  # pruned through 2

    def asked(*kinds: str) -> list[int]:
        return [decode_page(shard.outbox.page(0, 10, [kind])).pruned_asked for kind in kinds]

    with shard.store.env.begin(write=True) as txn:  # as if an older patron had pruned 2 (kinds left at 1)
        txn.put(PRUNED_KINDS_KEY.encode(), msgspec.msgpack.encode({"anomaly_flagged": 1}), db=shard.store.dbs["meta"])
    assert asked("birthday", "anomaly_flagged") == [2, 2]
    shard.apply([buy("t2", "m2", "2026-11-25 10:00", line(GOLD))])  # 3 anomaly_flagged, 4 tier_changed
    for day in range(26, 34):
        midnight(shard, f"2026-11-{day}" if day < 31 else f"2026-12-{day - 30:02d}")  # pruned through 4
    assert asked("birthday", "anomaly_flagged", "tier_changed") == [2, 3, 4]


def test_a_store_pruned_by_a_patron_that_did_not_keep_the_kinds_counts_them_all():
    from storage.outbox import pruned_of

    assert pruned_of(frozenset({"birthday"}), 9, None) == 9  # a store whose kinds were never kept
    assert pruned_of(frozenset({"birthday"}), 12, {"*": 9, "tier_changed": 12}) == 9
    assert pruned_of(frozenset({"birthday"}), 15, {"*": 9, "tier_changed": 12}) == 15  # pruned past them since
    assert pruned_of(frozenset(), 12, {"*": 9, "tier_changed": 12}) == 12


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


texts = st.text(max_size=300)


@given(kind=st.sampled_from(NOTICE_KINDS), member=texts, day=texts, detail=texts,
       seqs=st.lists(st.integers(0, 2**63), min_size=1, max_size=40), shard=st.integers(0, 39))
def test_a_stored_message_with_its_position_is_the_event_message_protobuf_writes(kind, member, day, detail, seqs,
                                                                                 shard):
    """The outbox writes `Event` by hand and the gateway puts the position in front: gRPC sends
    those bytes as they are, so they must be what protobuf itself writes, long fields too."""
    shard %= len(seqs)
    feed = EventFeed([None] * len(seqs), metrics=None)
    subscription = Subscription(feed, seqs, [])
    stored = event_message(kind, member, day, detail)
    [sent] = subscription._messages(shard, Run([seqs[shard]], [stored], seqs[shard], 0))
    assert sent == pb.Event(position=format_position(seqs), kind=kind, member_id=member, day=day,
                            detail=detail).SerializeToString()


def test_events_written_in_the_first_form_are_read_and_pruned_as_they_were(tmp_path):
    shard = shard_at(tmp_path)
    shard.apply([buy("t1", "m1", DAY, line(GOLD))])
    shard.close()
    env = lmdb.open(str(tmp_path), max_dbs=8)
    first_form = msgspec.msgpack.encode([parse_day("2026-11-20"), 1, "birthday", "m0", parse_day("2026-11-19"),
                                         '{"birthday": "2026-11-19"}'])
    with env.begin(write=True, db=env.open_db(b"events")) as txn:
        txn.put(struct.pack(">Q", 3), first_form)
    env.close()
    again = shard_at(tmp_path)
    [(seq, event)] = messages(again, after=2)
    assert (seq, event.kind, event.member_id, event.day, event.detail) == (
        3, "birthday", "m0", "2026-11-19", '{"birthday": "2026-11-19"}')
    assert [seq for seq, _ in messages(again, kinds=("birthday",))] == [3]
    again.apply([buy("t2", "m2", DAY, line(GOLD))])
    assert [seq for seq, _, _ in events(again, after=3)] == [4, 5]
    for day in range(18, 26):
        midnight(again, f"2026-11-{day}")
    assert again.store.events_bounds() == (2, 5)  # kept 7 days: the run of the 25th stops at the one of the 20th


def test_a_page_stays_small_enough_for_ray_to_return_inline_and_the_next_goes_on(tmp_path):
    shard = shard_at(tmp_path)
    shard.apply([buy(f"t{n}", f"m{n}", DAY, line(GOLD)) for n in range(1500)])  # 3,000 events
    raw = shard.outbox.page(0, 5000, [])
    page = decode_page(raw)
    assert len(raw) < 100 * 1024
    assert 0 < page.run.through == page.run.seqs[-1] < page.newest == 3000
    rest = decode_page(shard.outbox.page(page.run.through, 5000, [])).run
    assert rest.seqs[0] == page.run.through + 1


@given(kind=st.sampled_from(NOTICE_KINDS), member=texts, detail=texts, at_ms=st.integers(0, 2**62))
def test_an_event_read_back_carries_its_commits_time_as_protobuf_writes_it(kind, member, detail, at_ms):
    """`at_ms` is put after the stored fields as the page is read: the bytes must still be what
    protobuf writes for the same Event (field order aside, which protobuf allows)."""
    with tempfile.TemporaryDirectory() as folder:
        env = lmdb.open(folder, max_dbs=2)
        db = env.open_db(b"events")
        with env.begin(write=True) as txn:
            append(txn, db, [Notice(kind, member, parse_day("2026-11-17"), detail)], 1, at_ms, 0)
            [message] = read_after(txn, db, 0, 10, 1 << 20, frozenset()).messages
        env.close()
    assert pb.Event.FromString(message) == pb.Event(kind=kind, member_id=member, day="2026-11-17", detail=detail,
                                                    at_ms=at_ms)


@pytest.mark.parametrize("text", ["v1: 0.0", "v1:0_0.0", "v1:0.+1", "v1:٣.0", "v1:0.", "v1:-1.0"])
def test_a_position_patron_could_not_have_given_is_refused(text):
    # int() took a leading space, underscores and other scripts' digits: an outside probe's
    # "v1: 0.0" streamed from the start instead of being refused
    with pytest.raises(InvalidRequestError, match="after: expected a position patron gave"):
        parse_position(text, shards=2)
    assert parse_position("v1:0.17", shards=2) == [0, 17]


def test_a_subscriber_that_loses_a_shard_is_told_to_resume_from_its_last_position():
    import ray.exceptions

    from actors.events_service import for_a_reader
    from engine.errors import ShardUnavailableError

    told = for_a_reader(ray.exceptions.RayActorError())
    assert isinstance(told, ShardUnavailableError)
    assert "subscribe again from the last position received; no event is lost" in str(told)
    refused = InvalidRequestError("after: bad")
    assert for_a_reader(refused) is refused


@pytest.mark.parametrize(("hot_members", "restart"), [(0, False), (2, False), (0, True), (2, True)])
def test_a_publish_that_gives_more_notice_plans_the_members_reminders_again(tmp_path, hot_members, restart):
    """Members are woken on the date of their next reminder, planned under the rules of the day: a
    publish raising `birthday_days_before` lost that year's birthday notice, and one raising
    `expiring_days` announced points already held on the old notice (a probe). A restart in the
    middle of the publish's walk resumes it, and the walk judges no tier when only notice changed."""
    v1 = re.sub(r'policy = "jan1_after_years".*\nyears = 1', 'policy = "rolling_days"\ndays = 20', NO_COUPON_TRIGGERS)
    v1 = v1.replace("expiring_days = 30", "expiring_days = 2")
    v2 = v1.replace("version = 1", "version = 2").replace("expiring_days = 2", "expiring_days = 15").replace(
        "birthday_days_before = 3", "birthday_days_before = 9")
    shard = open_shard(tmp_path, v1, hot_members=hot_members)
    shard.enroll(Enrollment(member_id="b1", birthday="11-28"))
    shard.apply([buy("t1", "p1", DAY, line(2900))] + [buy(f"o{n}", f"other{n}", DAY, line(100)) for n in range(3)])
    shard.midnight_begin(parse_day("2026-11-18"))  # plans each member's next wake-up under v1
    while not shard.midnight_step()[2]:
        pass
    seen = shard.outbox.state().newest
    assert shard.publish(v2) == 5
    if restart:
        shard.close()
        shard = open_shard(tmp_path, v2, hot_members=hot_members)
        assert (shard.job.kind, shard.job.retier) == ("reevaluate", False)
    while not shard.reevaluate_step()[1]:
        pass
    assert not [e for e in shard.ledger("p1") if e.cause == "rules"]
    for day in ("2026-11-19", "2026-11-20", "2026-11-21", "2026-11-22"):
        shard.midnight_begin(parse_day(day))
        while not shard.midnight_step()[2]:
            pass
    notices = [(event.day, event.kind, event.member_id) for _, event in messages(shard, after=seen)
               if event.kind in ("birthday", "points_expiring")]
    assert notices == [("2026-11-19", "birthday", "b1"), ("2026-11-22", "points_expiring", "p1")]


@pytest.mark.parametrize("hot_members", [0, 2])
def test_a_publish_that_gives_less_notice_after_a_birthday_notice_went_out_sends_no_second_one(tmp_path, hot_members):
    # a review: the publish's walk woke the member for the new, later notice day, which sent it again
    v1 = NO_COUPON_TRIGGERS.replace("birthday_days_before = 3", "birthday_days_before = 9")
    v2 = v1.replace("version = 1", "version = 2").replace("birthday_days_before = 9", "birthday_days_before = 3")
    shard = open_shard(tmp_path, v1, hot_members=hot_members)
    shard.enroll(Enrollment(member_id="b1", birthday="11-28"))
    shard.apply([buy(f"o{n}", f"other{n}", DAY, line(100)) for n in range(3)])
    for day in ("2026-11-18", "2026-11-19"):
        shard.midnight_begin(parse_day(day))
        while not shard.midnight_step()[2]:
            pass
    shard.publish(v2)
    while not shard.reevaluate_step()[1]:
        pass
    for day in range(parse_day("2026-11-20"), parse_day("2026-11-26")):  # 11-25: the new notice's day
        shard.midnight_begin(day)
        while not shard.midnight_step()[2]:
            pass
    birthdays = [(event.day, json.loads(event.detail)["days_before"]) for _, event in messages(shard)
                 if event.kind == "birthday"]
    assert birthdays == [("2026-11-19", 9)]
