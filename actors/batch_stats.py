"""What one batch did, counted once per batch in the shard, so metrics cost nothing per transaction."""

from collections import Counter

import msgspec

from engine.ledger import LedgerEntry
from engine.transactions import Transaction, TxnResult
from engine.types import KINDS

__all__ = ["BatchStats", "count_batch"]


class BatchStats(msgspec.Struct, array_like=True, gc=False):
    outcomes: dict[str, int]
    """"kind outcome reason" -> transactions."""
    points_awarded: int = 0
    points_reversed: int = 0
    points_expired: int = 0
    growth_awarded: int = 0
    anomalies: int = 0
    tier_changes: dict[str, int] = {}
    """"from to" tier positions -> members."""
    apply_seconds: float = 0.0
    commit_seconds: float = 0.0
    out_of_stock: dict[str, int] = {}
    """Coupon id -> instances refused for want of inventory (a coupon_issue or a trigger)."""


def count_batch(txns: list[Transaction], results: list[TxnResult], ledger: list[LedgerEntry]) -> BatchStats:
    outcomes = Counter(f"{t.kind if t.kind in KINDS else 'unknown'} {r.outcome} {r.reason}"
                       for t, r in zip(txns, results, strict=True))
    stats = BatchStats(dict(outcomes))
    count_ledger(stats, ledger)
    return stats


def count_ledger(stats: BatchStats, ledger: list[LedgerEntry]) -> None:
    moves: Counter[str] = Counter()
    for entry in ledger:
        kind = entry.kind
        if kind in ("earn", "event", "adjust", "bonus") and entry.points + entry.pending > 0:
            stats.points_awarded += entry.points + entry.pending
        elif kind == "reverse":
            stats.points_reversed -= entry.points + entry.pending
        elif kind == "expire":
            stats.points_expired -= entry.points + entry.pending
        elif kind == "status" and entry.status == "abnormal":
            stats.anomalies += 1
        elif kind == "tier" and entry.tier_from != entry.tier_to:
            moves[f"{entry.tier_from} {entry.tier_to}"] += 1
        if entry.growth > 0:
            stats.growth_awarded += entry.growth
    stats.tier_changes = dict(moves)
