"""Which transactions a member made on a day: what the anomaly report lists for a flagged day."""

from typing import Protocol

from engine.types import Day, MemberId, TxnId

__all__ = ["History", "RecentHistory", "remember_in"]


class History(Protocol):
    """Contract: `remember` is told every purchase and event that was scored (when the programme
    has an anomaly threshold), unless `told` is False: a history that reads them where they are
    kept anyway (a shard's transaction index) is not called for each; `transactions_on` answers
    for days not yet forgotten."""

    told: bool

    def remember(self, member_id: MemberId, day: Day, txn_id: TxnId) -> None: ...

    def transactions_on(self, member_id: MemberId, day: Day) -> list[TxnId]: ...

    def forget_before(self, day: Day) -> None: ...


class RecentHistory:
    """In memory, for a replay: the last days' transaction ids per member. Kept out of member
    records, which would otherwise grow (and be rewritten) with every transaction of the day.

    A day's ids are kept as they come, member and id in turn, and gathered per member only when
    the day is first asked about (a midnight's report, for the few members it flags): finding the
    member's list at each transaction was a lookup in a dict of every member of the day, a cache
    miss nearly every time (bench/RESULTS.md, "The anomaly history kept as it comes")."""

    def __init__(self) -> None:
        self._arrived: dict[Day, list[str]] = {}
        """Per day not yet asked about: member id, transaction id, member id, ..."""
        self._days: dict[Day, dict[MemberId, list[TxnId]]] = {}
        """Per day asked about: the ids per member, kept current from then on."""

    told = True

    def remember(self, member_id: MemberId, day: Day, txn_id: TxnId) -> None:
        arrived = self._arrived.get(day)
        if arrived is not None:
            arrived.append(member_id)
            arrived.append(txn_id)
        elif day in self._days:
            _add(self._days[day], member_id, txn_id)
        else:
            self._arrived[day] = [member_id, txn_id]

    def transactions_on(self, member_id: MemberId, day: Day) -> list[TxnId]:
        return list(self._members_on(day).get(member_id, ()))

    def forget_before(self, day: Day) -> None:
        for kept in (self._arrived, self._days):
            for old in [d for d in kept if d < day]:
                del kept[old]

    def _members_on(self, day: Day) -> dict[MemberId, list[TxnId]]:
        """The day's ids per member, gathered now if they were not; a day with none stays unasked."""
        members = self._days.get(day)
        if members is None:
            arrived = self._arrived.pop(day, None)
            if arrived is None:
                return {}
            members = self._days[day] = {}
            for at in range(0, len(arrived), 2):
                _add(members, arrived[at], arrived[at + 1])
        return members


def remember_in(history: History, member_id: MemberId, day: Day, txn_id: TxnId) -> None:
    """`history.remember(...)`. The book's history is a protocol (a shard's is storage's), so
    compiled, the method is called by name; a RecentHistory (replay's) is told by a C call here,
    and a history not `told` is not called (a shard's: a Python call per transaction, for nothing)."""
    if type(history) is RecentHistory:
        recent = history  # a RecentHistory, as history.pxd types it
        recent.remember(member_id, day, txn_id)
    elif history.told:
        history.remember(member_id, day, txn_id)


def _add(members: dict[MemberId, list[TxnId]], member_id: MemberId, txn_id: TxnId) -> None:
    ids = members.get(member_id)  # not setdefault: its default would be a new list per call
    if ids is None:
        members[member_id] = [txn_id]
    else:
        ids.append(txn_id)
