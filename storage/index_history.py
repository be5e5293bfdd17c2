"""The anomaly report's "transactions of that day", read from a shard's transaction index."""

from engine.anomaly import counted_in_day
from engine.transactions import TxnRecord
from engine.types import EVENT, PURCHASE, RECHARGE, Day, MemberId, TxnId
from storage.shard_store import ShardStore

__all__ = ["IndexHistory"]


class IndexHistory:
    """The index already holds every transaction with its day, so nothing is remembered as
    transactions arrive: a flagged day is read once, at the midnight run, and then forgotten."""

    def __init__(self, store: ShardStore) -> None:
        self.store = store
        self._days: dict[Day, dict[MemberId, list[TxnId]]] = {}

    told = False
    """The engine does not call `remember`: the transaction index has what it would be told."""

    def remember(self, member_id: MemberId, day: Day, txn_id: TxnId) -> None:
        """Nothing to do (and not called: `told`)."""

    def transactions_on(self, member_id: MemberId, day: Day) -> list[TxnId]:
        by_member = self._days.get(day)
        if by_member is None:
            by_member = self._days[day] = self.store.transactions_by_member(day, remembered)
        return list(by_member.get(member_id, ()))

    def forget_before(self, day: Day) -> None:
        self._days = {d: members for d, members in self._days.items() if d >= day}


def remembered(record: TxnRecord) -> bool:
    """What the engine tells its history (engine/scoring.py): a purchase, event or recharge counted in
    the day's sum for the threshold: one that gave points, or whose points were blocked."""
    return record.kind in (PURCHASE, EVENT, RECHARGE) and counted_in_day(record.points, record.reason)
