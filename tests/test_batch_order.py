"""Order per member across failures, in one shard without Ray: a stream's part is applied only
after the shard committed the stream's previous part there, in this process."""

import asyncio

import pytest

from actors.batch_order import Stream
from engine.errors import OutOfOrderError, StorageFullError
from tests.builders import buy, line, refund
from tests.parts import part, results_of
from tests.test_shard import DAY, open_shard


def outcomes(answers: list) -> list:
    return [type(a).__name__ if isinstance(a, Exception) else [(r.outcome, r.reason) for r in results_of(a)]
            for a in answers]


def test_nothing_later_of_a_stream_is_applied_after_a_part_the_shard_could_not_commit(tmp_path):
    shard = open_shard(tmp_path, map_bytes=256 << 10, max_map_bytes=256 << 10)
    with pytest.raises(StorageFullError):
        shard.apply_encoded([part([buy(f"p{n}", f"m{n}", DAY, line(1000)) for n in range(3000)], "A", 1)])
    answers = shard.apply_encoded([part([refund("r0", "m0", DAY, "p0", 1000)], "A", 2, after=1),
                                   part([refund("r1", "m1", DAY, "p1", 1000)], "A", 3, after=2),
                                   part([buy("b1", "x1", DAY, line(2900))], "B", 1),
                                   part([buy("s1", "x2", DAY, line(2900))])])
    assert outcomes(answers) == ["OutOfOrderError", "OutOfOrderError", [("accepted", "")], [("accepted", "")]]
    assert (shard.member("m0"), shard.member("m1")) == (None, None)
    assert [a.__class__ for a in shard.apply_encoded([part([refund("r2", "m2", DAY, "p2", 1000)], "A", 4, 3)])] == [
        OutOfOrderError]  # still refused: the client resends from batch 1, on a new stream


def test_parts_of_a_stream_committed_together_keep_their_order(tmp_path):
    shard = open_shard(tmp_path)
    stream = Stream()
    first, second = stream.place_batch([0]), stream.place_batch([0])
    answers = shard.apply_encoded([part([buy("p1", "m1", DAY, line(2900))], *first[0]),
                                   part([refund("r1", "m1", DAY, "p1", 2900)], *second[0])])
    assert outcomes(answers) == [[("accepted", "")], [("accepted", "")]]
    assert shard.member("m1").points == 0


def test_a_restarted_shard_refuses_the_next_part_of_a_stream_it_did_not_commit_itself(tmp_path):
    shard = open_shard(tmp_path)
    shard.apply_encoded([part([buy("p1", "m1", DAY, line(2900))], "A", 1)])
    shard.close()
    again = open_shard(tmp_path)
    answers = again.apply_encoded([part([refund("r1", "m1", DAY, "p1", 2900)], "A", 2, after=1)])
    assert outcomes(answers) == ["OutOfOrderError"]
    resent = again.apply_encoded([part([buy("p1", "m1", DAY, line(2900))], "C", 1),
                                  part([refund("r1", "m1", DAY, "p1", 2900)], "C", 2, after=1)])
    assert outcomes(resent) == [[("duplicate", "")], [("accepted", "")]]


def test_a_stream_numbers_each_shards_parts_after_its_previous_part_on_that_shard():
    stream = Stream()
    assert [stream.place_batch(shards) for shards in ([0, 1], [1], [0])] == [
        {0: (stream.id, 1, 0), 1: (stream.id, 1, 0)}, {1: (stream.id, 2, 1)}, {0: (stream.id, 3, 1)}]


def test_nothing_more_of_a_stream_is_sent_anywhere_once_one_of_its_parts_failed():
    """A virtual shard that moved takes its members to a shard whose chain never saw the failure."""
    async def run() -> None:
        stream = Stream()
        loop = asyncio.get_running_loop()
        first, second = loop.create_future(), loop.create_future()
        stream.place_batch([0])
        stream.watch(first)
        stream.place_batch([1])
        stream.watch(second)
        second.set_result(b"")
        await asyncio.sleep(0)
        assert stream.place_batch([1]) == {1: (stream.id, 3, 2)}  # answered parts change nothing
        first.set_exception(OutOfOrderError("shard 0 failed"))
        await asyncio.sleep(0)
        with pytest.raises(OutOfOrderError, match="new stream"):
            stream.place_batch([1])
        first.exception()

    asyncio.run(run())
