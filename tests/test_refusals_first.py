"""While calls arrive at full (or half-full) queues, a batch let in waits for them to be taken,
and refused, before it is routed; otherwise it never waits (actors/refusals_first.py). The
clock is the test's: nothing here depends on how fast the machine is."""

import asyncio

import pytest

from actors.refusals_first import RefusalsFirst
from engine.errors import OverloadedError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_without_arrivals_at_full_queues_lately_a_batch_takes_its_turn_at_once():
    clock = Clock()
    gate = RefusalsFirst(quiet=0.002, patience=0.1, clock=clock)
    routed: list[str] = []
    _routed_at_once(gate, routed, "never")  # no call ever came to a full queue
    gate.arrived()
    clock.now += 0.2  # one came, longer ago than `patience`
    _routed_at_once(gate, routed, "long after")
    _routed_at_once(gate, routed, "right behind")  # right behind a batch just routed
    assert routed == ["never", "long after", "right behind"]


def _routed_at_once(gate: RefusalsFirst, routed: list[str], name: str) -> None:
    step = _route(gate, gate.clock(), routed, name)
    try:
        step.send(None)  # would return (suspended) if the turn waited for anything
    except StopIteration:
        return
    step.close()
    raise AssertionError(f"the batch routed {name} waited although no call came to a full queue lately")


def test_a_batch_waits_while_calls_arrive_and_goes_when_they_pause():
    clock = Clock()
    gate = RefusalsFirst(quiet=0.002, patience=10.0, clock=clock)
    order: list[str] = []

    async def scenario() -> None:
        gate.arrived()
        read_at = clock()
        batch = asyncio.ensure_future(_route(gate, read_at, order))
        for n in range(5):  # calls keep coming to full queues, a millisecond apart
            await asyncio.sleep(0.005)
            clock.now += 0.001
            gate.arrived()
            order.append(f"refusal {n}")
        await asyncio.sleep(0.005)
        assert not batch.done()
        clock.now += 0.003  # arrivals paused for longer than `quiet`
        await asyncio.wait_for(batch, 5)

    asyncio.run(scenario())
    assert order == [f"refusal {n}" for n in range(5)] + ["batch"]


def test_after_a_batch_is_routed_the_next_waits_for_the_calls_it_held_up():
    clock = Clock()
    gate = RefusalsFirst(quiet=0.002, patience=10.0, clock=clock)
    order: list[str] = []

    async def scenario() -> None:
        gate.arrived()
        clock.now += 0.003  # arrivals paused: the first batch goes
        first = asyncio.ensure_future(_route(gate, clock(), order, "first"))
        second = asyncio.ensure_future(_route(gate, clock(), order, "second"))
        await asyncio.wait_for(first, 5)
        for _ in range(5):
            await asyncio.sleep(0.005)
        assert not second.done(), "the next batch was routed with no pause for the calls held up"
        order.append("calls held up by the first")
        clock.now += 0.003
        await asyncio.wait_for(second, 5)

    asyncio.run(scenario())
    assert order == ["first", "calls held up by the first", "second"]


def test_a_batch_waits_no_longer_than_its_patience_even_if_arrivals_never_pause():
    clock = Clock()
    gate = RefusalsFirst(quiet=0.002, patience=0.05, clock=clock)
    order: list[str] = []

    async def scenario() -> None:
        read_at = clock()
        batches = [asyncio.ensure_future(_route(gate, read_at, order, name)) for name in ("first", "second")]
        while not all(batch.done() for batch in batches):
            gate.arrived()
            order.append(f"refusal at {clock.now - read_at:.3f}")
            await asyncio.sleep(0.002)
            clock.now += 0.01
            assert clock.now - read_at < 1.0, "a batch waited past its patience"
        await asyncio.gather(*batches)

    asyncio.run(scenario())
    routed = [order.index("first"), order.index("second")]
    assert routed[0] < routed[1]  # batches take turns in the order they came
    assert order[routed[0] - 1] == "refusal at 0.050"  # refused meanwhile until its patience ran out


def test_a_burst_lets_in_only_a_few_batches_at_a_time():
    """A call arriving while `reading` batches let in are still being read or routed is refused
    at once, whatever room the queues have, and the batches let in wait for the burst's other
    calls to be refused; each that is finished (routed, or not after all) lets one more in."""
    clock = Clock()
    gate = RefusalsFirst(quiet=0.002, patience=0.1, clock=clock, reading=2)
    gate.let_in()
    gate.let_in()
    routed: list[str] = []
    _routed_at_once(gate, routed, "before the burst")
    with pytest.raises(OverloadedError, match="nothing was applied"):
        gate.let_in()

    async def scenario() -> None:
        batch = asyncio.ensure_future(_route(gate, clock(), routed, "let in"))
        await asyncio.sleep(0.005)
        assert not batch.done(), "a batch let in was routed while the burst was still being refused"
        clock.now += 0.003  # arrivals paused
        await asyncio.wait_for(batch, 5)

    asyncio.run(scenario())
    assert routed == ["before the burst", "let in"]
    gate.finished()
    gate.let_in()
    with pytest.raises(OverloadedError):
        gate.let_in()
    gate.finished()
    gate.finished()
    assert gate.reading == 0


async def _route(gate: RefusalsFirst, read_at: float, order: list[str], name: str = "batch") -> None:
    async with gate.turn(read_at):
        order.append(name)
