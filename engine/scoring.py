"""Scoring a transaction as it arrives: checks, idempotency, then the rules for its kind."""

from collections.abc import Iterable

from msgspec.structs import replace

from engine.anomaly import counted_in_day
from engine.award import count_spend, credit_lot, give, judge_points, write_lapsed
from engine.balance import take_points
from engine.book import Book, found
from engine.bounds import input_problem, refund_amount, room_to_earn
from engine.earning import purchase_fits, purchase_growth, value_purchase
from engine.events import count_event, is_capped
from engine.history import remember_in
from engine.ids import FINE, MISSING, TOO_LONG, UNPRINTABLE, id_problem
from engine.members import Member
from engine.messages import readable
from engine.record_fields import txn_record
from engine.refunds import refund_problem, score_refund
from engine.spending.coupons import issue_on_enroll
from engine.spending.operations import UNDOABLE, score_spending
from engine.tagging import note_purchase
from engine.tier_changes import (
    enter_tier,
    keep_given,
    member_in_default_tier,
    note_default_tier,
    tier_after_transaction,
)
from engine.transactions import Transaction, TxnRecord, TxnResult
from engine.types import (
    ADJUSTMENT,
    COUPON_ISSUE,
    COUPON_USE,
    EVENT,
    KINDS,
    PURCHASE,
    RECHARGE,
    REDEEM,
    REFUND,
    SPENDING_KINDS,
    STATUSES,
    Day,
)
from engine.why import Why

try:
    import cython

    COMPILED = cython.compiled
except ImportError:  # the pure engine needs no Cython installed
    COMPILED = False

__all__ = ["date_problem", "malformed_reason", "score_batch", "score_dated", "score_transaction", "score_until",
           "score_well_formed"]

MAX_TEXT_LENGTH = 1_000
"""A transaction's texts kept beside the member: `channel` (an enrolling transaction's becomes the
member's) and an adjustment's `note` (its ledger entry's): unbounded, one made the member or its
ledger larger than a default gRPC client reads (4 MiB), as Enroll's and operators' texts are."""
_LONGEST_TEXT = MAX_TEXT_LENGTH
_ID_REASONS = {FINE: "", TOO_LONG: "id_too_long", UNPRINTABLE: "id_unprintable"}
"""The reasons of engine/ids.py's answers; no id at all is each field's own word (`_id_reason`)."""
_KINDS, _STATUSES = KINDS, STATUSES
"""The checks' constants as scoring.pxd types them (a C integer, frozensets) when compiled."""
_MONEY = SPENDING_KINDS | {RECHARGE}
_KINDS_LISTED = (PURCHASE, *sorted(KINDS - {PURCHASE}))
_MONEY_LISTED = tuple(sorted(_MONEY))
"""The same kinds, for `_among`; a purchase, nearly every transaction, is found first."""


def _same(kind: str, word: str) -> bool:
    """`kind == word`, for the kinds' tests. Compiled, in C (str_equal, scoring.pxd): this Cython
    compares two str with PyUnicode_Compare, an ordering of about 85 instructions, where kinds
    mostly differ in length; about 9 tests a transaction."""
    return str_equal(kind, word) == 1 if COMPILED else kind == word  # noqa: F821 (C, scoring.pxd)


def _among(word: str, words: frozenset[str], listed: tuple[str, ...]) -> bool:
    """`word in words` (`listed` holds the same words), for the two tests of a transaction's kind.
    Compiled, a str is compared with each in C (str_among, words.pxd, as filters.among does): the
    set hashes the kind, decoded fresh with each transaction, for about 270 instructions."""
    found = str_among(word, listed) if COMPILED else -1  # noqa: F821 (C, words.pxd)
    return found == 1 if found >= 0 else word in words


def _index_key(member_id: str, txn_id: str) -> tuple[str, str]:
    """A transaction's index key. Compiled, left out of the cyclic collector's young generation
    (index_key, scoring.pxd): a tuple of two str is in no cycle, yet every one the index keeps was
    counted and walked by a young collection before the collector untracked it (about 1 of the
    1.25 objects a transaction kept, at about 200 instructions each)."""
    if COMPILED:
        return index_key(member_id, txn_id)  # noqa: F821 (C, scoring.pxd)
    return (member_id, txn_id)


def _result(txn_id: str, outcome: str, points: int, growth: int, reason: str) -> TxnResult:
    """`TxnResult(txn_id, outcome, points, growth, reason)`: nearly every transaction's result.
    Compiled, made in C (new_result, record_fields.pxd), its other fields TxnResult's defaults:
    msgspec's constructor parses its arguments and fills in the defaults, about 300 instructions."""
    if COMPILED:
        return new_result(TxnResult, txn_id, outcome, points, growth, reason, 0, "")  # noqa: F821 (C, record_fields.pxd)
    return TxnResult(txn_id, outcome, points, growth, reason)


def score_batch(book: Book, txns: Iterable[Transaction]) -> list[TxnResult]:
    return [score_transaction(book, txn) for txn in txns]


def score_until(book: Book, txns: list[Transaction | None], results: list[TxnResult], starts_ms: int,
                ends_ms: int, skip: set[int], release: bool = False) -> int:
    """`score_transaction` of `txns` from the first without a result in `results` on, each result
    appended, up to one its caller scores itself: one whose index is in `skip`, or one dated from
    `starts_ms` to before `ends_ms`. Returns that one's index, or len(txns) when none is left. A
    shard's loop over a batch (actors/shard.py), here to run compiled: in Python, its steps cost
    about 900 instructions a transaction. `release`: each transaction scored is let go (its place
    in `txns` set to None), so that a caller holding no other reference frees it while it is still
    in the cache; freed after the commit, a shard's transactions cost 0.9 µs each to free, 4.5% of
    its write (bench/RESULTS.md, "Transactions freed as they are scored")."""
    index = len(results)
    while index < len(txns):
        txn = txns[index]
        if (skip and index in skip) or starts_ms <= txn.occurred_at_ms < ends_ms:
            return index
        results.append(score_transaction(book, txn))
        if release:
            txns[index] = None
        index += 1
    return index


def score_transaction(book: Book, txn: Transaction) -> TxnResult:
    """One result per transaction; only an accepted one changes the book."""
    reason = malformed_reason(book, txn)
    if reason:
        return _result(txn.txn_id, "rejected", 0, 0, reason)
    return score_well_formed(book, txn)


def score_well_formed(book: Book, txn: Transaction) -> TxnResult:
    """`score_transaction` of a transaction `malformed_reason` has passed."""
    return score_dated(book, txn, book.programme.calendar.day_of(txn.occurred_at_ms))


def score_dated(book: Book, txn: Transaction, day: Day) -> TxnResult:
    """`score_well_formed` of a transaction on local `day`, which its caller worked out already
    (replay's, to move its clock first): about 200 instructions a transaction to do it again."""
    key = _index_key(txn.member_id, txn.txn_id)
    seen = found(book.txns, key)
    if seen is not None:
        return seen.result(txn.txn_id, "duplicate")
    reason = date_problem(book, day, txn.member_id)
    if reason:
        return _result(txn.txn_id, "rejected", 0, 0, reason)
    if txn.status and txn.status != "paid":
        return _result(txn.txn_id, "ignored", 0, 0, "not_paid")
    if _among(txn.kind, _MONEY, _MONEY_LISTED):  # the purchase path pays for spending with this one test
        if _same(txn.kind, RECHARGE):
            return _recharge(book, txn, day)
        return score_spending(book, txn, day, found(book.members, txn.member_id))
    if _same(txn.kind, REFUND):
        return score_refund_transaction(book, txn, day, key)
    return _score_earning(book, txn, day, "", key)


def score_refund_transaction(book: Book, txn: Transaction, day: Day, key: tuple[str, str]) -> TxnResult:
    """A refund past the common checks: of spending, or of a purchase (known or not). Every
    ledger entry it writes names the original (`refund_of`). `key`: its own index key."""
    original = found(book.txns, (txn.member_id, txn.refund_of))
    reason = refund_problem(txn, original)
    if not reason and original is not None and original.kind in UNDOABLE:
        written = len(book.ledger)
        result = score_spending(book, txn, day, found(book.members, txn.member_id), original)
        _name_refunded(book, written, txn.refund_of)
        return result
    return _score_earning(book, txn, day, reason, key)


def _name_refunded(book: Book, written: int, original: str) -> None:
    """The ledger entries a refund wrote, from position `written`, name what it refunds."""
    for entry in book.ledger[written:]:
        entry.refund_of = original


def _score_earning(book: Book, txn: Transaction, day: Day, reason: str, key: tuple[str, str]) -> TxnResult:
    """A purchase, event, adjustment or refund of a purchase past the common checks; `reason`: a
    refund's problem found already (it is rejected with it). `key`: the transaction's index key,
    as `score_well_formed` looked it up (made once: a tuple made, hashed and freed a transaction)."""
    programme = book.programme
    member, created = (None, False) if reason else _member_for(book, txn, day)
    if member is None:
        return _result(txn.txn_id, "rejected", 0, 0, reason or "unknown_member")
    if _same(txn.kind, ADJUSTMENT) and txn.amount_minor > 0 and member.status != "active":
        # an operator's credit to a frozen or lost card is refused with its id free, to be sent again
        # once the card is active: kept at zero, the goodwill was lost with its id (an outside probe)
        return _result(txn.txn_id, "rejected", 0, 0, f"card_{member.status}")
    began = member.since_began  # before the transaction's own upgrade: what it added is not in the new sums
    written = len(book.ledger)  # after an enrollment's own entries (a welcome coupon's): not the refund's
    record = _score_kind(book, member, txn, day)
    if record is None:  # it would take a balance out of bounds; nothing was changed
        if created:
            _forget_new(book, member.member_id)
        return _result(txn.txn_id, "rejected", 0, 0, "amount_too_large")
    if _same(txn.kind, REFUND):
        _name_refunded(book, written, txn.refund_of)
    record.since_began = began
    book.txns[key] = record
    member.touched = True
    book.awake.add(member.member_id)
    # the day's transactions in the anomaly report: those counted in its sum (storage/index_history.py
    # reads the same from the index); a frozen card's purchase earned nothing and was listed (a probe)
    if (programme.anomaly.threshold and (_same(txn.kind, PURCHASE) or _same(txn.kind, EVENT))
            and counted_in_day(record.points, record.reason)):
        remember_in(book.history, member.member_id, day, txn.txn_id)
    book.dirty[member.member_id] = member
    return _result(txn.txn_id, "accepted", record.points, record.growth, record.reason)


def date_problem(book: Book, day: Day, member_id: str = "") -> str:
    """`too_late` or `in_future` for a transaction on local `day`, else "". A member already on
    the next date (`Book.today_for`) counts lateness from there: looked up on that one day only."""
    today, lateness = book.today, book.programme.max_lateness  # C integers compiled (scoring.pxd)
    if today and day < today - lateness:
        return "too_late"
    if today and day == today - lateness and member_id:
        member = found(book.members, member_id)
        if member is not None and day < book.today_for(member) - lateness:
            return "too_late"
    if today and day > today + 1:  # a till's clock a year ahead must not decide expiry dates
        return "in_future"
    return ""


def malformed_reason(book: Book, txn: Transaction) -> str:
    """Why a transaction can never be applied, whatever the state (but an event's type, which the
    rules in force name, unless it was applied before they changed): checked every time it is sent."""
    # locals that scoring.pxd types `str`, so that their tests and lengths are C ones compiled
    txn_id, member_id, status, channel = txn.txn_id, txn.member_id, txn.status, txn.channel
    if problem := id_problem(txn_id):
        return _id_reason(problem, "missing_txn_id")
    if problem := id_problem(member_id):
        return _id_reason(problem, "missing_member_id")
    if len(channel) > _LONGEST_TEXT:
        return "text_too_long"
    if not _among(txn.kind, _KINDS, _KINDS_LISTED):
        return "unknown_kind"
    if status and status not in _STATUSES:
        return "unknown_status"
    if txn.occurred_at_ms == 0:  # proto3's default: not sent (below 0 is a time, out of bounds: `bad_timestamp`)
        return "missing_occurred_at"
    if txn.amount_minor < 0 and not _same(txn.kind, ADJUSTMENT):
        return "negative_amount"
    return input_problem(txn) or _kind_problem(book, txn)


def _id_reason(problem: int, missing: str) -> str:
    """The reason for an id engine/ids.py found `problem` in ("" for none); `missing`: the field's
    word for no id (one of only spaces is none)."""
    return missing if problem == MISSING else _ID_REASONS[problem]


def _kind_problem(book: Book, txn: Transaction) -> str:
    kind = txn.kind
    if txn.points < 0:  # of any kind (SPEC §11.1), after input_problem has seen it is an integer
        return "negative_amount"
    if _same(kind, PURCHASE):
        return "" if txn.lines or txn.amount_minor else "empty_purchase"
    if _same(kind, REFUND):
        if not txn.refund_of:
            return "missing_refund_of"
        # it names a transaction id: one longer than any id cannot be one, and past 65,535 bytes
        # it could not even be looked up in the stored index (an outside probe)
        return _id_reason(id_problem(txn.refund_of), "missing_refund_of")  # no original has such an id
    if _same(kind, EVENT):  # the one check here that a rules version decides
        return "" if txn.event_type in book.programme.events or _seen(book, txn) else "unknown_event_type"
    if _same(kind, REDEEM):
        return "" if txn.points or txn.amount_minor else "missing_points"
    if _same(kind, COUPON_ISSUE):
        return "" if txn.coupon_id else "missing_coupon_id"
    if _same(kind, COUPON_USE):
        return "" if txn.coupon_code else "missing_coupon_code"
    if not txn.amount_minor:
        return "missing_amount"
    if not _same(kind, ADJUSTMENT):
        return ""
    return "missing_reason" if not readable(txn.note) else "text_too_long" if len(txn.note) > _LONGEST_TEXT else ""


def _seen(book: Book, txn: Transaction) -> bool:
    """Whether the transaction was applied already: an event accepted before a version removed its
    type is answered `duplicate` with its first points when resent, as every kind is, not told it
    was not applied (an outside probe)."""
    return found(book.txns, (txn.member_id, txn.txn_id)) is not None


def _recharge(book: Book, txn: Transaction, day: Day) -> TxnResult:
    """A recharge may enroll its member (when the programme enrolls unknown members), unless
    its amount is one the programme refuses anyway; a member created for a recharge that is
    then rejected is forgotten again."""
    fixed = book.programme.rules.stored_value.fixed_amounts
    member, created = found(book.members, txn.member_id), False
    if member is None and book.programme.enrolls_unknown:
        if fixed and txn.amount_minor not in fixed:
            return _result(txn.txn_id, "rejected", 0, 0, "amount_not_allowed")
        member, created = _member_for(book, txn, day)
    result = score_spending(book, txn, day, member)
    if created and result.outcome == "rejected":
        _forget_new(book, txn.member_id)
    # a blocked bonus counts in the day's sum too (award.judge_points), so it is among its transactions
    if book.programme.anomaly.threshold and counted_in_day(result.points, result.reason):
        remember_in(book.history, txn.member_id, day, txn.txn_id)
    return result


def _forget_new(book: Book, member_id: str) -> None:
    """Undo a member created by a transaction that was then rejected: the member, and what its
    creation wrote (enrollment coupons: their ledger entries and inventory units)."""
    member = book.members.pop(member_id)
    book.dirty.pop(member_id, None)
    if member.coupons or member.tier:
        book.ledger = [e for e in book.ledger if e.member_id != member_id]
        book.notices = [n for n in book.notices if n.member_id != member_id]
        for instance in member.coupons:
            book.stock.give_back(instance.coupon_id)


def _member_for(book: Book, txn: Transaction, day: Day) -> tuple[Member | None, bool]:
    """The member, and whether it was created (auto-enrolled) just now."""
    member = found(book.members, txn.member_id)
    if member is not None or not book.programme.enrolls_unknown:
        return member, False
    # A member's creation is recorded in the member (enrolled day, channel), not the ledger: it
    # changes no balance, and one ledger entry per member is a third of its bytes on disk; only a
    # channel's default tier above the lowest is an entry, as every change of tier (note_default_tier).
    member = member_in_default_tier(book, txn.member_id, txn.channel, day)
    book.members[txn.member_id] = member
    note_default_tier(book, member, day, "txn", txn.txn_id)
    if book.programme.coupons.on_enroll:
        issue_on_enroll(book, member, day, "txn", txn.txn_id)
    return member, True


def _score_kind(book: Book, member: Member, txn: Transaction, day: Day) -> TxnRecord | None:
    """The index record of an applied transaction; None, with nothing changed, when it would
    take an amount or balance out of bounds (SPEC §2)."""
    takes_back = _same(txn.kind, REFUND) or (_same(txn.kind, ADJUSTMENT) and txn.amount_minor < 0)
    if member.status != "active" and not takes_back:
        # frozen and lost members neither earn nor redeem; the transaction is kept, at zero. What
        # takes back (a refund of a purchase, seen or not, an operator's negative adjustment) still
        # applies: kept at zero, a returned purchase would leave its points and use up the id.
        # A purchase keeps what it paid: its refund is accepted and takes nothing back (it was
        # `nothing_to_refund`, a wrong answer to a till returning goods: an outside probe)
        paid = refund_amount(txn) if _same(txn.kind, PURCHASE) else 0
        return txn_record(member.member_id, txn.kind, day, 0, 0, member.status, book.programme.version, paid)
    if _same(txn.kind, PURCHASE):
        return score_purchase(book, member, txn, day)
    if _same(txn.kind, REFUND):
        return score_refund(book, member, txn, day)
    if _same(txn.kind, EVENT):
        return score_event(book, member, txn, day)
    return score_adjustment(book, member, txn, day)


def score_purchase(book: Book, member: Member, txn: Transaction, day: Day) -> TxnRecord | None:
    programme = book.programme
    value = value_purchase(programme, member, txn, day, True, book.keep_outputs)  # no why for a book without entries
    most_growth = purchase_growth(programme, value, value.points)
    if not purchase_fits(member, day, value, most_growth):
        return None
    moved = value.carry - member.carry_minor
    member.carry_minor = value.carry
    points, held, reason = judge_points(book, member, day, value.points, txn.txn_id)
    # as asked above unless the anomaly rule changed the points (blocked): asked again only then
    growth = most_growth if points == value.points else purchase_growth(programme, value, points)
    why = value.why
    if reason and why is not None:  # None: the book keeps no ledger entries to put it on
        why = replace(why, anomaly=reason)
    lapsed = give(book, member, day, txn.txn_id, "earn", points, growth, held, why)
    count_spend(book, member, day, value.eligible, txn.txn_id)
    if programme.tags.rules:
        note_purchase(book, member, day)
    _paid_upgrade(book, member, txn, day)
    tier_after_transaction(book, member, day, txn.txn_id)
    record = txn_record(member.member_id, PURCHASE, day, points, growth, reason, programme.version,
                        value.paid, value.eligible)
    record.carry_moved = moved  # its refunds move the carry back under `carry` (refunds._uncarry)
    record.lapsed_points = lapsed
    return record


def _paid_upgrade(book: Book, member: Member, txn: Transaction, day: Day) -> None:
    """Buying a tier's `paid_upgrade_sku` puts the member in that tier at once."""
    skus = book.programme.ladder.paid_skus
    if not skus:
        return
    # a list, not a generator: a generator is a closure, which a cpdef function cannot hold
    bought = max([skus.get(line.sku, 0) for line in txn.lines], default=0)
    if bought > member.tier:
        enter_tier(book, member, bought, book.as_of(member, day), "txn", txn.txn_id, note="paid upgrade", given=True,
                   since=day)
    elif bought:
        keep_given(book, member, bought, book.as_of(member, day), "txn", txn.txn_id, "paid upgrade")


def score_event(book: Book, member: Member, txn: Transaction, day: Day) -> TxnRecord | None:
    """Fixed points and growth, not multiplied; a capped or blocked event gives nothing
    and does not count toward its caps."""
    programme = book.programme
    rule = programme.events[txn.event_type]
    version = programme.version
    if is_capped(member, rule, day):
        return txn_record(member.member_id, EVENT, day, 0, 0, "capped", version)
    if not room_to_earn(member, day, rule.points, rule.growth, 0):
        return None
    earns = programme.ladder.tiers[member.tier].earns_points
    points, held, reason = judge_points(book, member, day, rule.points if earns else 0, txn.txn_id)
    if reason == "blocked":
        return txn_record(member.member_id, EVENT, day, 0, 0, reason, version)
    if points or rule.growth:
        count_event(member, rule, day, programme.max_lateness + 1)
    # no why for a book without entries (a replay without --ledger-out), as value_purchase's
    why = Why(tier=-1 if earns else member.tier, anomaly=reason, event=rule.type) if book.keep_outputs else None
    lapsed = give(book, member, day, txn.txn_id, "event", points, rule.growth, held, why)
    tier_after_transaction(book, member, day, txn.txn_id)
    record = txn_record(member.member_id, EVENT, day, points, rule.growth, reason, version)
    record.lapsed_points = lapsed
    return record


def score_adjustment(book: Book, member: Member, txn: Transaction, day: Day) -> TxnRecord | None:
    """An operator's signed points correction; it counts as points earned for tiers."""
    programme = book.programme
    amount = txn.amount_minor
    if not room_to_earn(member, day, amount, 0, 0):
        return None
    unrecovered = lapsed = 0
    if amount > 0:  # a late one's past its expiry's run lapses at once, as a late purchase's
        lapsed = credit_lot(member, amount, programme.expiry.expires(day), book.today_for(member))
    else:
        unrecovered = take_points(member, -amount, programme.allow_negative)
    changed = amount + unrecovered
    member.total_points += changed
    if day >= member.tier_since:
        member.since_points += changed
    programme.ladder.record(member, "points", day, changed)
    book.write(member, day, "operator", txn.txn_id, "adjust", points=changed, unrecovered=unrecovered,
               note=txn.note)
    write_lapsed(book, member, "operator", txn.txn_id, lapsed)
    tier_after_transaction(book, member, day, txn.txn_id, lowered=amount < 0)
    return txn_record(member.member_id, ADJUSTMENT, day, changed, 0, "", programme.version)
