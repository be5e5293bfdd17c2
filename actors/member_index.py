"""What a shard with a bounded hot set keeps in LMDB so that it neither starts nor runs its
midnight by reading every member: totals over all members in one record, and the wake-up index.

Both are written in the same commit as the members they follow. The totals record is stamped
with its commit: a commit made any other way (a shard keeping every member in memory, an older
patron, a restored checkpoint) leaves it stale, and the next bounded start reads every member
once to write both again (`Shard._load`)."""

from collections.abc import Iterable

import msgspec

from engine.book import Book
from engine.members import Member
from engine.midnight import wake_day
from engine.types import Day

__all__ = ["TOTALS_KEY", "MemberTotals", "wakeups_of"]

TOTALS_KEY = "member_totals"


class MemberTotals(msgspec.Struct, array_like=True):
    tags: dict[str, int]
    """Members per tag."""
    stored_value: int
    bonus_value: int
    taken: dict[str, int]
    """Coupon instances members hold, per coupon: the inventory they took."""
    liability: dict[Day, int]
    """Spendable points by the day they expire."""


def wakeups_of(book: Book, members: Iterable[Member], planned: dict[str, Day] | None = None
               ) -> list[tuple[Day, str]]:
    """Wake-up index entries for members as they are now: day 0, the next run whatever its
    date, for a member changed since its last run (that run plans its next one: it comes before
    any other, so working it out at every batch would be wasted), else the next run with work
    for the member, as a restart would schedule it. A run removes the entries it visited; one
    left from an earlier plan only makes a run look at a member with nothing to do. `planned`:
    next runs already worked out for members as they are now (a midnight run's visit)."""
    entries = []
    planned = planned or {}
    for member in members:
        day = 0 if member.touched else planned.get(member.member_id, -1)
        if day < 0:
            day = wake_day(book, member)
        if day or member.touched:
            entries.append((day, member.member_id))
    return entries
