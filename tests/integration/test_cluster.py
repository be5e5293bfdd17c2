"""patron serve on a real two-node Ray cluster (tests/cluster.py): shards pinned to named nodes,
each with its LMDB under its node's own data root, a gateway per node, results equal to replay,
and nothing left running at the end. One cluster and one server for the module (a cluster
costs ~20 s to start)."""

import contextlib
import json
import os
import random
import re
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest

from actors.routing import virtual_shard
from bench.cluster import LocalCluster, free_port
from bench.workload import Workload, generate
from cli.show import member_json, member_summary
from client import PatronClient, patron_client
from proto import patron_pb2 as pb
from tests.builders import ms
from tests.conftest import EXAMPLE_RULES
from tests.integration.test_agreement import WORKLOAD, assert_members_and_ledgers, basic, replayed, served
from tests.integration.test_metrics import scrape, value
from tests.process import ServeProcess

_NODE_GATEWAY = re.compile(r"node (\w+): gateway 127\.0\.0\.1:(\d+)\s+metrics (?:http://127\.0\.0\.1:(\d+)/metrics)?")


class Served:
    def __init__(self, cluster: LocalCluster, serve: ServeProcess, data: Path) -> None:
        self.cluster, self.serve, self.data = cluster, serve, data
        found = _NODE_GATEWAY.search(serve.text())
        assert found is not None, serve.text()
        self.node_gateway = found.group(1)
        self.b_address, self.b_metrics = f"127.0.0.1:{found.group(2)}", int(found.group(3))


@pytest.fixture(scope="module")
def served_cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    cluster = LocalCluster(root)
    serve = None
    try:
        data = root / "serve-data"
        serve = ServeProcess(data, "--ray-address", cluster.address, "--shards", "4", "--gateway-per-node",
                             "--metrics-port", "0", "--start-date", WORKLOAD.start, rules=EXAMPLE_RULES,
                             env=cluster.env)
        serve.client().close()
        yield Served(cluster, serve, data)
        assert serve.terminate() == 0, serve.text()
    finally:
        if serve is not None:
            serve.kill_everything()
        cluster.stop()
    assert cluster.leftovers() == []  # no raylet, worker or agent outlives the test


def test_shards_are_pinned_to_named_nodes_with_their_lmdb_on_that_nodes_data_root(served_cluster):
    layout = json.loads((served_cluster.data / "layout.json").read_text())
    assert layout["nodes"] == {"0": "a", "1": "b", "2": "a", "3": "b"}
    for node, shards in (("a", {"000", "002"}), ("b", {"001", "003"})):
        root = served_cluster.cluster.nodes[node].data / layout["folder_id"] / "shards"
        assert {path.name for path in root.iterdir()} == shards
        assert all((root / shard / "data.mdb").exists() for shard in shards)
    assert not any((served_cluster.data / "shards").iterdir())  # serve's folder keeps no shard
    assert served_cluster.node_gateway == "b"


def test_a_node_gateway_answers_every_member_and_agrees_with_replay(served_cluster, tmp_path):
    expected_results, expected_members, expected_ledger = replayed(tmp_path)
    # everything through node b's gateway, the midnight runs (Admin) passed on to serve's own
    with PatronClient(served_cluster.b_address) as client:
        assert served(client, list(generate(WORKLOAD))) == expected_results
    with PatronClient(served_cluster.serve.address) as client:  # read back through serve's gateway
        assert_members_and_ledgers(client, expected_members, expected_ledger)
    with PatronClient(served_cluster.b_address) as client:  # and through b's
        for member in expected_members[::7]:
            assert json.loads(member_json(member_summary(client.member(member["member_id"])))) == member
        assert client.status().rule_version == 1
        # which machine each shard is on, as layout.json has it (it said "" for every shard: an outside probe)
        assert {s.shard: s.node for s in client.status().shards} == {0: "a", 1: "b", 2: "a", 3: "b"}

    samples = scrape(served_cluster.b_metrics)  # b's gateway counted what it acknowledged
    batches = value(samples, "patron_batch_latency_seconds_count")
    assert batches >= WORKLOAD.transactions / 500
    accepted = sum(v for (name, labels), v in samples.items()
                   if name == "patron_transactions_total" and ("outcome", "accepted") in labels)
    assert accepted == sum(1 for r in expected_results if r[1] == "accepted")


MOVING = Workload(transactions=2_000, members=40, days=2, start="2026-11-19", seed=13, id_prefix="V",
                  member_prefix="V")
"""Few members, so each moving virtual shard has writes in nearly every batch."""


def test_virtual_shards_move_while_a_stream_enters_through_a_node_gateway(served_cluster, tmp_path):
    """The two busiest virtual shards go back and forth between shards on both nodes while a
    client streams through node b's gateway: b holds each move's writes and waits for its own
    to the source before the export, then routes by the new layout; results, members and
    ledgers are replay's (nothing lost, nothing counted twice, order per member kept)."""
    expected_results, expected_members, expected_ledger = replayed(tmp_path, MOVING)
    txns = list(generate(MOVING))
    busiest = [vshard for vshard, _ in Counter(virtual_shard(t["member_id"]) for t in txns).most_common(2)]
    owners = json.loads((served_cluster.data / "layout.json").read_text())["owners"]
    streaming, over = threading.Event(), threading.Event()
    moves: list[tuple[pb.Resharding, bool]] = []

    def move() -> None:  # shards 0 and 2 are on node a, 1 and 3 on b: each move crosses nodes
        streaming.wait(60)
        with PatronClient(served_cluster.serve.address) as admin:
            while not over.is_set() and len(moves) < 16:
                vshard = busiest[len(moves) % 2]
                owners[vshard] = (owners[vshard] + 1) % 4
                admin.move_virtual_shard(vshard, owners[vshard])
                moves.append((admin.follow_resharding(every=0.02), over.is_set()))

    mover = threading.Thread(target=move, daemon=True)
    mover.start()
    with PatronClient(served_cluster.b_address) as client:
        client.run_midnight(MOVING.start)  # the agreement test may have left it earlier
        streaming.set()
        results = served(client, txns, batch_size=10, window=32, start=MOVING.start)
        over.set()
        mover.join(60)
    assert results == expected_results
    with PatronClient(served_cluster.serve.address) as client:
        assert_members_and_ledgers(client, expected_members, expected_ledger)
    assert [(m.error, m.done) for m, _ in moves] == [("", 1)] * len(moves)
    assert sum(1 for _, late in moves if not late) >= 4, "the moves did not overlap the stream"
    layout = json.loads((served_cluster.data / "layout.json").read_text())
    assert [layout["owners"][vshard] for vshard in busiest] == [owners[vshard] for vshard in busiest]


def test_rules_published_through_a_node_gateway_are_in_force_there(served_cluster):
    """Admin is passed on to serve's coordinator, and the node gateway is told the new version
    before the publish answers: a purchase it acknowledges next says why in the new rules' words."""
    with PatronClient(served_cluster.serve.address) as a:
        [day] = {shard.business_day for shard in a.status().shards}  # the agreement test may have moved it
    text = EXAMPLE_RULES.read_text().replace("version = 1", "version = 2", 1).replace(
        'name = "double eleven"\nfactor = 3.0\nwhen = { dates = ["2026-11-11"] }',
        f'name = "cluster relaunch"\nfactor = 3.0\nwhen = {{ dates = ["{day}"] }}')
    assert "cluster relaunch" in text
    purchase = {"txn_id": "R2-1", "member_id": "R2-member", "occurred_at_ms": ms(f"{day} 12:00"),
                "kind": "purchase", "lines": [{"sku": "A", "paid_minor": 10_000}]}
    with PatronClient(served_cluster.b_address) as b, PatronClient(served_cluster.serve.address) as a:
        assert b.publish_rules(text).version == 2
        assert b.submit([purchase]).results[0].outcome == pb.OUTCOME_ACCEPTED
        ledger = b.ledger("R2-member")
        assert "cluster relaunch" in ledger[-1].why
        assert ledger == a.ledger("R2-member")


def test_the_client_fails_over_to_the_next_gateway(served_cluster, monkeypatch):
    monkeypatch.setattr(patron_client, "random", _starting_at_first())  # start at the dead one
    dead = f"127.0.0.1:{free_port()}"
    with PatronClient([dead, served_cluster.b_address, served_cluster.serve.address], retries=3) as client:
        # a read tried again goes to the next gateway: the stub of the first, bound once, was tried again
        assert client.status().rule_version
        assert client.address == served_cluster.b_address
        client._use(0)
        ack = client.submit([{"txn_id": "F1", "member_id": "F-1", "occurred_at_ms": 0, "kind": "event"}])
        assert client.address == served_cluster.b_address  # a batch is sent again there
        assert len(ack.results) == 1


def test_a_shard_behind_the_rules_gets_no_batch_through_a_node_gateway(served_cluster):
    """A publish a shard's death cut short leaves that shard on the old version until serve's
    coordinator brings it up to date; node gateways did not know, and sent it batches meanwhile,
    scored under the old rules."""
    with PatronClient(served_cluster.serve.address) as a:
        [day] = {shard.business_day for shard in a.status().shards}
    for _ in range(5):  # a publish that reached the shard's restart proves nothing: again
        version, raised = _publish_as_a_shard_dies(served_cluster)
        if raised is not None:
            break
    assert raised is not None, "every publish reached a restarted shard: none was cut short"
    assert raised.code() == grpc.StatusCode.UNAVAILABLE

    def purchases(prefix: str, count: int) -> list[dict]:
        return [{"txn_id": f"{prefix}{n}", "member_id": f"{prefix}-m{n}", "occurred_at_ms": ms(f"{day} 09:00"),
                 "kind": "purchase", "lines": [{"sku": "A", "paid_minor": 2_900}]} for n in range(count)]

    during, sent = [], 0
    with PatronClient(served_cluster.b_address, retries=0) as b:  # batches all along, the second before catch-up too
        deadline = time.monotonic() + 90
        while not during or {shard.rule_version for shard in b.status().shards} != {version}:
            assert time.monotonic() < deadline, "the shard that died did not take the version in force"
            with contextlib.suppress(grpc.RpcError):  # refused while it is away or behind: nothing applied
                during += b.submit(purchases(f"BH{sent}-", 8)).results
            sent += 1
        [control] = b.submit(purchases("BC", 1)).results
    assert {r.points for r in during} == {control.points}  # none scored under the old version


def _publish_as_a_shard_dies(served_cluster) -> tuple[int, grpc.RpcError | None]:
    """Publish a richer version through node b while a shard is stopped, killing the shard once
    serve has the version in force (the shards' calls leave right after). The version, and the
    publish's error: None when the call reached the shard's restart instead, as it does when an
    event poll's call (one a second, one call in flight a shard) took the stopped shard first."""
    with PatronClient(served_cluster.serve.address) as a:
        rules = a.rules()
        version = rules.version + 1
        richer = rules.rules_toml.replace(f"version = {rules.version}", f"version = {version}", 1).replace(
            "per_unit = 10\n", "per_unit = 20\n", 1)
        assert "per_unit = 20" in richer
        [pid, *_] = [p for node in served_cluster.cluster.nodes.values() for p in node.pids()
                     if Path(f"/proc/{p}/cmdline").read_bytes().startswith(b"ray::ShardActor")]
        os.kill(pid, signal.SIGSTOP)  # it takes the publish's call, then dies with it
        in_force = served_cluster.data / "rules" / f"v{version:06d}.toml"
        killer = threading.Thread(target=_kill_after, args=(pid, in_force))
        killer.start()
        raised = None
        try:
            with PatronClient(served_cluster.b_address, retries=0) as b:
                b.publish_rules(richer)
        except grpc.RpcError as error:
            raised = error
        killer.join()
        if raised is None:  # the next try starts from every shard serving this version
            deadline = time.monotonic() + 90
            while {shard.rule_version for shard in a.status().shards} != {version}:
                assert time.monotonic() < deadline, "the restarted shard did not come back"
                time.sleep(0.2)
    return version, raised


def _kill_after(pid: int, appears: Path, seconds: float = 60) -> None:
    """SIGKILL `pid` half a second after `appears` exists (or `seconds` pass without it)."""
    deadline = time.monotonic() + seconds
    while not appears.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)


LOSS = Workload(transactions=1_500, members=300, days=2, start=WORKLOAD.start, seed=11, id_prefix="L")


def test_losing_a_node_under_load_loses_nothing_acknowledged(served_cluster, tmp_path, monkeypatch):
    """Node b (half the shards, a gateway) is killed -9 in the middle of a stream and started
    again 3 s later under its name: its shards come back where their LMDB is, the client fails
    over to serve's gateway and resends what was not acknowledged; members and ledgers are
    those of replay (nothing lost, nothing counted twice)."""
    cluster = served_cluster.cluster
    serve = ServeProcess(tmp_path / "data", "--ray-address", cluster.address, "--shards", "2", "--gateway-per-node",
                         "--start-date", LOSS.start, rules=EXAMPLE_RULES, env=cluster.env)
    returned: list[threading.Thread] = []
    try:
        serve.client().close()
        b_gateway = f"127.0.0.1:{_NODE_GATEWAY.search(serve.text()).group(2)}"
        expected_results, expected_members, expected_ledger = replayed(tmp_path, LOSS)
        monkeypatch.setattr(patron_client, "random", _starting_at_first())  # start at b's

        def lose_b_once(result) -> tuple:
            answered.append(result.txn_id)
            if len(answered) == 500:
                cluster.nodes["b"].kill()
                comeback = threading.Timer(3.0, cluster.add, ("b",))
                comeback.start()
                returned.append(comeback)
            return basic(result)

        answered: list[str] = []
        with PatronClient([b_gateway, serve.address], retries=60) as client:
            results = served(client, list(generate(LOSS)), batch_size=50, window=4, start=LOSS.start,
                             fields=lose_b_once)
            assert returned, "node b was never lost: the stream was too short"
            assert client.address == serve.address
            # every transaction answered; a part committed before the loss answers `duplicate` when resent
            assert {r[0] for r in results} == {r[0] for r in expected_results}
            assert_members_and_ledgers(client, expected_members, expected_ledger)
        layout = json.loads((tmp_path / "data" / "layout.json").read_text())
        assert layout["nodes"] == {"0": "a", "1": "b"}
    finally:
        for thread in returned:
            thread.join(120)
        serve.kill_everything()


def test_a_node_that_joins_while_serving_gets_a_gateway(served_cluster):
    # only the nodes up at serve's start had one: a node added to scale out got none until a
    # restart (an outside probe)
    served_cluster.cluster.add("c")
    deadline = time.monotonic() + 90
    while not (joined := [line for line in _json_lines(served_cluster.serve.text())
                          if line.get("msg") == "a gateway started on a node that joined" and line["node"] == "c"]):
        assert time.monotonic() < deadline, served_cluster.serve.text()[-3000:]
        time.sleep(0.5)
    with PatronClient(served_cluster.serve.address) as client:
        in_force = client.status().rule_version
    with PatronClient(f"127.0.0.1:{joined[0]['port']}") as client:
        client.wait_until_serving()
        assert client.status().rule_version == in_force
        assert client.rules().version == in_force


def _json_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            if line.startswith("{"):
                lines.append(json.loads(line))
    return lines


def _starting_at_first() -> SimpleNamespace:
    """The client's randomness with its first address always chosen (its back-off stays random)."""
    return SimpleNamespace(randrange=lambda n: 0, uniform=random.uniform)


def test_node_gateways_that_cannot_listen_stop_serve_with_one_line_naming_the_node(served_cluster, tmp_path):
    """Two labelled nodes on one machine with a fixed --grpc-port: the node's gateway cannot listen
    where serve's own does, and serve ended with Ray's coloured traceback in one line (a cluster
    probe), where a start that cannot go on says why in one line."""
    port = free_port()
    serve = ServeProcess(tmp_path / "data", "--ray-address", served_cluster.cluster.address, "--shards", "2",
                         "--gateway-per-node", "--grpc-port", str(port), rules=EXAMPLE_RULES,
                         env=served_cluster.cluster.env, wait=False)
    try:
        assert serve.wait(timeout=180) == 1
    finally:
        serve.kill_everything()
    [said] = [line["msg"] for line in _json_lines(serve.text()) if line["level"] == "error"]  # one line, as JSON here
    assert said.startswith(f"--gateway-per-node: a node's gateway did not start, on node "
                           f"{served_cluster.node_gateway}: --grpc-port {port}: cannot listen"), said
    assert "on this machine, where serve's own gateway holds its ports" in said
    assert "\x1b[" not in said
    assert "Traceback" not in said
