"""Which transactions a member made on a day: what the anomaly report lists for a flagged day."""

from typing import Protocol

from engine.types import Day, MemberId, TxnId

__all__ = ["History", "RecentHistory"]


class History(Protocol):
    """Contract: `remember` is told every purchase and event that was scored (when the programme
    has an anomaly threshold); `transactions_on` answers for days not yet forgotten."""

    def remember(self, member_id: MemberId, day: Day, txn_id: TxnId) -> None: ...

    def transactions_on(self, member_id: MemberId, day: Day) -> list[TxnId]: ...

    def forget_before(self, day: Day) -> None: ...


class RecentHistory:
    """In memory, for a replay: the last days' transaction ids per member. Kept out of member
    records, which would otherwise grow (and be rewritten) with every transaction of the day."""

    def __init__(self) -> None:
        self._days: dict[Day, dict[MemberId, list[TxnId]]] = {}

    def remember(self, member_id: MemberId, day: Day, txn_id: TxnId) -> None:
        members = self._days.get(day)  # not setdefault: its default would be a new dict and list per call
        if members is None:
            members = self._days[day] = {}
        ids = members.get(member_id)
        if ids is None:
            members[member_id] = [txn_id]
        else:
            ids.append(txn_id)

    def transactions_on(self, member_id: MemberId, day: Day) -> list[TxnId]:
        return list(self._days.get(day, {}).get(member_id, ()))

    def forget_before(self, day: Day) -> None:
        for old in [d for d in self._days if d < day]:
            del self._days[old]
