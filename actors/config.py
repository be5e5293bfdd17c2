"""How `patron serve` is configured: every option of the command, with its default."""

from pathlib import Path

import msgspec

from storage.mapped_pages import BUDGET_BYTES

__all__ = ["ServeConfig"]


class ServeConfig(msgspec.Struct, kw_only=True):
    data: Path
    rules: Path | None = None
    """Published on start when newer than the version the data folder has."""
    host: str = "127.0.0.1"
    grpc_port: int = 50051
    metrics_port: int = 9464
    """0 chooses a free port; -1 turns the metrics endpoint off."""
    shards: int = 0
    """0: one per CPU for a new data folder, else what the folder has."""
    ray_address: str | None = None
    gateway_per_node: bool = False
    """On a cluster: a gateway on every other node labelled patron-node too (actors/node_gateway.py)."""
    durability: str = "strict"
    midnight: str = "clock"
    """`clock`: run at local 00:00; `manual`: only RunMidnight and `patron midnight`."""
    start_date: int = 0
    """The business day a new data folder starts on (day ordinal); 0 is today."""
    allow_future: bool = False
    """A `start_date` after tomorrow on the programme's clock is refused unless this (test systems)."""
    max_batch: int = 10_000
    max_message_bytes: int = 64 << 20
    in_flight_per_shard: int = 1
    """Calls a shard has at once: it works one at a time, and what queues meanwhile leaves as one commit."""
    queue_per_shard: int = 64
    checkpoints_kept: int = 3
    index_retention_days: int = 400
    """How long transaction ids are remembered (resubmissions, refunds of their originals)."""
    map_bytes: int = 1 << 30
    """Each shard's initial LMDB map size; it doubles before it fills."""
    max_map_bytes: int = 1 << 40
    """The ceiling the map may grow to; past it a batch is refused with RESOURCE_EXHAUSTED."""
    job_chunk: int = 15_000
    """Members per commit in long jobs (midnight, re-evaluation); batches go in between."""
    hot_members: int = 0
    """Members each shard keeps in memory between writes (0: every member, loaded at start);
    the others are read from LMDB when a transaction, a read or the midnight run needs them."""
    mapped_budget_mib: int = BUDGET_BYTES >> 20
    """A shard's file-backed resident memory above which it drops LMDB's mapped pages from its
    page tables before its next batch (storage/mapped_pages.py; 0: never)."""
    drain_seconds: int = 0
    """At a stop, how long health says NOT_SERVING while every call is still answered, before new
    calls are refused: load balancers that probe health move the traffic away meanwhile."""
    coupon_block: int = 64
    """The smallest block of a limited coupon's inventory a shard asks for at once; a shard asks
    for twice what its last commit used when that is more (docs/decisions.md)."""
    tokens_file: Path | None = None
    """Bearer tokens with roles (also PATRON_TOKENS); without any, only a loopback host is allowed."""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    """When given, clients must present a certificate this CA signed."""
