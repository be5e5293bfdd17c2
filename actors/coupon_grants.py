"""The grant keeper: the one place that hands out a limited coupon's programme-wide inventory,
in blocks, to the shards that issue it (docs/decisions.md, "Coupon inventory over shards").

Invariants, per coupon: the units granted to all shards together never exceed the inventory
(a grant is refused past it); a grant is on disk before its answer leaves, so a shard never
issues beyond what the keeper has written down; asking again with the same view of one's
grant never grants twice (a reply lost in a crash is answered again, not given again)."""

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import msgspec
import ray

from actors.logs import configure_logging
from engine.errors import ShardUnavailableError
from storage.grant_store import GrantStore

__all__ = ["Grant", "GrantKeeper", "GrantSource", "Grants", "LocalGrants", "RayGrants", "stricter"]


class Grant(msgspec.Struct, frozen=True):
    total: int
    """Everything granted to the shard for this coupon so far."""
    tail: bool
    """The keeper could not give the whole block asked for: the inventory is nearly used up, so
    the shard gives back what it does not use after each batch (nothing sits idle in a block)."""


class Grants:
    """The keeper's logic without Ray: the grants per coupon and shard, on disk."""

    def __init__(self, store: GrantStore, shards: int, inventory: dict[str, int] | None = None) -> None:
        self.store = store
        self.shards = max(1, shards)
        self.grants = store.load()
        self.inventory: dict[str, int] = {}
        self.tails: set[str] = set()
        self.set_inventory(inventory or {})

    def set_inventory(self, inventory: dict[str, int]) -> None:
        """The limited coupons of the rules in force (id -> inventory); others are unlimited.
        A coupon whose inventory changed is judged afresh for the tail."""
        self.tails = {c for c in self.tails if self.inventory.get(c) == inventory.get(c)}
        self.inventory = {c: n for c, n in inventory.items() if n > 0}

    def held(self, shard: int) -> dict[str, int]:
        return {coupon: grants[shard] for coupon, grants in self.grants.items() if shard in grants}

    def report(self, shard: int, taken: dict[str, int]) -> dict[str, int]:
        """A shard starting says how many instances of each coupon it holds; a record below
        that is raised to it (a checkpoint restored to a new folder, instances issued while the
        coupon was unlimited), so they count against the inventory. Returns its grants."""
        changed = {}
        for coupon, count in taken.items():
            grants = self.grants.setdefault(coupon, {})
            if count > grants.get(shard, 0):
                grants[shard] = count
                changed[coupon] = grants
        self.store.save_many(changed)
        return self.held(shard)

    def grant(self, shard: int, coupon: str, seen: int, need: int, want: int) -> Grant:
        """Up to `want` more units for a shard whose grant it knows as `seen`, at least `need`
        of them when there are. Near the end blocks shrink to a share of what is left, so the
        last units go to the shards that ask for them rather than sit in another's block."""
        grants = self.grants.setdefault(coupon, {})
        held = grants.get(shard, 0)
        if held != seen:  # an answer the shard never got: give it again, nothing more
            return Grant(held, coupon in self.tails)
        inventory = self.inventory.get(coupon, 0)
        free = (inventory - sum(grants.values())) if inventory else want
        give = max(0, min(free, want, max(need, free // (2 * self.shards))))
        if give < want and inventory:
            self.tails.add(coupon)
        if give:
            grants[shard] = held + give
            self.store.save(coupon, grants)
        return Grant(held + give, coupon in self.tails)

    def settle(self, shard: int, totals: dict[str, int]) -> None:
        """A shard keeps exactly `totals` (what it issued): the rest of its blocks goes back.
        The shard stopped using those units before it called."""
        changed = {}
        for coupon, total in totals.items():
            grants = self.grants.setdefault(coupon, {})
            if grants.get(shard, 0) != total:
                grants[shard] = total
                changed[coupon] = grants
        self.store.save_many(changed)

    def state(self) -> dict[str, dict[int, int]]:
        return {coupon: dict(grants) for coupon, grants in self.grants.items()}


def stricter(old: dict[str, int], new: dict[str, int]) -> dict[str, int]:
    """The inventories in force while a publish reaches the shards one by one: the smaller of
    the two versions' (unlimited being the largest), so neither is oversold meanwhile."""
    both = {}
    for coupon in old.keys() | new.keys():
        limits = [n for n in (old.get(coupon, 0), new.get(coupon, 0)) if n > 0]
        if limits:
            both[coupon] = min(limits)
    return both


# Ray retries a call on a keeper that restarted: every method may run twice (see Grants.grant)
@ray.remote(max_restarts=-1, max_task_retries=-1, enable_task_events=False)
class GrantKeeper:
    """The Ray actor around Grants: one per served programme, started by the coordinator."""

    def __init__(self, path: str, shards: int, inventory: dict[str, int]) -> None:
        configure_logging()
        self.grants = Grants(GrantStore(Path(path)), shards, inventory)

    def set_inventory(self, inventory: dict[str, int]) -> None:
        self.grants.set_inventory(inventory)

    def report(self, shard: int, taken: dict[str, int]) -> dict[str, int]:
        return self.grants.report(shard, taken)

    def grant(self, shard: int, coupon: str, seen: int, need: int, want: int) -> Grant:
        return self.grants.grant(shard, coupon, seen, need, want)

    def settle(self, shard: int, totals: dict[str, int]) -> None:
        self.grants.settle(shard, totals)

    def tails(self) -> set[str]:
        return set(self.grants.tails)

    def state(self) -> dict[str, dict[int, int]]:
        return self.grants.state()

    def pid(self) -> int:
        """Its process, as a shard actor's `pid`: for tests that stop it."""
        return os.getpid()

    def close(self) -> None:
        self.grants.store.close()


class Pending(Protocol):
    def done(self) -> bool: ...

    def result(self) -> Grant: ...


class GrantSource(Protocol):
    """How a shard reaches the keeper: in this process (tests) or through Ray."""

    def report(self, shard: int, taken: dict[str, int]) -> dict[str, int]: ...

    def ask(self, shard: int, coupon: str, seen: int, need: int, want: int) -> Pending: ...

    def settle(self, shard: int, totals: dict[str, int]) -> None: ...


class _Answered:
    def __init__(self, grant: Grant) -> None:
        self.grant = grant

    def done(self) -> bool:
        return True

    def result(self) -> Grant:
        return self.grant


class LocalGrants:
    """A keeper in the shard's own process: a single shard driven without Ray (tests)."""

    def __init__(self, grants: Grants) -> None:
        self.grants = grants

    def report(self, shard: int, taken: dict[str, int]) -> dict[str, int]:
        return self.grants.report(shard, taken)

    def ask(self, shard: int, coupon: str, seen: int, need: int, want: int) -> Pending:
        return _Answered(self.grants.grant(shard, coupon, seen, need, want))

    def settle(self, shard: int, totals: dict[str, int]) -> None:
        self.grants.settle(shard, totals)


class _InFlight:
    def __init__(self, reference: Any) -> None:
        self.reference = reference

    def done(self) -> bool:
        ready, _ = ray.wait([self.reference], timeout=0)
        return bool(ready)

    def result(self) -> Grant:
        return _reached(lambda: ray.get(self.reference))


class RayGrants:
    """The keeper actor, from a shard: asks leave at once and are collected when needed."""

    def __init__(self, keeper: Any) -> None:
        self.keeper = keeper

    def report(self, shard: int, taken: dict[str, int]) -> dict[str, int]:
        return _reached(lambda: ray.get(self.keeper.report.remote(shard, taken)))

    def ask(self, shard: int, coupon: str, seen: int, need: int, want: int) -> Pending:
        return _InFlight(self.keeper.grant.remote(shard, coupon, seen, need, want))

    def settle(self, shard: int, totals: dict[str, int]) -> None:
        _reached(lambda: ray.get(self.keeper.settle.remote(shard, totals)))


def _reached(call: Callable[[], Any]) -> Any:
    """A keeper that cannot be reached makes the call retryable (UNAVAILABLE), never a guess."""
    try:
        return call()
    except (ray.exceptions.RayError, OSError) as error:
        raise ShardUnavailableError(f"the coupon grant keeper did not answer ({type(error).__name__}); "
                                    f"nothing was applied: send again shortly") from error
