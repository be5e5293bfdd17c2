"""Where shards live on a Ray cluster. A shard's LMDB is on one node's disk, so the shard must
always run on that node, also after the node's raylet restarts (which gives it a new Ray node
id). Nodes are therefore named by their operator, with the node label `patron-node` given at
`ray start --labels patron-node=NAME`, and `layout.json` remembers the name of each shard's node.
A node may keep patron's data under its own root, given to that node's `ray start` in the
environment as PATRON_NODE_DATA (default: the same path as `patron serve --data`)."""

import os
from pathlib import Path
from typing import Any

import ray

from engine.errors import PatronError

__all__ = ["NODE_DATA_ENV", "NODE_LABEL", "assign_nodes", "labelled_nodes", "on_this_node", "pinned_to"]

NODE_LABEL = "patron-node"
NODE_DATA_ENV = "PATRON_NODE_DATA"


def labelled_nodes() -> dict[str, str]:
    """name -> Ray node id of every live node that carries the patron-node label."""
    return _labelled("NodeID")


def node_hosts() -> dict[str, str]:
    """name -> host name of every live labelled node: which machine it is on (its address may
    differ on one machine: a node started with 127.0.0.1 beside one on the machine's own address)."""
    return _labelled("NodeManagerHostname")


def _labelled(field: str) -> dict[str, str]:
    return {node["Labels"][NODE_LABEL]: node[field] for node in ray.nodes()
            if node.get("Alive") and NODE_LABEL in (node.get("Labels") or {})}


def assign_nodes(shards: int, remembered: dict[str, str], live: dict[str, str]) -> dict[str, str]:
    """Each shard's node name: the one remembered (a Ray node id saved by an older patron is
    translated to its node's name while that node lives), and shards not placed yet go to the
    live nodes that hold the fewest shards, in name order."""
    if not live:
        raise PatronError(f"no node of this Ray cluster has the label {NODE_LABEL}: start every node that "
                          f"may hold shards with `ray start ... --labels {NODE_LABEL}=NAME` (a name of your "
                          f"choosing that stays with the node's disk)")
    names_by_id = {node_id: name for name, node_id in live.items()}
    placed = {shard: names_by_id.get(node, node) for shard, node in remembered.items()}
    load = {name: 0 for name in live}
    for name in placed.values():
        if name in load:
            load[name] += 1
    for shard in range(shards):
        if str(shard) not in placed:
            name = min(sorted(load), key=load.__getitem__)
            placed[str(shard)] = name
            load[name] += 1
    return placed


def pinned_to(name: str) -> dict[str, Any]:
    """Ray options that run an actor only on the node named `name`: while that node is away
    the actor waits for it (a restart never opens an empty LMDB on another node)."""
    return {"label_selector": {NODE_LABEL: name}}


def on_this_node(shard_path: str, folder_id: str) -> str:
    """A shard's folder (`DATA/shards/NNN`) under this node's data root when its ray start gave
    one: `ROOT/FOLDER_ID/shards/NNN`, so the shards of two data folders never meet there."""
    root = os.environ.get(NODE_DATA_ENV)
    if not root or not folder_id:
        return shard_path
    return str(Path(root) / folder_id / "shards" / Path(shard_path).name)
