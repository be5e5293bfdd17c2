"""One shard's part of the programme-wide coupon inventory: the blocks the grant keeper
granted it (actors/coupon_grants.py), asked for ahead of need, passed to the engine as data.

A block is asked for when what is left of it falls below half a block, right after the commit
that used it, and collected when the next batch needs it: issuance waits for the keeper only
when a batch needs more than is left. A block is `coupon_block` units, or twice what the last
commit used when that is more, up to MAX_BLOCK. A coupon given by a trigger (enrollment, an
upgrade, a recharge bonus: no scan foresees them) that runs out part way through a batch is
topped up there and then: the engine's take waits for the keeper (`CountedStock.refill`), with
a block that doubles at each wait, and scoring goes on; nothing is scored twice. A refusal
stands only when the keeper had nothing more to give."""

import logging

from actors.coupon_grants import Grant, GrantSource, Pending
from engine.errors import ShardUnavailableError
from engine.programme import Programme
from engine.spending.coupon_stock import CountedStock
from engine.transactions import Transaction
from engine.types import COUPON_ISSUE

__all__ = ["MAX_BLOCK", "ShardCoupons"]

log = logging.getLogger("patron.shard")
MAX_BLOCK = 100_000


class ShardCoupons:
    def __init__(self, shard: int, source: GrantSource, stock: CountedStock, block: int) -> None:
        self.shard, self.source, self.min_block = shard, source, max(1, block)
        stock.granted = dict(source.report(shard, stock.taken))
        stock.refill = self._refill
        self.stock = stock
        self.granted: dict[str, int] = stock.granted
        self.pending: dict[str, Pending] = {}
        self.blocks: dict[str, int] = {}
        self.tails: set[str] = set()
        """Coupons near the end of their inventory: leftovers go back after each commit."""
        self.dry: set[str] = set()
        """Coupons the keeper had not enough of in this write: their refusals stand."""

    # -- before and during scoring ---------------------------------------------------------

    def prepare(self, programme: Programme, txns: list[Transaction]) -> None:
        """Before a batch: take in the answers that arrived, and make sure every limited coupon
        the batch issues by name has a unit for each of those transactions."""
        if not self.pending and not programme.coupons.limited:
            return
        need: dict[str, int] = {}
        by_id = programme.coupons.by_id
        for txn in txns:
            if txn.kind == COUPON_ISSUE:
                coupon = by_id.get(txn.coupon_id)
                if coupon is not None and coupon.inventory:
                    need[coupon.id] = need.get(coupon.id, 0) + 1
        for coupon in [c for c, pending in self.pending.items() if pending.done()]:
            self._collect(coupon)
        for coupon, count in need.items():
            short = count - self._left(programme, coupon)
            if short > 0 and coupon not in self.dry:
                self.top_up(coupon, short)

    def _refill(self, coupon: str) -> bool:
        """Scoring used up this shard's units of `coupon`: wait for more now (False when the
        keeper has none). The block doubles at each wait, so a batch that gives many waits
        for a few round trips, and the next commit sizes it to what was used (`committed`)."""
        if coupon in self.dry:
            return False
        self.blocks[coupon] = min(MAX_BLOCK, 2 * self._block(coupon))
        self.top_up(coupon, 1)
        return coupon not in self.dry

    def top_up(self, coupon: str, short: int) -> None:
        """Wait for at least `short` more units (a block when there is enough); when the keeper
        has none, the coupon is dry for this attempt and its refusals stand."""
        if coupon in self.pending:
            self._collect(coupon)
        before = self.granted.get(coupon, 0)
        want = short + self._block(coupon)
        self._apply(coupon, self.source.ask(self.shard, coupon, before, short, want).result())
        if self.granted.get(coupon, 0) - before < short:
            self.dry.add(coupon)

    # -- after a commit -------------------------------------------------------------------

    def committed(self, programme: Programme, before: dict[str, int]) -> None:
        """Blocks follow use: grown to twice the last commit's, asked for when half used up;
        near the end of an inventory, what this shard did not use goes back at once. `before`
        is what was taken before the commit; only limited coupons are looked at."""
        taken = self.stock.taken
        for spec in programme.coupons.limited:
            coupon = spec.id
            used = taken.get(coupon, 0) - before.get(coupon, 0)
            if not used and coupon not in self.tails:
                continue
            self.blocks[coupon] = min(MAX_BLOCK, max(self.min_block, 2 * used))
            if coupon in self.tails:
                self._give_back(coupon)
            elif coupon not in self.pending and self._left(programme, coupon) < self.blocks[coupon] // 2:
                seen = self.granted.get(coupon, 0)
                self.pending[coupon] = self.source.ask(self.shard, coupon, seen, 0, self.blocks[coupon])

    def _give_back(self, coupon: str) -> None:
        """After a commit, which has been answered: a keeper out of reach keeps the units on
        its books for this shard, and the next ask hands them back (Grants.grant)."""
        try:
            self.release([coupon])
        except ShardUnavailableError:
            log.warning("could not give coupon units back to the keeper; they stay this shard's",
                        extra={"shard": self.shard, "coupon": coupon})

    def release(self, coupons: list[str]) -> int:
        """Give back the unused part of these coupons' blocks, and from now on what is left
        after each commit (the inventory is nearly used up); returns the units given back."""
        for coupon in coupons:
            if coupon in self.pending:
                self._collect(coupon)
        totals = {c: self.stock.taken.get(c, 0) for c in coupons
                  if self.granted.get(c, 0) != self.stock.taken.get(c, 0)}
        freed = sum(self.granted.get(c, 0) - total for c, total in totals.items())
        if totals:
            self.granted.update(totals)  # no longer usable here before the keeper may grant them again
            self.source.settle(self.shard, totals)
        self.tails.update(coupons)
        return freed

    def settle_all(self) -> None:
        """A publish: every block goes back and the keeper learns what this shard issued, so
        the new version's inventories count from there (docs/decisions.md)."""
        for coupon in list(self.pending):
            self._collect(coupon)
        totals = {c: self.stock.taken.get(c, 0) for c in self.granted.keys() | self.stock.taken.keys()}
        self.granted.update(totals)
        self.source.settle(self.shard, totals)
        self.tails = set()

    # -- helpers ----------------------------------------------------------------------------

    def _left(self, programme: Programme, coupon: str) -> int:
        spec = programme.coupons.by_id.get(coupon)
        return self.stock.remaining(coupon, spec.inventory) if spec is not None else 0

    def _block(self, coupon: str) -> int:
        return self.blocks.get(coupon, self.min_block)

    def _collect(self, coupon: str) -> None:
        self._apply(coupon, self.pending.pop(coupon).result())

    def _apply(self, coupon: str, grant: Grant) -> None:
        self.granted[coupon] = grant.total
        if grant.tail and coupon not in self.tails:
            self.tails.add(coupon)
