"""patron serve on a real two-node Ray cluster (tests/cluster.py): shards pinned to named nodes,
each with its LMDB under its node's own data root, a gateway per node, results equal to replay,
and nothing left running at the end. One cluster and one server for the module (a cluster
costs ~20 s to start)."""

import json
import re
from pathlib import Path

import pytest

from bench.workload import generate
from cli.show import member_json, member_summary
from client import PatronClient
from tests.cluster import LocalCluster
from tests.conftest import EXAMPLE_RULES
from tests.integration.test_agreement import WORKLOAD, assert_members_and_ledgers, replayed, served
from tests.integration.test_metrics import scrape, value
from tests.process import ServeProcess

_NODE_GATEWAY = re.compile(r"node (\w+): gateway 127\.0\.0\.1:(\d+)\s+metrics http://127\.0\.0\.1:(\d+)/metrics")


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
        root = served_cluster.cluster.nodes[node].data / "shards"
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

    samples = scrape(served_cluster.b_metrics)  # b's gateway counted what it acknowledged
    batches = value(samples, "patron_batch_latency_seconds_count")
    assert batches >= WORKLOAD.transactions / 500
    accepted = sum(v for (name, labels), v in samples.items()
                   if name == "patron_transactions_total" and ("outcome", "accepted") in labels)
    assert accepted == sum(1 for r in expected_results if r[1] == "accepted")
