"""Which shard owns a member: a stable hash to a fixed set of virtual shards, mapped to shards."""

import zlib
from collections.abc import Iterable

from engine.errors import MovedAwayError
from storage.folder import Layout

__all__ = ["VIRTUAL_SHARDS", "MovedAway", "even_layout", "shard_of", "shards_of", "virtual_shard"]

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


class MovedAway:
    """The virtual shards a shard gave away (or is giving away) while it runs: a write for one of
    their members reached it by a route out of date (a gateway not yet told of a move), and is
    refused, never applied where the member no longer lives (actors/shard_moves.py)."""

    def __init__(self, shard: int) -> None:
        self.shard = shard
        self.vshards: set[int] = set()
        self.virtual_shards = VIRTUAL_SHARDS

    def add(self, vshards: Iterable[int], virtual_shards: int) -> None:
        self.vshards.update(vshards)
        self.virtual_shards = virtual_shards

    def discard(self, vshards: Iterable[int]) -> None:
        self.vshards.difference_update(vshards)

    def refusal(self, member_ids: Iterable[str]) -> MovedAwayError | None:
        """Why a write for these members may not be applied here (None: it may)."""
        if not self.vshards:
            return None
        for member_id in member_ids:
            if (vshard := self.moved(member_id)) is not None:
                return MovedAwayError(f"not applied on shard {self.shard}: member {member_id!r} is in virtual shard "
                                      f"{vshard}, which moved to another shard while this was on its way; nothing "
                                      f"of it was applied here; send it again")
        return None

    def moved(self, member_id: str) -> int | None:
        """The member's virtual shard when it is one given away, else None."""
        if not self.vshards:
            return None
        vshard = zlib.crc32(member_id.encode()) % self.virtual_shards
        return vshard if vshard in self.vshards else None

    def check_read(self, member_id: str) -> None:
        """For a read that found no such member here: MovedAwayError when the member's virtual shard
        was given away. The read was routed before its gateway learnt of the move, and "unknown
        member" would be untrue (an outside probe); the gateway asks the owner once it knows it."""
        if (vshard := self.moved(member_id)) is not None:
            raise MovedAwayError(f"member {member_id!r} is in virtual shard {vshard}, which moved from shard "
                                 f"{self.shard} to another; ask again")
