"""A shard's members in memory: all of them (the default), or a bounded hot set over LMDB.

Bounded, a member not in memory is read from LMDB when the engine asks for it, and the least
recently used leave memory only in `settle`, which the shard calls between writes, so a member
changed by a batch not yet committed is never dropped (memory would then run behind the batch), and
a failed write reloads what it touched from LMDB as before. The one exception is a midnight step,
visited in parts within its one write: a part's members are put into the write, then may leave
memory before the next part (actors/shard.py `_visit_parts`); the write reads a member it already
holds as put, not as stored, and a failed step puts the shard's totals back.

The engine sees a mapping (engine/book.py): `get`, `[]`, `in`, assignment and `pop`; iterating
lists every member's id, stored or new, in id order."""

import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, MutableMapping, ValuesView

import msgspec

from engine.members import Member
from engine.types import Day, MemberId
from storage.shard_store import ShardStore

__all__ = ["HotMembers"]

Reader = Callable[[MemberId], Member | None]
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(list[tuple[int, int]]).decode
_NO_LOTS = _encode([])
_UNCHANGED = {False: (_NO_LOTS, False), True: (_NO_LOTS, True)}
"""What `_was` holds for a member without lots: shared, not a tuple and bytes per member."""


class HotMembers(MutableMapping[MemberId, Member]):
    """`capacity` 0 keeps every member (each is loaded at start); N > 0 keeps at most N between
    writes. Bounded, it also keeps the points every member holds per expiry day (`liability`),
    from each member's lots as last committed, since it cannot sum members it does not hold."""

    def __init__(self, store: ShardStore, capacity: int = 0,
                 on_leave: Callable[[list[MemberId]], None] | None = None) -> None:
        self.store = store
        self.capacity = capacity
        self.on_leave = on_leave
        """Told the members that leave memory, so nothing else keeps them alive (window sums)."""
        self._hot: dict[MemberId, Member] = OrderedDict() if capacity > 0 else {}
        self._fresh: set[MemberId] = set()
        """Members created since the last commit: in memory only."""
        self._was: dict[MemberId, tuple[bytes, bool]] = {}
        """Bounded, per member in memory, as last committed: its lots (MessagePack, compared and
        decoded only when they changed) for `liability` to move by the difference, and whether it
        was touched (then the wake-up index holds its day-0 entry already)."""
        self._read: Reader = store.member
        """Where a member not in memory is read: the store, or the open write's own transaction."""
        self.liability: dict[Day, int] = {}
        """Bounded: spendable points of every member (cold too) by the day they expire."""
        self.loads = 0
        """Members read from LMDB since start (a cache miss each)."""
        self.passing = False
        """Set while a job walks members (a midnight run, re-evaluation): those it reads from LMDB
        go first when memory is settled, and those it finds in memory keep their place, so a walk
        over everyone does not push out the hot."""

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
                self._add_lots(_encode(member.lots), 1)
            else:
                _share_strings(member)
                self._hot[member.member_id] = member
            yield member

    # -- the mapping --------------------------------------------------------------------------

    def get(self, member_id: MemberId, default: Member | None = None) -> Member | None:  # type: ignore[override]
        member = self._hot.get(member_id)
        if member is not None:
            if self.capacity and not self.passing:  # a walk is no use: it leaves the order as it was
                self._hot.move_to_end(member_id)  # type: ignore[attr-defined]
            return member
        if not self.capacity:
            return default  # every member is here: one not here does not exist
        member = self._read(member_id)
        if member is None:
            return default
        self._take(member)
        return member

    def bring(self, member_ids: list[MemberId], read: Callable[[list[MemberId]], list[Member]],
              unindexed: bool = False) -> None:
        """Bounded: read those of these members not in memory with `read`, all at once (a write's
        batch reader: one call, keys in order), before the engine asks for them one by one.
        `unindexed`: a midnight run dropped their wake-up entries (see `unindexed`)."""
        if self.bounded:
            hot = self._hot
            for member in read([m for m in member_ids if m not in hot]):
                self._take(member)
            if unindexed:
                self.unindexed(member_ids)

    def _take(self, member: Member) -> None:
        """A member just read from LMDB."""
        self.loads += 1
        member_id = member.member_id  # the key is the member's own id, not a second copy of it
        self._hot[member_id] = member
        if self.passing:  # goes first: not worth sharing its strings
            self._hot.move_to_end(member_id, last=False)  # type: ignore[attr-defined]
        else:
            _share_strings(member)
        self._was[member_id] = _was_of(member)

    def read_from(self, reader: Reader | None) -> None:
        """Read members not in memory with `reader` (a write's: no read transaction of their own
        per miss, and the same snapshot as the write); None: the store's, between writes."""
        self._read = reader or self.store.member

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
        self._was.pop(member_id, None)

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

    def committed(self, members: Iterable[Member]) -> list[Member]:
        """These members' new state is being committed: no longer fresh, and their lots count as
        they are now (a failed commit puts each back with `restore`). Returns those whose wake-up
        index entries must be written: all but the ones touched before and still (day 0 already)."""
        self._fresh.clear()
        if not self.bounded:
            return list(members)
        moved = []
        was = self._was
        for member in members:
            member_id = member.member_id
            lots = _encode(member.lots) if member.lots else _NO_LOTS
            before = was.get(member_id)
            if before is None:
                self._add_lots(lots, 1)
            elif before[0] != lots:
                self._add_lots(before[0], -1)
                self._add_lots(lots, 1)
            if before is None or not (before[1] and member.touched):
                moved.append(member)
            was[member_id] = (lots, member.touched) if lots is not _NO_LOTS else _UNCHANGED[member.touched]
        return moved

    def unindexed(self, member_ids: Iterable[MemberId]) -> None:
        """A midnight run dropped these members' wake-up entries: the next commit of each indexes it
        again, touched or not."""
        for member_id in member_ids:
            before = self._was.get(member_id)
            if before is not None:
                self._was[member_id] = (before[0], False)

    def restore(self, member_id: MemberId, stored: Member | None) -> None:
        """After a failed write: the member as LMDB has it (None: it was never committed), and
        its lots in `liability` as committed (`committed` may have counted them before the
        commit failed)."""
        self._fresh.discard(member_id)
        if self.bounded:
            before = self._was.pop(member_id, None)
            if before is not None:
                self._add_lots(before[0], -1)
            if stored is not None:
                self._was[member_id] = _was_of(stored)
                self._add_lots(self._was[member_id][0], 1)
        if stored is None:
            self._hot.pop(member_id, None)
        else:
            self._hot[member_id] = stored

    def settle(self) -> int:
        """Between writes only: drop the least recently used beyond the capacity; returns how many."""
        if not self.bounded:
            return 0
        over = len(self._hot) - self.capacity
        if over <= 0:
            return 0
        popitem, was = self._hot.popitem, self._was  # type: ignore[attr-defined]
        left = [popitem(last=False)[0] for _ in range(over)]
        for member_id in left:
            was.pop(member_id, None)
        if self.on_leave is not None:
            self.on_leave(left)
        return over

    def arrive(self, member: Member) -> None:
        """A stored member moved here from another shard (actors/shard_moves.py)."""
        if self.bounded:
            self._add_lots(_encode(member.lots), 1)  # read from LMDB when first needed
        else:
            self._hot[member.member_id] = member

    def depart(self, member: Member) -> None:
        """A stored member (as committed) moved to another shard."""
        self._hot.pop(member.member_id, None)
        if self.bounded:
            self._was.pop(member.member_id, None)
            self._add_lots(_encode(member.lots), -1)

    def held(self) -> int:
        """Members in memory now."""
        return len(self._hot)

    def _add_lots(self, lots: bytes, sign: int) -> None:
        if lots == _NO_LOTS:
            return
        totals = self.liability
        for expires, amount in _decode(lots):
            left = totals.get(expires, 0) + sign * amount
            if left:
                totals[expires] = left
            else:
                del totals[expires]


def _was_of(member: Member) -> tuple[bytes, bool]:
    return (_encode(member.lots), member.touched) if member.lots else _UNCHANGED[member.touched]


def _share_strings(member: Member) -> None:
    """A member read from LMDB holds the same few values of status and profile as thousands of
    others (a status, a channel, a birthday, a campaign): one shared string each instead of a
    copy per member held, about 50 bytes apiece. Strings are immutable: nothing else changes."""
    intern = sys.intern
    member.status = intern(member.status)
    profile = member.profile
    if profile.birthday:
        profile.birthday = intern(profile.birthday)
    if profile.channel:
        profile.channel = intern(profile.channel)
    if profile.source:
        profile.source = intern(profile.source)
    if profile.campaign:
        profile.campaign = intern(profile.campaign)
    if profile.content:
        profile.content = intern(profile.content)
