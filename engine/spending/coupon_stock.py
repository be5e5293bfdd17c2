"""Coupon inventory: the one question the engine asks before issuing an instance.

The engine only asks "may I take one unit of coupon X?" and is told yes or no. In one process
(replay, tests) the limit is the rules' inventory itself; a served shard is given instead the
units the programme's grant keeper granted it (`granted`: its blocks, see docs/decisions.md),
and, when they run out, a way to ask the keeper for more before answering (`refill`), so shards
issuing at once never oversell, and the engine never knows where the units came from."""

from collections.abc import Callable, Iterable
from typing import Protocol

from engine.members import Member

__all__ = ["CountedStock", "CouponStock", "take_from"]


class CouponStock(Protocol):
    """Contract: `take` answers True at most `inventory` times per coupon id in total
    (0: unlimited, always True), and a True is never handed out twice. Units taken by a
    scoring call that is then thrown away (a failed commit) are given back with `restore`."""

    def take(self, coupon_id: str, inventory: int) -> bool: ...

    def _refilled(self, coupon_id: str, count: int, inventory: int) -> bool:
        """More units came for a coupon whose grant is used up (never past the inventory)."""
        if count >= inventory or self.refill is None or not self.refill(coupon_id):
            return False
        return count < self.limit(coupon_id, inventory)

    def give_back(self, coupon_id: str) -> None:
        """A unit taken for an instance that was then not kept (its member was not created)."""

    def snapshot(self) -> dict[str, int]: ...

    def restore(self, taken: dict[str, int]) -> None: ...


class CountedStock:
    """Counts the instances issued per coupon id (every coupon, limited or not: a coupon may
    become limited later, and what was issued counts). A limited coupon may be taken up to
    its limit: the rules' inventory when `granted` is None, else the units granted to this
    shard (and never past the inventory). `refill`, when set, is asked for more units of a
    coupon whose grant is used up, before a take is refused: it raises `granted` and answers
    whether it could."""

    def __init__(self, taken: dict[str, int] | None = None, granted: dict[str, int] | None = None) -> None:
        self.taken: dict[str, int] = dict(taken or {})
        self.granted = granted
        self.refill: Callable[[str], bool] | None = None

    @classmethod
    def of_members(cls, members: Iterable[Member], granted: dict[str, int] | None = None) -> "CountedStock":
        """Rebuilt from the instances members hold: what is stored is what was taken, so a
        crash between taking and committing wastes nothing."""
        stock = cls(None, granted)
        for member in members:
            stock.count(member)
        return stock

    def count(self, member: Member) -> None:
        """Count the instances a stored member holds as taken."""
        taken = self.taken
        for instance in member.coupons:
            taken[instance.coupon_id] = taken.get(instance.coupon_id, 0) + 1

    def limit(self, coupon_id: str, inventory: int) -> int:
        if self.granted is None:
            return inventory
        return min(inventory, self.granted.get(coupon_id, 0))

    def remaining(self, coupon_id: str, inventory: int) -> int:
        """Units this stock may still hand out (0 for an unlimited coupon: nothing to count)."""
        return max(0, self.limit(coupon_id, inventory) - self.taken.get(coupon_id, 0)) if inventory else 0

    def take(self, coupon_id: str, inventory: int) -> bool:
        count = self.taken.get(coupon_id, 0)
        if inventory and count >= self.limit(coupon_id, inventory) and not self._refilled(coupon_id, count, inventory):
            return False
        self.taken[coupon_id] = count + 1
        return True

    def _refilled(self, coupon_id: str, count: int, inventory: int) -> bool:
        """More units came for a coupon whose grant is used up (never past the inventory)."""
        if count >= inventory or self.refill is None or not self.refill(coupon_id):
            return False
        return count < self.limit(coupon_id, inventory)

    def give_back(self, coupon_id: str) -> None:
        self.taken[coupon_id] -= 1

    def snapshot(self) -> dict[str, int]:
        return dict(self.taken)

    def restore(self, taken: dict[str, int]) -> None:
        self.taken = dict(taken)


def take_from(stock: CouponStock, coupon_id: str, inventory: int) -> bool:
    """`stock.take(...)`. The book's stock is a protocol (a shard's asks the grant keeper), so
    compiled, the method is called by name; a CountedStock (replay's) is asked by a C call here
    (every enrollment's welcome coupon takes a unit)."""
    if type(stock) is CountedStock:
        counted = stock  # a CountedStock, as coupon_stock.pxd types it
        return counted.take(coupon_id, inventory)
    return stock.take(coupon_id, inventory)
