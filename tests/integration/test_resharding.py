"""Moving virtual shards and adding a shard while a client streams batches (real Ray, gRPC,
LMDB): every result, member and ledger is what replay computes, nothing lost or counted twice."""

import asyncio
import threading
import time

import grpc
import msgspec
import pytest
import ray

from actors import node_gateway
from actors.routing import virtual_shard
from bench.crash import crash_run
from bench.workload import Workload, generate
from client import PatronClient
from engine.calendar import iso, parse_day
from storage.folder import Layout
from tests.builders import ms
from tests.conftest import EXAMPLE_RULES
from tests.integration.test_agreement import WORKLOAD, assert_members_and_ledgers, replayed, served
from tests.integration.test_cli_served import patron
from tests.integration.test_crash import assert_three_kills_lost_doubled_and_reordered_nothing
from tests.integration.test_metrics import scrape, value


@pytest.fixture(scope="module")
def two_shards(ray_session, tmp_path_factory):
    """For the tests of one move refused or undone, or waiting for a shard's business day: one
    server with two shards on TEST_DAY for all of them (each names its own members, and each
    leaves its moves finished or undone)."""
    from tests.conftest import two_shard_server

    yield from two_shard_server(tmp_path_factory, "moves")


class Mover(threading.Thread):
    """Once the stream is going: a few single moves, then a rebalance onto one more shard."""

    def __init__(self, address: str, moves: list[tuple[int, int]], shards: int) -> None:
        super().__init__(daemon=True)
        self.address, self.moves, self.shards = address, moves, shards
        self.streaming = threading.Event()
        self.stream_over = threading.Event()
        self.done_while_streaming = 0
        self.rebalanced = 0
        self.outcomes: list = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.streaming.wait(60)
            with PatronClient(self.address) as client:
                for vshard, to in self.moves:
                    client.move_virtual_shard(vshard, to)
                    self.outcomes.append(client.follow_resharding(every=0.05))
                    self.done_while_streaming += not self.stream_over.is_set()
                client.rebalance(self.shards)
                single = self.done_while_streaming
                while not self.stream_over.is_set():
                    moving = client.status().resharding
                    self.rebalanced = moving.done
                    self.done_while_streaming = single + moving.done
                    if not moving.running:
                        break
                    time.sleep(0.05)
                self.outcomes.append(client.follow_resharding(every=0.1))
        except BaseException as error:  # the test thread reports it
            self.error = error

    def wait_for(self, moves: int, rebalanced: int, timeout: float = 60) -> None:
        """Pace the stream: go on once the moves got this far (or the mover stopped)."""
        deadline = time.monotonic() + timeout
        while (len(self.outcomes) < moves or self.rebalanced < rebalanced) and self.is_alive() \
                and time.monotonic() < deadline:
            time.sleep(0.02)


@pytest.mark.parametrize("hot_members", [0, 5])
def test_moves_and_a_new_shard_under_a_streaming_load_agree_with_replay(start_server, tmp_path, hot_members):
    # hot_members 5: shards keep few members in memory, and a totals record and wake-up index on disk
    server = start_server(shards=2, start_date=parse_day(WORKLOAD.start), metrics_port=0, hot_members=hot_members)
    expected_results, expected_members, expected_ledger = replayed(tmp_path)
    txns = list(generate(WORKLOAD))
    busiest = max({virtual_shard(t["member_id"]) for t in txns},
                  key=lambda v: sum(1 for t in txns if virtual_shard(t["member_id"]) == v))
    # the busiest virtual shard goes to the other shard and back; two more go across
    first_owner = busiest % 2
    mover = Mover(server.address, [(busiest, 1 - first_owner), (3, 0), (4, 1), (busiest, first_owner)], shards=3)
    mover.start()
    with PatronClient(server.address) as client:
        first, rest = txns[:200], txns[200:]
        results = served(client, first, batch_size=50)
        mover.streaming.set()
        # in slices, each streamed with a window: purchases, and refunds of them batches later; the
        # stream goes on while single moves, then the rebalance, are under way
        slices = [rest[i:i + len(rest) // 8 + 1] for i in range(0, len(rest), len(rest) // 8 + 1)]
        for number, part in enumerate(slices):
            mover.wait_for(moves=4 if number >= 3 else 0, rebalanced=20 if number >= 5 else 0)
            results += served(client, part, batch_size=50, window=8)
        mover.stream_over.set()
        mover.join(180)
        assert mover.error is None, mover.error
        assert results == expected_results
        assert_members_and_ledgers(client, expected_members, expected_ledger)
        status = client.status()
    assert [o.error for o in mover.outcomes] == [""] * 5
    assert [o.done for o in mover.outcomes] == [1, 1, 1, 1, mover.outcomes[-1].planned]
    assert mover.outcomes[-1].planned >= 1024 // 3 - 2
    assert sorted(mover.outcomes[-1].owned) == [341, 341, 342]
    assert mover.done_while_streaming > 4 + 20, "the moves did not overlap the stream"
    assert len(status.shards) == 3
    assert min(s.members for s in status.shards) > 0
    assert sum(s.members for s in status.shards) == len(expected_members)
    samples = scrape(server.server.metrics_port)
    assert value(samples, "patron_virtual_shards_moved_total") == 4 + mover.outcomes[-1].planned
    assert value(samples, "patron_virtual_shards", shard="2") in (341, 342)
    assert_shards_count_what_they_hold(server, status, expected_members)


def assert_shards_count_what_they_hold(server, status, expected_members) -> None:
    """What shards keep about their members in memory followed the moves: members per tag,
    stored value, and each shard's coupon grant covers the instances its members hold."""
    tags: dict[str, int] = {}
    for member in expected_members:
        for tag in member["tags"]:
            tags[tag] = tags.get(tag, 0) + 1
    assert dict(status.members_per_tag) == tags
    stored = sum(member.get("stored_value", 0) for member in expected_members)
    deadline = time.monotonic() + 10
    gauge = "patron_stored_value_outstanding_minor"
    while value(scrape(server.server.metrics_port), gauge, part="principal") != stored:
        assert time.monotonic() < deadline, "the stored value gauge does not add up"
        time.sleep(0.2)
    coordinator = server.server.coordinator
    held: dict[int, int] = {}
    for member in expected_members:
        shard = coordinator.shard_for(member["member_id"])
        held[shard] = held.get(shard, 0) + sum(1 for c in member["coupons"] if c["coupon_id"] == "WELCOME10")
    grants = ray.get(coordinator.keeper.state.remote())["WELCOME10"]
    assert all(grants.get(shard, 0) >= count for shard, count in held.items()), (grants, held)
    assert sum(held.values()) > 0


def test_a_move_is_refused_clearly_when_it_cannot_start(two_shards):
    server = two_shards
    with PatronClient(server.address) as client:
        for call, words in ((lambda: client.move_virtual_shard(5000, 0), "virtual_shard"),
                            (lambda: client.move_virtual_shard(5, 7), "to: expected a shard"),
                            (lambda: client.rebalance(1), "does not remove them")):
            with pytest.raises(grpc.RpcError) as refused:
                call()
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert words in refused.value.details()


def test_killing_the_server_and_shards_while_rebalancing_loses_doubles_and_reorders_nothing(tmp_path):
    # crash_run serves with --start-date at the workload's start: the business day is pinned;
    # the rebalance onto 3 shards runs all along the stream and is started again after each kill
    workload = Workload(transactions=3_000, members=500, days=1, start="2026-11-17", seed=41)
    report = crash_run(tmp_path, EXAMPLE_RULES, workload, kills=3, seed=4, window=8, reshard=3)
    assert_three_kills_lost_doubled_and_reordered_nothing(report, 3_000, refunds_over=100)
    assert report.rebalances >= 2, "no kill cut the rebalance short"
    layout = msgspec.json.decode((tmp_path / "data" / "layout.json").read_bytes(), type=Layout)
    owned = [layout.owners.count(shard) for shard in range(3)]
    assert layout.shards == 3
    assert max(owned) - min(owned) <= 1
    assert not (tmp_path / "data" / "moving.json").exists()


def test_patron_shards_rebalance_follows_the_moves_to_the_end(start_server):
    server = start_server(shards=1)
    with PatronClient(server.address) as client:
        client.enroll_many([{"member_id": f"m{n}"} for n in range(60)])
    done = patron("shards", "rebalance", "--shards", "2", "--address", server.address)
    assert done.returncode == 0, done.stderr
    assert "moving 512 virtual shards over 2 shards" in done.stderr
    last = [line for line in done.stderr.splitlines() if line.startswith("resharding: ")][-1]
    assert last.startswith("resharding: 512 of 512 virtual shards moved"), last  # the end's, not the last seen
    with PatronClient(server.address) as client:
        status = client.status()
    assert list(status.resharding.owned) == [512, 512]
    assert sum(s.members for s in status.shards) == 60
    assert min(s.members for s in status.shards) > 0


@ray.remote(num_cpus=0)
class SilentGateway:
    """A node gateway cut off from serve (a real actor that takes the call and never answers)."""

    async def route(self, routes: object, drain: int = -1) -> int:
        await asyncio.sleep(3600)
        return 0


def test_a_node_gateway_that_does_not_answer_the_hold_fails_the_move_undone(two_shards, monkeypatch):
    server = two_shards
    coordinator = server.server.coordinator
    members = [f"s{n}" for n in range(40)]
    vshard = virtual_shard(members[0])
    with PatronClient(server.address) as client:
        client.enroll_many([{"member_id": m} for m in members])
        before = [s.members for s in client.status().shards]
        monkeypatch.setattr(node_gateway, "HOLD_SECONDS", 0.5)
        gateways = node_gateway.NodeGateways(server.server.config, coordinator, {}, server.port)
        gateways.actors = {"b": SilentGateway.remote()}
        coordinator.resharding.others = gateways
        try:
            client.move_virtual_shard(vshard, 1 - coordinator.layout.owners[vshard])
            moved = client.follow_resharding(every=0.05)
        finally:
            coordinator.resharding.others = None
            ray.kill(gateways.actors["b"])
        assert moved.done == 0
        assert "gateway on node b did not answer" in moved.error
        assert "undone, nothing was lost" in moved.error
        assert [s.members for s in client.status().shards] == before
        assert coordinator.resharding.holding == frozenset()
        # the virtual shard's members take writes again, where they were
        ack = client.submit([{"txn_id": "after", "member_id": members[0], "occurred_at_ms": 0, "kind": "event"}])
        assert len(ack.results) == 1
        assert client.member(members[0]).member_id == members[0]
    assert not (server.server.config.data / "moving.json").exists()


def _run_midnight_on(actor, day: int) -> None:
    """One shard's midnight run of `day` alone, as a run cut short by another shard's death leaves it."""
    ray.get(actor.midnight_begin.remote(day))
    while not ray.get(actor.midnight_step.remote(1000))[2]:
        pass


def test_a_move_waits_while_its_two_shards_are_on_different_business_days(two_shards):
    """After a shard died in a midnight run the others are a date ahead until the coordinator has
    finished it there: a member moved ahead meanwhile was passed over by the run, its computed tag
    and report rows a day late (an outside probe). The move waits for that shard to catch up."""
    from tests.conftest import TEST_DAY

    server = two_shards  # on TEST_DAY: no other test of the module runs a midnight
    coordinator = server.server.coordinator
    member = next(m for m in (f"w{n}" for n in range(200)) if coordinator.layout.owners[virtual_shard(m)] == 1)
    tomorrow = parse_day(TEST_DAY) + 1
    with PatronClient(server.address) as client:
        purchase = {"txn_id": "big", "member_id": member, "occurred_at_ms": ms(f"{TEST_DAY} 10:00"),
                    "kind": "purchase", "amount_minor": 600_000}  # a "big spender" at the next midnight
        assert client.submit([purchase]).results[0].outcome == 1
        _run_midnight_on(coordinator.actors[0], tomorrow)  # shard 1 still on TEST_DAY, as after its death
        client.move_virtual_shard(virtual_shard(member), 0)
        moved = client.follow_resharding(every=0.2)
        assert (moved.done, moved.error) == (1, "")
        assert coordinator.layout.owners[virtual_shard(member)] == 0
        assert "big spender" in client.member(member).tags
        tagged = [e for e in client.ledger(member) if e.cause == "midnight" and e.kind == "tag"]
        assert [e.day for e in tagged] == [iso(tomorrow)]


def test_a_move_waits_for_a_job_a_shard_still_runs(start_server):
    """A job the coordinator no longer waits on (a midnight run a death cut short, a re-evaluation
    left on an empty shard) refused the move, and a rebalance stopped part-way (a probe): it waits."""
    from tests.conftest import TEST_DAY

    server = start_server(shards=2, start_date=parse_day(TEST_DAY))
    coordinator = server.server.coordinator
    member = next(m for m in (f"w{n}" for n in range(200)) if coordinator.layout.owners[virtual_shard(m)] == 1)
    with PatronClient(server.address) as client:
        purchase = {"txn_id": "t1", "member_id": member, "occurred_at_ms": ms(f"{TEST_DAY} 10:00"),
                    "kind": "purchase", "amount_minor": 2900}
        assert client.submit([purchase]).results[0].outcome == 1
        ray.get(coordinator.actors[0].midnight_begin.remote(parse_day(TEST_DAY) + 1))  # begun, not walked
        client.move_virtual_shard(virtual_shard(member), 0)
        time.sleep(2)
        assert client.status().resharding.error == ""  # waiting, not refused
        _run_midnight_on(coordinator.actors[0], parse_day(TEST_DAY) + 1)  # the watch then brings shard 1 to it
        moved = client.follow_resharding(every=0.2)
        assert (moved.done, moved.error) == (1, "")
        assert coordinator.layout.owners[virtual_shard(member)] == 0


def test_the_virtual_shards_gauge_follows_a_move_at_once(two_shards):
    """`patron_virtual_shards` is the layout in use as soon as a move is committed, not from the
    status watch's next turn a second later: a scrape right after a rebalance's end read the counts
    from before it (a flaky CI run)."""
    coordinator = two_shards.server.coordinator
    vshard = next(v for v in range(1023, 0, -1) if coordinator.layout.owners[v] == 1)
    with PatronClient(two_shards.address) as client:
        client.move_virtual_shard(vshard, 0)
        assert (client.follow_resharding(every=0.02).error, coordinator.layout.owners[vshard]) == ("", 0)
        gauge = [coordinator.metrics.registry.get_sample_value("patron_virtual_shards", {"shard": str(shard)})
                 for shard in (0, 1)]
    assert gauge == [coordinator.layout.owners.count(shard) for shard in (0, 1)]


def test_a_rebalance_cut_short_by_a_stop_is_told_at_the_next_start_until_one_ends(start_server, caplog):
    server = start_server(shards=1)
    with PatronClient(server.address) as client:
        client.enroll_many([{"member_id": f"m{n}"} for n in range(60)])
        client.rebalance(2)
    server.stop()  # a few of 512 moves done at most
    assert (server.server.config.data / "rebalance.json").exists()
    with caplog.at_level("WARNING", logger="patron.resharding"):
        again = start_server()
    with PatronClient(again.address) as client:
        told = client.status().resharding
        assert (told.running, told.shards) == (False, 2)
        assert "a rebalance over 2 shards did not finish (patron stopped" in told.error
        assert "did not finish" in caplog.text
        assert list(told.owned) != [512, 512]  # uneven, as the error says
        assert "patron shards rebalance --shards 2" in told.error
        client.rebalance(2)
        ended = client.follow_resharding(every=0.05)
    assert (ended.error, list(ended.owned)) == ("", [512, 512])
    assert not (again.server.config.data / "rebalance.json").exists()  # the next start tells nothing


def _move_before_read(monkeypatch, coordinator, member: str, method: str, nth: int = 1, then=None) -> list[int]:
    """A whole move of the member's virtual shard, to the source's deletion of its copy, between the
    gateway's routing of its `nth` read `method` and that read: the interleaving a read racing a
    move meets now and then (an outside probe: 1-2% of reads overlapping moves). `then(source)`
    runs after the move. Returns the shards the reads `method` went to, in order."""
    read, went = coordinator.read, []

    async def read_after_a_move(shard: int, name: str, *args):
        if name == method:
            went.append(shard)
            if len(went) == nth:
                vshard = virtual_shard(member)
                assert await coordinator.resharding.move(vshard, 1 - coordinator.layout.owners[vshard]) is not None
                if then is not None:
                    await then(shard)
        return await read(shard, name, *args)

    monkeypatch.setattr(coordinator, "read", read_after_a_move)
    return went


def _member_with_history(client: PatronClient, member: str, purchases: int = 1) -> None:
    from tests.conftest import TEST_DAY

    client.enroll_many([{"member_id": member}])
    client.submit([{"txn_id": f"{member}-{n}", "member_id": member, "occurred_at_ms": ms(f"{TEST_DAY} 10:{n:02d}"),
                    "kind": "purchase", "amount_minor": 1_000 * (n + 1)} for n in range(purchases)])


@pytest.mark.parametrize("read", ["member", "quote", "coupons"])
def test_a_read_routed_to_a_shard_the_member_just_left_is_asked_of_the_new_owner(two_shards, monkeypatch, read):
    """The source deletes its copy once the new owner is in use: a read routed before that and
    read after it found no member there (NOT_FOUND for an enrolled member: an outside probe)."""
    from tests.conftest import TEST_DAY

    coordinator = two_shards.server.coordinator
    member = f"racing-{read}"
    basket = [{"sku": "S1", "category": "grocery", "paid_minor": 20_000, "quantity": 1}]
    asks = {"member": lambda c: c.member(member), "quote": lambda c: c.quote(member, basket, ms(f"{TEST_DAY} 11:00")),
            "coupons": lambda c: c.coupons(member)}
    with PatronClient(two_shards.address) as client:
        _member_with_history(client, member)
        before = asks[read](client)
        assert before  # a member with coupons
        went = _move_before_read(monkeypatch, coordinator, member, read)
        assert asks[read](client) == before
    owner = coordinator.layout.owners[virtual_shard(member)]
    assert went == [1 - owner, owner]  # the old owner, then the new


@pytest.mark.parametrize(("method", "nth", "after_seq", "limit"), [
    ("ledger_positions", 1, 0, 0),  # the walk meets the deleted copy: no entries, answered OK before
    ("ledger_at", 1, 0, 0),  # the first page's positions are gone: INTERNAL TypeError before
    ("ledger_at", 3, 0, 0),  # between pages: the rest from the new owner, nothing twice
    ("ledger_at", 2, 2, 7),
])
def test_a_ledger_read_while_the_member_moves_is_whole(two_shards, monkeypatch, method, nth, after_seq, limit):
    from actors import gateway

    coordinator = two_shards.server.coordinator
    member = f"paging-{method}-{nth}-{after_seq}"
    with PatronClient(two_shards.address) as client:
        _member_with_history(client, member, purchases=12)
        before = client.ledger(member, after_seq, limit)
        assert len(before) == (limit or 13 - after_seq)  # 12 purchases and the welcome coupon
        monkeypatch.setattr(gateway, "LEDGER_PAGE", 3)
        went = _move_before_read(monkeypatch, coordinator, member, method, nth)
        assert client.ledger(member, after_seq, limit) == before
    assert went[nth - 1] != coordinator.layout.owners[virtual_shard(member)]


def test_a_ledger_page_whose_positions_other_members_took_since_is_read_from_the_new_owner(two_shards, monkeypatch):
    """The source numbers new entries from its last position: once it deleted a moved member's
    newest entries, the next writes there took their positions, and a page read by them gave
    another member's entries as this one's (a review)."""
    from actors import gateway
    from engine.operators import Enrollment

    coordinator = two_shards.server.coordinator
    member = "reused-positions"
    with PatronClient(two_shards.address) as client:
        _member_with_history(client, member, purchases=12)  # the newest entries of its shard
        before = client.ledger(member)
        source = coordinator.layout.owners[virtual_shard(member)]
        others = [m for m in (f"reuser-{n}" for n in range(400)) if coordinator.shard_for(m) == source][:len(before)]

        async def others_write_there(shard: int) -> None:  # each enrollment's welcome coupon is an entry
            for other in others:
                await coordinator.call(shard, "enroll", Enrollment(member_id=other))

        monkeypatch.setattr(gateway, "LEDGER_PAGE", 3)
        went = _move_before_read(monkeypatch, coordinator, member, "ledger_at", 2, then=others_write_there)
        assert client.ledger(member) == before
        assert [e.member_id for e in client.ledger(others[0])] == [others[0]]
    assert went[1] == source != coordinator.layout.owners[virtual_shard(member)]


@pytest.mark.parametrize("read", ["member", "quote", "coupons", "ledger_positions"])
def test_a_read_at_the_shard_a_member_left_waits_for_its_gateways_new_route(two_shards, monkeypatch, read):
    """A node gateway is told of a move after the source deleted its copy, or misses it until the
    next round of routes: a read it routed to the source answered NOT_FOUND for an enrolled
    member (a review). The source says the member moved away, and the gateway asks again once it
    routes the member elsewhere."""
    from tests.conftest import TEST_DAY

    coordinator = two_shards.server.coordinator
    member = f"late-route-{read}"
    basket = [{"sku": "S1", "category": "grocery", "paid_minor": 20_000, "quantity": 1}]
    asks = {"member": lambda c: c.member(member), "quote": lambda c: c.quote(member, basket, ms(f"{TEST_DAY} 11:00")),
            "coupons": lambda c: c.coupons(member), "ledger_positions": lambda c: c.ledger(member)}
    with PatronClient(two_shards.address) as client:
        _member_with_history(client, member)
        before = asks[read](client)
        vshard = virtual_shard(member)
        source = coordinator.layout.owners[vshard]
        layout = coordinator.layout

        async def route_late(shard: int) -> None:  # this gateway still names the source, for a while
            moved, coordinator.layout = coordinator.layout, layout
            asyncio.get_running_loop().call_later(0.3, setattr, coordinator, "layout", moved)

        went = _move_before_read(monkeypatch, coordinator, member, read, then=route_late)
        assert asks[read](client) == before
    assert went[0] == source != coordinator.layout.owners[vshard]


@pytest.mark.parametrize("cleaned_by", ["checkpoint", "watch"])
def test_a_move_whose_source_did_not_delete_its_copy_leaves_no_second_copy(two_shards, monkeypatch, cleaned_by):
    """The source stopped as it deleted its copy, the move's last step: its note and the second copy
    stayed until the next move or start, the members counted twice and a checkpoint kept both
    copies (a cluster probe). The shards' watch deletes it once both answer, and a checkpoint
    (or a midnight run) first."""
    from storage import vshard_move

    coordinator = two_shards.server.coordinator
    resharding, root = coordinator.resharding, coordinator.folder.root
    members = [f"stray-{cleaned_by}-{n}" for n in range(20)]
    call, failed = resharding._call, []

    async def deleting_fails_once(shard: int, method: str, *args):
        if method == "vshard_let_go" and not failed:
            failed.append(shard)
            raise RuntimeError("the source stopped (a test)")
        return await call(shard, method, *args)

    async def not_yet(answering) -> None:
        return None

    with PatronClient(two_shards.address) as client:
        client.enroll_many([{"member_id": m} for m in members])
        before = sum(s.members for s in client.status().shards)
        vshard = virtual_shard(members[0])
        monkeypatch.setattr(resharding, "_call", deleting_fails_once)
        if cleaned_by == "checkpoint":
            monkeypatch.setattr(resharding, "recover_when_answering", not_yet)
        client.move_virtual_shard(vshard, 1 - coordinator.layout.owners[vshard])
        assert "the source stopped" in client.follow_resharding(every=0.05).error
        if cleaned_by == "checkpoint":
            assert vshard_move.read_note(root) is not None
            client.checkpoint()
        deadline = time.monotonic() + 30
        while vshard_move.read_note(root) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert vshard_move.read_note(root) is None
        assert sum(s.members for s in client.status().shards) == before
        assert client.member(members[0]).member_id == members[0]
