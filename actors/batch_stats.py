"""What one batch did, counted once per batch in the shard, so metrics cost nothing per transaction."""

import itertools
from collections import Counter
from collections.abc import Sequence
from itertools import compress, repeat
from operator import attrgetter, eq

import msgspec

from engine.ledger import LedgerEntry
from engine.notices import ANOMALY_FLAGGED, Notice
from engine.spending.coupons import coupon_id_of
from engine.transactions import Transaction, TxnResult
from engine.types import COUPON_ISSUE, KINDS

__all__ = ["COMPILED_COUNTS", "BatchStats", "Counted", "count_batch", "count_ledger", "count_ledger_pure",
           "count_outcomes_pure", "kinds_and_coupons", "rejected_and_twins", "rejected_and_twins_pure", "tier_name"]

try:
    from actors.batch_counter import count_ledger_common as _common_compiled
    from actors.batch_counter import count_outcomes as _outcomes_compiled
    from actors.batch_counter import rejected_and_twins as _twins_compiled
except ImportError as error:  # never silent: every start says so (actors/batch_wire.py)
    _common_compiled = _outcomes_compiled = _twins_compiled = None
    MISSING = f"{type(error).__name__}: {error}"
else:
    MISSING = ""
COMPILED_COUNTS = _common_compiled is not None
"""Whether a batch's statistics are counted by compiled code (actors/batch_counter.pyx) or by the
pure code here, their specification."""

OUT_OF_STOCK = "out_of_stock"
_COUPON_EVENTS = {"coupon_issued": "issued", "coupon_used": "used", "coupon_expired": "expired"}
"""Ledger kinds counted per coupon, and the event they count as."""
_OUTCOME, _REASON = attrgetter("outcome"), attrgetter("reason")
_TXN_ID = attrgetter("txn_id")


class BatchStats(msgspec.Struct, array_like=True, gc=False):
    outcomes: dict[str, int]
    """"kind outcome reason" -> transactions."""
    points_awarded: int = 0
    points_reversed: int = 0
    points_expired: int = 0
    growth_awarded: int = 0
    anomalies: int = 0
    tier_changes: dict[str, dict[str, int]] = {}
    """From tier -> to tier -> members, named by the shard with the ladder it moved them on (named
    later, a move committed just before a publish that reorders the tiers took the new names)."""
    apply_seconds: float = 0.0
    commit_seconds: float = 0.0
    points_redeemed: int = 0
    points_restored: int = 0
    """Points given back by refunds of redeems."""
    coupons: dict[str, int] = {}
    """"event coupon_id" -> instances; events: issued, used, expired, out_of_stock."""
    stored_value: int = 0
    bonus_value: int = 0
    """What the ledger entries changed in the stored value members hold: principal and bonus."""
    disk_write_seconds: float = 0.0
    """The part of `commit_seconds` in LMDB's own commit: its pages written and, strict, the disk's
    sync (the rows' encoding and puts are not in it)."""
    points_deducted: int = 0
    """Points taken by entries that award when positive (operators' negative adjustments above all),
    and held points an operator voided (so awarded − deducted − reversed − expired − redeemed +
    restored follows the balances, but for imports' opening balances and debts forgiven on 1 January)."""

    def add(self, other: "BatchStats") -> None:
        """Fold `other`'s counts into these (timings are not added: they belong to one commit)."""
        _add_counts(self.outcomes, other.outcomes)
        self.points_awarded += other.points_awarded
        self.points_reversed += other.points_reversed
        self.points_expired += other.points_expired
        self.growth_awarded += other.growth_awarded
        self.anomalies += other.anomalies
        self.tier_changes = _add_moves(self.tier_changes, other.tier_changes)
        self.points_redeemed += other.points_redeemed
        self.points_restored += other.points_restored
        self.points_deducted += other.points_deducted
        self.coupons = _add_counts(dict(self.coupons), other.coupons)
        self.stored_value += other.stored_value
        self.bonus_value += other.bonus_value

    def accepted(self) -> int:
        """Transactions accepted, from `outcomes` ("kind outcome reason": a kind and an outcome are
        words without a space), not from a pass over the results."""
        return sum(count for key, count in self.outcomes.items() if key.split(" ", 2)[1] == "accepted")

    def counts_nothing(self) -> bool:
        """No count above 0 (timings are not counts)."""
        return not (any(self.outcomes.values()) or self.points_awarded or self.points_reversed or self.points_expired
                    or self.growth_awarded or self.anomalies
                    or any(count for afters in self.tier_changes.values() for count in afters.values())
                    or self.points_redeemed or self.points_restored or any(self.coupons.values())
                    or self.stored_value or self.bonus_value or self.points_deducted)

    def since(self, before: "BatchStats") -> "BatchStats":
        """What these counts hold beyond `before`, counts these once were (timings are not kept)."""
        return BatchStats(
            _less(self.outcomes, before.outcomes), self.points_awarded - before.points_awarded,
            self.points_reversed - before.points_reversed, self.points_expired - before.points_expired,
            self.growth_awarded - before.growth_awarded, self.anomalies - before.anomalies,
            {tier: moved for tier, afters in self.tier_changes.items()
             if (moved := _less(afters, before.tier_changes.get(tier, {})))},
            points_redeemed=self.points_redeemed - before.points_redeemed,
            points_restored=self.points_restored - before.points_restored,
            coupons=_less(self.coupons, before.coupons), stored_value=self.stored_value - before.stored_value,
            bonus_value=self.bonus_value - before.bonus_value,
            points_deducted=self.points_deducted - before.points_deducted)


class Counted(msgspec.Struct, array_like=True, gc=False):
    """What a shard committed, in all, that its answers to batches do not carry: the counts of its
    other commits (midnight runs, enrollment, operators' changes, re-evaluation) and the events
    it wrote and pruned. Kept in its LMDB with each commit that adds to them, so a shard killed
    outright loses none: the coordinator records the difference from what it last saw."""

    stats: BatchStats = msgspec.field(default_factory=lambda: BatchStats({}))
    events: dict[str, int] = {}
    """Events written, by kind."""
    pruned: int = 0
    """Events pruned past their retention."""
    commits: int = 0
    """Commits that added to these: fewer than last seen means the shard's data went back (a restore)."""

    def since(self, before: "Counted") -> "Counted":
        """What these counts hold beyond `before`, counts these once were."""
        return Counted(self.stats.since(before.stats), _less(self.events, before.events), self.pruned - before.pruned,
                       self.commits - before.commits)


def count_batch(kinds: list[str], results: list[TxnResult], ledger: list[LedgerEntry], tiers: Sequence[str] = (),
                notices: Sequence[Notice] = (), coupon_ids: dict[int, str] | None = None) -> BatchStats:
    """`kinds`: each transaction's kind, in order (a shard lets its transactions go as it scores
    them, actors/shard.py); `tiers`: the names of the ladder the batch was scored on; `notices`: the
    events its scoring made, whose `anomaly_flagged` are the threshold's crossings (one a member
    and local day, also by a member flagged already: its status entry is written at its first
    crossing only); `coupon_ids`: the coupon each coupon_issue transaction asked for, by its place."""
    outcomes = None
    if _outcomes_compiled is not None and type(kinds) is list and type(results) is list:
        outcomes = _outcomes_compiled(kinds, results)
    if outcomes is None:
        outcomes = count_outcomes_pure(kinds, results)
    stats = BatchStats(outcomes)
    count_ledger(stats, ledger, tiers)
    stats.anomalies = sum(1 for notice in notices if notice.kind == ANOMALY_FLAGGED)
    if f"{COUPON_ISSUE} rejected {OUT_OF_STOCK}" in outcomes:  # refused before any ledger entry: count it here
        if coupon_ids is None:
            raise ValueError("count_batch: out_of_stock coupon_issue results need the transactions' coupon_ids")
        refused = Counter(f"{OUT_OF_STOCK} {coupon_ids.get(at, '')}"
                          for at, (kind, r) in enumerate(zip(kinds, results, strict=True))
                          if kind == COUPON_ISSUE and r.reason == OUT_OF_STOCK)
        stats.coupons = _add_counts(dict(stats.coupons), refused)
    return stats


def kinds_and_coupons(txns: list[Transaction]) -> tuple[list[str], dict[int, str]]:
    """What `count_batch` reads of a batch's transactions, taken before they are let go."""
    kinds = [txn.kind for txn in txns]
    coupons = ({at: txn.coupon_id for at, txn in enumerate(txns) if txn.kind == COUPON_ISSUE}
               if COUPON_ISSUE in kinds else {})
    return kinds, coupons


def count_outcomes_pure(kinds: list[str], results: list[TxnResult]) -> dict[str, int]:
    """"kind outcome reason" -> transactions (the compiled `count_outcomes` gives the same dict, in
    the same order). Counted as (kind, outcome, reason) by Counter's C loop, named once per
    distinct triple."""
    seen = Counter(zip(kinds, map(_OUTCOME, results), map(_REASON, results), strict=True))
    outcomes: dict[str, int] = {}
    for (kind, outcome, reason), count in seen.items():
        key = f"{kind if kind in KINDS else 'unknown'} {outcome} {reason}"
        outcomes[key] = outcomes.get(key, 0) + count
    return outcomes


def count_ledger(stats: BatchStats, ledger: list[LedgerEntry], tiers: Sequence[str] = ()) -> None:
    """Add what the ledger entries did to `stats` (it may already hold counts): all but tier moves
    by the compiled code when it is built, those by the pure code. `tiers`:
    the names of the ladder the entries were written with."""
    if _common_compiled is not None and type(ledger) is list:
        coupons: dict[str, int] = {}
        ledger = _common_compiled(stats, ledger, coupons)
        if coupons:  # as count_ledger_pure adds its own, which has none of these entries left
            stats.coupons = _add_counts(dict(stats.coupons), coupons)
    if ledger:
        count_ledger_pure(stats, ledger, tiers)


def count_ledger_pure(stats: BatchStats, ledger: list[LedgerEntry], tiers: Sequence[str] = ()) -> None:
    """The specification of `count_ledger`."""
    moves: Counter[tuple[str, str]] = Counter()
    coupons: Counter[str] = Counter()
    for entry in ledger:
        kind = entry.kind
        if kind in ("earn", "event", "adjust", "bonus"):
            if entry.points + entry.pending > 0:
                stats.points_awarded += entry.points + entry.pending
            else:
                stats.points_deducted -= entry.points + entry.pending
        elif kind == "void":  # held points an operator voided: taken by an operator, as a deduction is
            stats.points_deducted -= entry.points + entry.pending
        elif kind == "reverse":
            stats.points_reversed -= entry.points + entry.pending
        elif kind == "expire":
            stats.points_expired -= entry.points + entry.pending
        elif kind == "tier" and entry.tier_from != entry.tier_to:
            # a tier a publish removed is named in the entry: its position is in the old ladder
            moves[entry.tier_from_name or tier_name(tiers, entry.tier_from), tier_name(tiers, entry.tier_to)] += 1
        elif kind == "redeem":
            stats.points_redeemed -= entry.points
        elif kind == "restore":
            stats.points_restored += entry.points
        elif kind in _COUPON_EVENTS:
            coupons[f"{_COUPON_EVENTS[kind]} {coupon_of(entry)}"] += 1
        elif kind == "coupon_not_issued":
            coupon_id, _, why = entry.note.rpartition(": ")
            if why == OUT_OF_STOCK:
                coupons[f"{OUT_OF_STOCK} {coupon_id}"] += 1
        if entry.growth > 0:
            stats.growth_awarded += entry.growth
        if entry.stored_value or entry.bonus_value:
            stats.stored_value += entry.stored_value
            stats.bonus_value += entry.bonus_value
    if moves:
        named: dict[str, dict[str, int]] = {}
        for (before, after), count in moves.items():
            named.setdefault(before, {})[after] = count
        stats.tier_changes = _add_moves(stats.tier_changes, named)
    if coupons:
        stats.coupons = _add_counts(dict(stats.coupons), coupons)


def coupon_of(entry: LedgerEntry) -> str:
    """The coupon id in the code of the instance an entry names."""
    return coupon_id_of(entry.coupon_code, entry.member_id)


def _less(counts: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {key: count - before.get(key, 0) for key, count in counts.items() if count != before.get(key, 0)}


def _add_counts(into: dict[str, int], counts: dict[str, int]) -> dict[str, int]:
    for key, count in counts.items():
        into[key] = into.get(key, 0) + count
    return into


def tier_name(tiers: Sequence[str], index: int) -> str:
    return tiers[index] if 0 <= index < len(tiers) else "none"


def _add_moves(into: dict[str, dict[str, int]], more: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """A copy of `into` with `more` added: the one may be a default shared by every BatchStats."""
    added = {before: dict(afters) for before, afters in into.items()}
    for before, afters in more.items():
        _add_counts(added.setdefault(before, {}), afters)
    return added


def rejected_and_twins(results: list[TxnResult]) -> list[int]:
    """Where a batch's rejected transactions are, and those with the id of one, in order (a result
    carries its transaction's id): all that remembering its rejections reads (actors/shard.py
    `remember_rejections`), found by the compiled code when it is built (nearly every batch has a
    rejection or two among thousands accepted, and a Python step a transaction was 2.5% of a
    shard's write)."""
    found = None
    if _twins_compiled is not None and type(results) is list:
        found = _twins_compiled(results)
    return found if found is not None else rejected_and_twins_pure(results)


def rejected_and_twins_pure(results: list[TxnResult]) -> list[int]:
    """The specification of `rejected_and_twins` (C loops: `map`, `compress`)."""
    ids = set(compress(map(_TXN_ID, results), map(eq, map(_OUTCOME, results), repeat("rejected"))))
    return list(compress(itertools.count(), map(ids.__contains__, map(_TXN_ID, results)))) if ids else []
