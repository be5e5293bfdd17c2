"""Reads of committed state never wait for the shard's writer: a real shard actor on local Ray is
held in the middle of a write call (another process holds its LMDB environment's write lock, as
a long commit would), and a quote, the member's card and its coupons are answered meanwhile,
from the last commit."""

from pathlib import Path

import pytest

from engine.calendar import parse_day
from engine.operators import Enrollment
from engine.transactions import LineItem
from storage.shard_store import ShardStore
from tests.builders import ms
from tests.conftest import EXAMPLE_RULES, TEST_DAY

WAIT_SECONDS = 120
"""Only bounds a failure: the answers are expected long before it."""


@pytest.fixture
def shard(ray_session, tmp_path: Path):
    import ray

    from actors.shard import ShardConfig
    from actors.shard_actor import ShardActor

    config = ShardConfig(0, str(tmp_path / "shard"), EXAMPLE_RULES.read_text(), start_day=parse_day(TEST_DAY))
    actor = ShardActor.options(num_cpus=0).remote(config)
    ray.get(actor.enroll.remote(Enrollment(member_id="m1")), timeout=WAIT_SECONDS)
    ray.get(actor.adjust.remote("m1", "first", 100, "points to quote"), timeout=WAIT_SECONDS)
    yield actor, Path(config.path)
    ray.kill(actor)


def test_reads_are_answered_while_a_write_call_is_in_progress(shard):
    import ray

    actor, path = shard
    holder = ShardStore(path)
    held = holder.writer()  # the environment's one write lock: the shard's next write waits for it
    try:
        write = actor.adjust.remote("m1", "second", 50, "held up")
        # sent after the write by the same caller: Ray starts them after it, never before
        reads = [actor.quote.remote("m1", [LineItem(sku="B-1", paid_minor=2900)], ms(f"{TEST_DAY} 10:00")),
                 actor.member.remote("m1"), actor.coupons.remote("m1", "")]
        answered, _ = ray.wait(reads, num_returns=len(reads), timeout=WAIT_SECONDS)
        assert len(answered) == len(reads)
        assert ray.wait([write], timeout=0)[0] == []  # the write is still in progress
        quote, member, coupons = ray.get(reads)
        assert quote.available_points == member.available_points == 100  # the last commit
        assert quote.points == 20
        assert [c.instance.coupon_id for c in coupons] == ["WELCOME10"]
    finally:
        held.abort()
        holder.close()
    result, after = ray.get(write, timeout=WAIT_SECONDS)
    assert (result.outcome, after.available_points) == ("accepted", 150)
    assert ray.get(actor.member.remote("m1"), timeout=WAIT_SECONDS).available_points == 150
