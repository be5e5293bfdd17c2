"""A shard's side of moving virtual shards (actors/resharding.py drives the move): hand over the
records of some virtual shards, take them in, let them go; each a single commit.

What the shard keeps in memory about its members follows each commit: members held, members per
tag, stored value, coupon instances taken, points by expiry day, midnight wake-ups. A commit that
fails puts those back. Coupon grants follow the instances: the destination raises its grant to
what its members now hold before the source gives back what its members no longer hold, so the
units granted over all shards never fall below the instances issued.

From its export on, the source refuses writes for the members of what it exports (`Shard.away`):
every gateway holds them during a move, so one arriving is a stale route's, and applying it would
lose it with the source's copy. An undone move gives them back (`keep`)."""

import msgspec

from actors.shard import Shard
from engine.errors import ReshardBusyError
from engine.members import Member
from engine.midnight import schedule
from storage import vshard_move
from storage.vshard_move import VShardRecords

__all__ = ["export", "keep", "let_go", "take_in"]

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(VShardRecords).decode
EVERY_DAY = 1 << 31
"""Past any business day: `forget_before` it forgets every day's transactions read for anomalies."""


def export(shard: Shard, vshards: list[int], virtual_shards: int) -> bytes:
    """The records of those virtual shards as they are committed now, as bytes (Ray moves bytes
    without a copy through its object store)."""
    _not_during_a_job(shard)
    shard.away.add(vshards, virtual_shards)
    return _encode(vshard_move.export(shard.store, frozenset(vshards), virtual_shards))


def keep(shard: Shard, vshards: list[int]) -> None:
    """A move of these virtual shards was undone: they are this shard's again, writes included."""
    shard.away.discard(vshards)


def take_in(shard: Shard, data: bytes, virtual_shards: int) -> int:
    """Write what another shard exported, in one commit; returns how many members came. A copy
    of those virtual shards left here by a move that did not finish goes first (its own commit)."""
    records = _decode(data)
    let_go(shard, records.vshards, virtual_shards)
    _commit(shard, records.members, +1, lambda writer: vshard_move.put(writer, records))
    shard.away.discard(records.vshards)  # moved away once, back now
    shard.book.history.forget_before(EVERY_DAY)  # its days were read without these members
    if shard.inventory is not None:  # the instances they hold count against this shard's grant
        shard.inventory.granted.update(shard.inventory.source.report(shard.config.shard, shard.book.stock.taken))
    return len(records.members)


def let_go(shard: Shard, vshards: list[int], virtual_shards: int) -> int:
    """Delete every record of those virtual shards, in one commit; returns how many members went."""
    _not_during_a_job(shard)
    wanted = frozenset(vshards)
    members = vshard_move.members_of(shard.store, wanted, virtual_shards)
    if not members and not vshard_move.has_rejections(shard.store, wanted, virtual_shards):
        return 0  # (a batch's rejections of members never enrolled, `unknown_member`, go too)
    _commit(shard, members, -1, lambda writer: vshard_move.delete(writer, wanted, virtual_shards))
    if shard.inventory is not None:  # units of the instances that left go back to the keeper
        shard.inventory.settle_all()
    return len(members)


def _commit(shard: Shard, members: list[Member], sign: int, write: object) -> None:
    """Count the members in (+1) or out (-1) of memory, then commit `write`; a failed commit
    counts them back."""
    _count(shard, members, sign)
    writer = shard.store.writer()
    try:
        write(writer)  # type: ignore[operator]
        if shard.members.bounded:  # the totals record follows the commit (actors/member_index.py)
            shard._index(writer, [])
        writer.commit()
    except BaseException:
        writer.abort()
        _count(shard, members, -sign)
        raise


def _count(shard: Shard, members: list[Member], sign: int) -> None:
    book = shard.book
    bounded = shard.members.bounded
    taken = book.stock.taken
    for member in members:
        tags = member.tags + member.manual_tags
        if tags:
            book.count_tags([], tags) if sign > 0 else book.count_tags(tags, [])
        shard.stored_value[0] += sign * member.stored_value
        shard.stored_value[1] += sign * member.bonus_value
        for instance in member.coupons:
            left = taken.get(instance.coupon_id, 0) + sign
            if left:
                taken[instance.coupon_id] = left
            else:
                taken.pop(instance.coupon_id, None)
        if sign > 0:
            shard.members.arrive(member)
            if not bounded:  # bounded, the wake-up index moved with the records
                schedule(book, member)
                if member.touched:
                    book.awake.add(member.member_id)
        else:
            shard.members.depart(member)
            book.programme.ladder.sums.forget(member.member_id)
            book.awake.discard(member.member_id)
            for woken in book.wakeups.values():
                woken.discard(member.member_id)


def _not_during_a_job(shard: Shard) -> None:
    """A midnight run or a re-evaluation lists its members when it starts: members that came or
    went meanwhile would be missed or visited where they are not (the coordinator waits for jobs)."""
    if shard.job is not None:
        raise ReshardBusyError(f"shard {shard.config.shard} is running its {shard.job.kind} job; "
                               f"virtual shards move between jobs")
