"""How a shard's lane cuts its queued writes into calls: batches behind each other leave as one
group, bounded by count and by bytes (actors/lanes.py)."""

import asyncio

from actors.lanes import GROUP_BYTES, GROUP_LIMIT, GROUPED, Lane


def _groups(writes: list[tuple[str, int]]) -> list[list[int]]:
    """The calls a lane makes of these queued writes (method, size of the part), oldest first:
    the size of each part in each call."""

    async def cut() -> list[list[int]]:
        lane = Lane(None, 0, in_flight=0, queue_limit=len(writes) + 1)  # no slot: nothing is sent
        try:
            for method, size in writes:
                lane.send(method, b"x" * size)
            groups = []
            while lane.writes:
                groups.append([len(call.args[0]) for call in lane._next_writes()])
            return groups
        finally:
            lane.close()

    return asyncio.run(cut())


def test_batches_queued_behind_each_other_leave_together_up_to_the_group_limit():
    assert _groups([(GROUPED, 1_000)] * (GROUP_LIMIT + 3)) == [[1_000] * GROUP_LIMIT, [1_000] * 3]


def test_a_group_stops_before_its_parts_would_pass_the_group_bytes():
    third = GROUP_BYTES // 3
    assert _groups([(GROUPED, third)] * 4) == [[third] * 3, [third]]
    assert _groups([(GROUPED, third + 1)] * 4) == [[third + 1] * 2, [third + 1] * 2]


def test_a_part_larger_than_the_group_bytes_still_leaves_alone():
    assert _groups([(GROUPED, GROUP_BYTES + 1), (GROUPED, 10)]) == [[GROUP_BYTES + 1], [10]]


def test_a_group_keeps_the_order_its_batches_were_queued_in():
    assert _groups([(GROUPED, size) for size in (5, 3, 9, 1)]) == [[5, 3, 9, 1]]


def test_a_write_of_another_kind_ends_the_group_and_leaves_on_its_own():
    writes = [(GROUPED, 10), (GROUPED, 10), ("enroll", 5), (GROUPED, 10)]
    assert _groups(writes) == [[10, 10], [5], [10]]


class _Shard:
    """Answers each call after `seconds`: a write takes 0.2 s, an event poll none."""

    class _Method:
        def __init__(self, seconds: float) -> None:
            self.seconds = seconds

        def remote(self, *args: object) -> asyncio.Future:
            return asyncio.ensure_future(asyncio.sleep(self.seconds, result=[None] * len(args[0])
                                                       if args and isinstance(args[0], list) else None))

    def __init__(self) -> None:
        setattr(self, GROUPED, self._Method(0.2))
        self.events_state = self._Method(0.0)


def test_a_full_queues_hint_is_the_time_of_its_writes_not_of_urgent_polls():
    # the event feed polls every shard each second through its lane, in 2 ms: counted, they made
    # the hint of a full queue 2 ms while its writes took a tenth of a second and more
    async def hint() -> float:
        lane = Lane(_Shard(), 0, in_flight=1, queue_limit=4)
        try:
            await lane.send(GROUPED, b"part")
            for _ in range(20):
                await lane.send("events_state", urgent=True)
            return lane.call_seconds
        finally:
            lane.close()

    assert asyncio.run(hint()) >= 0.2
