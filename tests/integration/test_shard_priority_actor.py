"""A real shard actor on local Ray runs every thread, Ray's own included, behind the gateway's
(actors/shard_priority.py), and says so in its status; asking Ray whether an actor was restarted
warns of nothing."""

import os
from pathlib import Path

from engine.calendar import parse_day
from engine.operators import Enrollment
from tests.conftest import EXAMPLE_RULES, TEST_DAY

WAIT_SECONDS = 120
"""Only bounds a failure: the answers are expected long before it."""


def _policies(pid: int) -> set[int]:
    seen = set()
    for thread in os.listdir(f"/proc/{pid}/task"):
        try:
            seen.add(os.sched_getscheduler(int(thread)))
        except ProcessLookupError:  # a thread that ended meanwhile
            continue
    return seen


def test_every_thread_of_a_shard_actor_gives_way_to_the_gateway(ray_session, tmp_path: Path):
    import ray

    from actors.shard import ShardConfig
    from actors.shard_actor import ShardActor

    config = ShardConfig(0, str(tmp_path / "shard"), EXAMPLE_RULES.read_text(), start_day=parse_day(TEST_DAY))
    actor = ShardActor.options(num_cpus=0).remote(config)
    try:
        ray.get(actor.enroll.remote(Enrollment(member_id="m1")), timeout=WAIT_SECONDS)
        ray.get(actor.member.remote("m1"), timeout=WAIT_SECONDS)  # a read: the reads group's threads run too
        pid = ray.get(actor.pid.remote(), timeout=WAIT_SECONDS)
        status = ray.get(actor.status.remote(), timeout=WAIT_SECONDS)
        policies = _policies(pid)
    finally:
        ray.kill(actor)
    assert status.priority == "idle"
    assert policies == {os.SCHED_IDLE}


def test_asking_ray_whether_the_shard_was_restarted_warns_of_nothing(ray_session):
    """Ray's `was_current_actor_reconstructed` reads its own deprecated `actor_id`: three warning
    lines at every shard's start (an outside tester). With warnings as errors, the warning made
    the answer "restarted" (the helper's answer when Ray cannot say); a first start is not."""
    import ray

    @ray.remote(num_cpus=0)
    class Asks:
        def restarted(self) -> bool:
            import warnings

            from actors.shard_actor import _restarted

            with warnings.catch_warnings():
                warnings.simplefilter("error")
                return _restarted()

    asks = Asks.remote()
    try:
        assert ray.get(asks.restarted.remote(), timeout=WAIT_SECONDS) is False
    finally:
        ray.kill(asks)
