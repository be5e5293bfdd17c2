"""Coupon inventory: the one question the engine asks before issuing an instance.

The engine only asks "may I take one unit of coupon X?" and never knows where the answer
comes from. In one process (replay, a single shard) it is a counter; a programme served by
several shards can answer it from blocks of inventory a coordinator granted the shard, with
the same interface."""

from collections.abc import Iterable
from typing import Protocol

from engine.members import Member

__all__ = ["CountedStock", "CouponStock", "share_of"]


class CouponStock(Protocol):
    """Contract: `take` answers True at most `inventory` times per coupon id in total
    (0: unlimited, always True), and a True is never handed out twice. Units taken by a
    scoring call that is then thrown away (a failed commit) are given back with `restore`."""

    def take(self, coupon_id: str, inventory: int) -> bool: ...

    def give_back(self, coupon_id: str) -> None:
        """A unit taken for an instance that was then not kept (its member was not created)."""

    def snapshot(self) -> dict[str, int]: ...

    def restore(self, taken: dict[str, int]) -> None: ...


class CountedStock:
    """Counts what was taken per coupon id, up to this shard's share of the inventory (all of
    it in replay and with one shard)."""

    def __init__(self, taken: dict[str, int] | None = None, shard: int = 0, shards: int = 1) -> None:
        self.taken: dict[str, int] = dict(taken or {})
        self.shard, self.shards = shard, shards

    @classmethod
    def of_members(cls, members: Iterable[Member], shard: int = 0, shards: int = 1) -> "CountedStock":
        """Rebuilt from the instances members hold: what is stored is what was taken, so a
        crash between taking and committing wastes nothing."""
        taken: dict[str, int] = {}
        for member in members:
            for instance in member.coupons:
                taken[instance.coupon_id] = taken.get(instance.coupon_id, 0) + 1
        return cls(taken, shard, shards)

    def take(self, coupon_id: str, inventory: int) -> bool:
        count = self.taken.get(coupon_id, 0)
        if inventory and count >= share_of(inventory, self.shard, self.shards):
            return False
        self.taken[coupon_id] = count + 1
        return True

    def give_back(self, coupon_id: str) -> None:
        self.taken[coupon_id] -= 1

    def snapshot(self) -> dict[str, int]:
        return dict(self.taken)

    def restore(self, taken: dict[str, int]) -> None:
        self.taken = dict(taken)


def share_of(inventory: int, shard: int, shards: int) -> int:
    """The part of a coupon's inventory one of `shards` shards may issue: an even split, the
    first shards one unit more when it does not divide. The shares add up to the inventory,
    so shards issuing at once never oversell it; the price is that a shard whose members have
    used up its share answers out_of_stock while another still holds units (until a
    coordinator grants blocks instead: docs/decisions.md)."""
    return inventory // shards + (1 if shard < inventory % shards else 0)
