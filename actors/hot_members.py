"""A shard's members in memory: all of them (the default), or a bounded hot set over LMDB.

Bounded, a member not in memory is read from LMDB when the engine asks for it, and the least
recently used leave memory only in `settle`, which the shard calls between writes: never while a
write is open, so a member changed by a batch not yet committed is never dropped (memory would
then run behind the batch), and a failed write reloads what it touched from LMDB as before.

The engine sees a mapping (engine/book.py): `get`, `[]`, `in`, assignment and `pop`; iterating
lists every member's id, stored or new, in id order."""

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, MutableMapping, ValuesView

from engine.members import Member
from engine.types import Day, MemberId
from storage.shard_store import ShardStore

__all__ = ["HotMembers"]

Lots = tuple[tuple[Day, int], ...]


class HotMembers(MutableMapping[MemberId, Member]):
    """`capacity` 0 keeps every member (each is loaded at start); N > 0 keeps at most N between
    writes. Bounded, it also keeps the points every member holds per expiry day (`liability`),
    from each member's lots as last committed, since it cannot sum members it does not hold."""

    def __init__(self, store: ShardStore, capacity: int = 0,
                 on_leave: Callable[[MemberId], None] | None = None) -> None:
        self.store = store
        self.capacity = capacity
        self.on_leave = on_leave
        """Told each member that leaves memory, so nothing else keeps it alive (window sums)."""
        self._hot: dict[MemberId, Member] = OrderedDict() if capacity > 0 else {}
        self._fresh: set[MemberId] = set()
        """Members created since the last commit: in memory only."""
        self._lots: dict[MemberId, Lots] = {}
        """Bounded: each member's lots as committed, for `liability` to move by the difference."""
        self.liability: dict[Day, int] = {}
        """Bounded: spendable points of every member (cold too) by the day they expire."""
        self.loads = 0
        """Members read from LMDB since start (a cache miss each)."""

    @property
    def bounded(self) -> bool:
        return self.capacity > 0

    def mapping(self) -> MutableMapping[MemberId, Member]:
        """What the engine is given: unbounded, the dict of members itself (nothing between the
        engine and its members, as when every shard held a plain dict); bounded, this."""
        return self if self.bounded else self._hot

    # -- start-up ---------------------------------------------------------------------------

    def start(self, stored: Iterable[Member]) -> Iterator[Member]:
        """Every stored member, once, for the shard to count at start; unbounded they are
        kept, bounded they are only counted here (their lots to `liability`)."""
        for member in stored:
            if self.bounded:
                self._add_lots(_lots_of(member), 1)
            else:
                self._hot[member.member_id] = member
            yield member

    # -- the mapping --------------------------------------------------------------------------

    def get(self, member_id: MemberId, default: Member | None = None) -> Member | None:  # type: ignore[override]
        member = self._hot.get(member_id)
        if member is not None:
            if self.bounded:
                self._hot.move_to_end(member_id)  # type: ignore[attr-defined]
            return member
        if not self.bounded:
            return default  # every member is here: one not here does not exist
        member = self.store.member(member_id)
        if member is None:
            return default
        self.loads += 1
        self._hot[member_id] = member
        self._lots[member_id] = _lots_of(member)
        return member

    def peek(self, member_id: MemberId) -> Member | None:
        """The member if in memory now, without reading LMDB or moving it in the order."""
        return self._hot.get(member_id)

    def __getitem__(self, member_id: MemberId) -> Member:
        member = self.get(member_id)
        if member is None:
            raise KeyError(member_id)
        return member

    def __contains__(self, member_id: object) -> bool:
        return isinstance(member_id, str) and self.get(member_id) is not None

    def __setitem__(self, member_id: MemberId, member: Member) -> None:
        """The engine assigns only a member it has just created (after `get` found none)."""
        if member_id not in self._hot:
            self._fresh.add(member_id)
        self._hot[member_id] = member

    def __delitem__(self, member_id: MemberId) -> None:
        """The engine removes only a member it created in the same write (engine/scoring.py)."""
        del self._hot[member_id]
        self._fresh.discard(member_id)
        self._lots.pop(member_id, None)

    def __iter__(self) -> Iterator[MemberId]:
        if not self.bounded:
            return iter(list(self._hot))
        return iter(sorted(set(self.store.member_ids()) | self._fresh))

    def values(self) -> ValuesView[Member]:  # type: ignore[override]
        """Unbounded: the members in memory, which are all of them, at dict speed."""
        return self._hot.values() if not self.bounded else super().values()

    def __len__(self) -> int:
        return len(self._hot) if not self.bounded else self.store.count("members") + len(self._fresh)

    # -- between writes -------------------------------------------------------------------------

    def committed(self, members: Iterable[Member]) -> None:
        """These members' new state is being committed: no longer fresh, and their lots count as
        they are now (a failed commit puts each back with `restore`)."""
        self._fresh.clear()
        if not self.bounded:
            return
        for member in members:
            lots = _lots_of(member)
            self._add_lots(self._lots.get(member.member_id, ()), -1)
            self._add_lots(lots, 1)
            self._lots[member.member_id] = lots

    def restore(self, member_id: MemberId, stored: Member | None) -> None:
        """After a failed write: the member as LMDB has it (None: it was never committed), and
        its lots in `liability` as committed (`committed` may have counted them before the
        commit failed)."""
        self._fresh.discard(member_id)
        if self.bounded:
            self._add_lots(self._lots.pop(member_id, ()), -1)
            if stored is not None:
                self._lots[member_id] = _lots_of(stored)
                self._add_lots(self._lots[member_id], 1)
        if stored is None:
            self._hot.pop(member_id, None)
        else:
            self._hot[member_id] = stored

    def settle(self) -> int:
        """Between writes only: drop the least recently used beyond the capacity; returns how many."""
        if not self.bounded:
            return 0
        dropped = 0
        while len(self._hot) > self.capacity:
            member_id, _ = self._hot.popitem(last=False)  # type: ignore[call-arg]
            self._lots.pop(member_id, None)
            if self.on_leave is not None:
                self.on_leave(member_id)
            dropped += 1
        return dropped

    def arrive(self, member: Member) -> None:
        """A stored member moved here from another shard (actors/shard_moves.py)."""
        if self.bounded:
            self._add_lots(_lots_of(member), 1)  # read from LMDB when first needed
        else:
            self._hot[member.member_id] = member

    def depart(self, member: Member) -> None:
        """A stored member (as committed) moved to another shard."""
        self._hot.pop(member.member_id, None)
        if self.bounded:
            self._lots.pop(member.member_id, None)
            self._add_lots(_lots_of(member), -1)

    def held(self) -> int:
        """Members in memory now."""
        return len(self._hot)

    def _add_lots(self, lots: Lots, sign: int) -> None:
        totals = self.liability
        for expires, amount in lots:
            left = totals.get(expires, 0) + sign * amount
            if left:
                totals[expires] = left
            else:
                del totals[expires]


def _lots_of(member: Member) -> Lots:
    return tuple((lot.expires, lot.amount) for lot in member.lots)
