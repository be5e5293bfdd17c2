"""Which nodes a loopback `--host` leaves without a usable gateway (actors/node_gateway.py): a
gateway on another machine would listen on that machine's own loopback and forward admin calls
there, not to serve. One machine's test cluster has every node on one host, so the check is
tested here on the host names Ray reports."""

import pytest

from actors.node_gateway import away_on_loopback

NODES = {"store-1": "shop-a", "store-2": "shop-b", "store-3": "shop-a"}


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.1.1", "::1", "localhost"])
def test_a_loopback_host_names_the_nodes_on_other_machines(host):
    assert away_on_loopback(host, "shop-a", NODES) == ["store-2"]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.11", "shop-a"])
def test_a_host_other_machines_reach_names_none(host):
    assert away_on_loopback(host, "shop-a", NODES) == []


def test_nodes_all_on_serves_machine_are_fine_on_loopback():
    # a test cluster's nodes on one machine, whatever addresses they were started with
    assert away_on_loopback("127.0.0.1", "vm", {"a": "vm", "b": "vm"}) == []
