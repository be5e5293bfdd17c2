"""A seeded, realistic stream of transactions: Zipf-popular members, baskets over a catalogue,
refunds, resubmitted duplicates, interaction events and a few anomalous members; optionally a
share of spending (redeems, recharges, payments, coupons issued and used)."""

import itertools
import random
from collections.abc import Callable, Collection, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec

__all__ = ["Workload", "generate", "spending_share", "write_jsonl"]

MAX_SPENDING = 0.85
"""Duplicates, refunds, events and recharges take 14.5% of the stream; spending may take the rest but a little."""


def spending_share(text: str) -> float:
    """A command line's --spending: a share from 0 to MAX_SPENDING."""
    try:
        share = float(text)
    except ValueError:
        share = -1.0
    if not 0 <= share <= MAX_SPENDING:
        raise ValueError(f"--spending: a share from 0 to {MAX_SPENDING} (0.2 is a fifth), not {text!r}")
    return share

_CATEGORIES = ("grocery", "dairy", "bakery", "snacks", "household", "beauty", "wine", "coffee",
               "infant_formula", "toys", "electronics", "apparel")
_SPECIAL_LINES = (  # lines the example rules treat specially
    {"sku": "TEA-PROMO", "product_id": "P-TEA", "category": "tea", "name": "Oolong promo tin"},
    {"sku": "GIFT-CARD-100", "product_id": "P-GIFT", "category": "gift", "name": "Gift card 100"},
    {"sku": "COFFEE-BEANS", "product_id": "P-COFFEE", "category": "coffee", "name": "House beans 1kg"},
    {"sku": "BOTTLE-DEP", "product_id": "P-DEP", "category": "grocery", "name": "Bottle deposit"},
)


class Workload(msgspec.Struct, frozen=True):
    transactions: int = 100_000
    members: int = 10_000
    days: int = 3
    seed: int = 1
    start: str = "2026-11-16"
    timezone: str = "Asia/Shanghai"
    zipf: float = 1.0
    zipf_offset: int = 1_000
    """Zipf-Mandelbrot: hot members stay hot without one member buying thousands of times a day."""
    refund_share: float = 0.03
    duplicate_share: float = 0.01
    event_share: float = 0.10
    recharge_share: float = 0.005
    unpaid_share: float = 0.005
    anomalous_members: int = 5
    id_prefix: str = "T"
    """Transaction ids are the prefix and a sequence number: vary it to send a stream twice."""
    spending_share: float = 0.0
    """Of all transactions, spending ones (the mix `_Spending` draws); 0 leaves the stream as it was."""
    coupon_id: str = "RECHARGE20"
    """The coupon spending issues by API and uses (the example rules': 20.00 off from 100.00)."""
    member_prefix: str = "M"
    member_space: int = 10
    """Member ids are the prefix and 8 digits drawn from members × member_space numbers (1: every
    number below `members`, e.g. the members `patron bench members` enrolled)."""


def write_jsonl(path: Path, workload: Workload) -> int:
    """Write the stream as JSONL (one transaction per line); returns the count."""
    encoder = msgspec.json.Encoder()
    count = 0
    with open(path, "wb") as out:
        for batch in _batched(generate(workload), 10_000):
            out.write(encoder.encode_lines(batch))
            count += len(batch)
    return count


def _batched(items: Iterator[dict], size: int) -> Iterator[list[dict]]:
    while batch := list(itertools.islice(items, size)):
        yield batch


def generate(workload: Workload) -> Iterator[dict]:
    """Transactions as dicts with the gRPC field names, in arrival order."""
    return _Generator(workload).stream()


class _Generator:
    def __init__(self, workload: Workload) -> None:
        self.w = workload
        self.rng = random.Random(workload.seed)
        self.catalogue = _catalogue(self.rng)
        weights = [1.0 / ((rank + workload.zipf_offset) ** workload.zipf) for rank in range(1, workload.members + 1)]
        self.cumulative = list(itertools.accumulate(weights))
        self.member_ids = [f"{workload.member_prefix}{n:08d}"
                           for n in self.rng.sample(range(workload.members * workload.member_space), workload.members)]
        self.anomalous = self.member_ids[-workload.anomalous_members:] if workload.anomalous_members else []
        start = datetime.fromisoformat(workload.start).replace(tzinfo=ZoneInfo(workload.timezone))
        self.start_ms = int(start.timestamp() * 1000)
        self.span_ms = workload.days * 86_400_000
        self.recent: list[dict] = []
        self.sent: list[dict] = []
        self.spending = _Spending(self) if workload.spending_share else None

    def stream(self) -> Iterator[dict]:
        w, rng = self.w, self.rng
        for n in range(w.transactions):
            # within the days asked for: the last minute's jitter put a few on the next day (an outside probe)
            at = min(self.start_ms + self.span_ms * n // w.transactions + rng.randrange(60_000),
                     self.start_ms + self.span_ms - 1)
            roll = rng.random()
            txn = self._pick(roll, n, at)
            if len(self.sent) < 50_000:
                self.sent.append(txn)
            else:
                self.sent[rng.randrange(50_000)] = txn
            yield txn

    def _pick(self, roll: float, n: int, at: int) -> dict:
        w = self.w
        edges = itertools.accumulate((w.duplicate_share, w.refund_share, w.event_share, w.recharge_share,
                                      w.spending_share))
        duplicate, refund, event, recharge, spending = edges
        if roll < duplicate and self.sent:
            return self.rng.choice(self.sent)
        if roll < refund and self.recent:
            return self._refund(n, at)
        if roll < event:
            return self._event(n, at)
        if roll < recharge:
            if self.spending is not None:
                return self.spending.recharge(n, at, self._member(), self._member) or self._purchase(n, at)
            return self._recharge(n, at)
        if roll < spending and self.spending is not None and self.recent:
            return self.spending.pick(n, at)
        return self._purchase(n, at)

    def _member(self) -> str:
        return self.member_ids[self.rng.choices(range(self.w.members), cum_weights=self.cumulative)[0]]

    def _purchase(self, n: int, at: int) -> dict:
        rng = self.rng
        anomalous = self.anomalous and rng.random() < 0.002
        member = rng.choice(self.anomalous) if anomalous else self._member()
        lines = [self._line(rng.random() < 0.02) for _ in range(rng.randint(1, 8))]
        if anomalous:
            for line in lines:
                line["paid_minor"] *= 40
        txn = {"txn_id": f"{self.w.id_prefix}{n:010d}", "member_id": member, "occurred_at_ms": at, "kind": "purchase",
               "store_id": f"S{rng.randrange(200):03d}", "channel": "pos" if rng.random() < 0.8 else "online",
               "lines": lines}
        if rng.random() < self.w.unpaid_share:
            txn["status"] = rng.choice(("pending", "cancelled"))
        else:
            self._remember(txn)
        return txn

    def _line(self, special: bool) -> dict:
        rng = self.rng
        item = rng.choice(_SPECIAL_LINES) if special else rng.choice(self.catalogue)
        quantity = 1 if rng.random() < 0.8 else rng.randint(2, 4)
        line = {**item, "paid_minor": item.get("price", rng.randrange(100, 20_000)) * quantity,
                "quantity": quantity}
        line.pop("price", None)
        if rng.random() < 0.08:
            line["promotional"] = True
        if rng.random() < 0.05:
            line["member_discounted"] = True
        if rng.random() < 0.02:
            line["sku"] = ""
        return line

    def _remember(self, txn: dict) -> None:
        if len(self.recent) < 20_000:
            self.recent.append(txn)
        else:
            self.recent[self.rng.randrange(20_000)] = txn

    def _refund(self, n: int, at: int) -> dict:
        rng = self.rng
        original = rng.choice(self.recent)
        total = sum(line["paid_minor"] for line in original["lines"])
        txn = {"txn_id": f"{self.w.id_prefix}{n:010d}", "member_id": original["member_id"], "occurred_at_ms": at,
               "kind": "refund", "refund_of": original["txn_id"]}
        if rng.random() < 0.5:
            txn["amount_minor"] = total
        else:
            txn["lines"] = [dict(line) for line in rng.sample(original["lines"], 1)]
        return txn

    def _event(self, n: int, at: int) -> dict:
        kind = "sign_in" if self.rng.random() < 0.7 else "review"
        return {"txn_id": f"{self.w.id_prefix}{n:010d}", "member_id": self._member(), "occurred_at_ms": at,
                "kind": "event", "event_type": kind}

    def _recharge(self, n: int, at: int, member: str = "") -> dict:
        return {"txn_id": f"{self.w.id_prefix}{n:010d}", "member_id": member or self._member(), "occurred_at_ms": at,
                "kind": "recharge", "amount_minor": self.rng.choice((10_000, 50_000, 100_000))}


_TRIES = 50
"""Draws of a member before a recharge or an issue gives up (a member of the other kind each time)."""


class _Spending:
    """Spending by members who shopped before: a quarter redeems (gifts of a few points and points
    as cash at the till), a fifth recharges, a quarter payments by card from those who recharged,
    coupons issued by API and, for the rest, used (each code once) at a till order big enough.

    A coupon's code is `<coupon>-<member>-<n>`, n counting every instance of it the member was
    given, by API or by a recharge bonus (the example's "recharge 500, get 80" gives RECHARGE20
    from 2026-12-01). So the members who are issued the coupon by API never recharge, and those
    who recharge are never issued it: the codes used are those the engine gave, whatever the
    rules' bonuses and the stream's dates."""

    def __init__(self, generator: _Generator) -> None:
        self.g = generator
        self.cards: list[str] = []
        self.recharged: set[str] = set()
        self.issued: dict[str, int] = {}
        self.unused: list[tuple[str, str]] = []

    def _recent(self) -> str:
        return self.g.rng.choice(self.g.recent)["member_id"]

    @staticmethod
    def _one_of(first: str, draw: Callable[[], str], avoid: Collection[str]) -> str:
        """`first`, or when it is among `avoid` another member `draw` draws; empty after _TRIES."""
        member = first
        for _ in range(_TRIES):
            if member not in avoid:
                return member
            member = draw()
        return ""

    def recharge(self, n: int, at: int, first: str, draw: Callable[[], str]) -> dict | None:
        """A recharge by a member who was never issued the coupon by API; None when none came."""
        member = self._one_of(first, draw, self.issued)
        if not member:
            return None
        self.recharged.add(member)
        return self.g._recharge(n, at, member)

    def pick(self, n: int, at: int) -> dict:
        g = self.g
        member = self._recent()
        base = {"txn_id": f"{g.w.id_prefix}{n:010d}", "member_id": member, "occurred_at_ms": at}
        roll = g.rng.random()
        if roll < 0.25:
            return {**base, **self._redeem()}
        if roll < 0.45 or not self.cards:
            recharge = self.recharge(n, at, member, self._recent)
            if recharge is not None:
                self.cards.append(recharge["member_id"])
                return recharge
            return {**base, **self._redeem()}
        if roll < 0.70:
            return {**base, "member_id": g.rng.choice(self.cards), "kind": "payment",
                    "amount_minor": g.rng.randrange(500, 8_000)}
        if roll < 0.85 or not self.unused:
            issued = self._one_of(member, self._recent, self.recharged)
            if issued:
                return {**base, "member_id": issued, **self._issue(issued)}
            return {**base, **self._redeem()}
        member, code = self.unused.pop(g.rng.randrange(len(self.unused)))
        return {**base, "member_id": member, "kind": "coupon_use", "coupon_code": code, "amount_minor": 12_000,
                "lines": [{"sku": "SKU-00001", "category": "grocery", "paid_minor": 12_000, "quantity": 1}]}

    def _redeem(self) -> dict:
        rng = self.g.rng
        if rng.random() < 0.5:
            return {"kind": "redeem", "points": rng.choice((10, 20, 50))}
        return {"kind": "redeem", "points": rng.choice((100, 200)), "amount_minor": rng.randrange(2_000, 20_000)}

    def _issue(self, member: str) -> dict:
        coupon = self.g.w.coupon_id
        count = self.issued[member] = self.issued.get(member, 0) + 1
        self.unused.append((member, f"{coupon}-{member}-{count}"))
        if len(self.unused) > 20_000:
            self.unused.pop(0)
        return {"kind": "coupon_issue", "coupon_id": coupon}


def _catalogue(rng: random.Random, size: int = 5_000) -> list[dict]:
    items = []
    for n in range(size):
        category = rng.choice(_CATEGORIES)
        price = int(10 ** rng.uniform(2, 4.5))
        items.append({"sku": f"SKU-{n:05d}", "product_id": f"P-{n:05d}", "category": category,
                      "name": f"{category} item {n}", "price": price})
    return items
