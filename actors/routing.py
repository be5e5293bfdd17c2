"""Which shard owns a member: a stable hash to a fixed set of virtual shards, mapped to shards."""

import zlib

from storage.folder import Layout

__all__ = ["VIRTUAL_SHARDS", "even_layout", "shard_of", "shards_of", "virtual_shard"]

VIRTUAL_SHARDS = 1024
"""Fixed for the life of a data folder: moving a virtual shard never rehashes members."""


def virtual_shard(member_id: str, virtual_shards: int = VIRTUAL_SHARDS) -> int:
    """CRC-32 of the UTF-8 id: the same on every machine and Python version (unlike hash())."""
    return zlib.crc32(member_id.encode()) % virtual_shards


def shard_of(layout: Layout, member_id: str) -> int:
    return layout.owners[zlib.crc32(member_id.encode()) % layout.virtual_shards]


def shards_of(layout: Layout, member_ids: list[str]) -> list[int]:
    """`shard_of` for each of a batch's members, in one pass."""
    owners, virtual_shards, crc32 = layout.owners, layout.virtual_shards, zlib.crc32
    return [owners[crc32(member_id.encode()) % virtual_shards] for member_id in member_ids]


def even_layout(shards: int, virtual_shards: int = VIRTUAL_SHARDS) -> Layout:
    return Layout(shards, virtual_shards, [v % shards for v in range(virtual_shards)])
