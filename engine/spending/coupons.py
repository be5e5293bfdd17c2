"""Coupons (docs/rules.md, "Spending"): issuing instances to members, using them at the till, giving them back
on a refund, and expiring them at midnight."""

import msgspec

from engine.book import Book
from engine.calendar import iso
from engine.members import CouponInstance, Member
from engine.notices import COUPON_ISSUED, CouponIssued, Notice
from engine.rules import Coupon
from engine.spending.coupon_stock import take_from
from engine.transactions import Spent, Transaction, TxnRecord
from engine.types import COUPON_ISSUE, COUPON_USE, RECHARGE, REFUND, Day

__all__ = ["coupon_due", "coupon_id_of", "coupon_value", "expire_coupons", "issue", "issue_on_enroll",
           "issue_on_upgrade", "score_coupon_issue", "score_coupon_use", "undo_coupon_use", "use_problem",
           "void_coupons"]

_encode_json = msgspec.json.Encoder().encode  # notices.py's encoder, called here without its Python function between


# -- issuing ---------------------------------------------------------------------------


def _validity(coupon: Coupon, issued: Day) -> tuple[Day, Day]:
    if coupon.valid_from is not None and coupon.valid_to is not None:
        return coupon.valid_from.toordinal(), coupon.valid_to.toordinal()
    start = issued + (coupon.valid_after_days or 0)
    return start, start + (coupon.valid_days or 1) - 1


_ISSUED_ON: dict[str, tuple[Coupon, Day, Day, Day, str, str, str]] = {}
"""Per coupon id, its last issue: (coupon, issue day, valid from, valid to, both as notices write
them, and its notice's detail after the code: `","coupon_id":…}`)."""
_CODE_OPEN = '{"code":"'
_printable = str.isprintable  # compiled, `code.isprintable()` is a method looked up by name on every call


def _dates(coupon: Coupon, day: Day) -> tuple[Coupon, Day, Day, Day, str, str]:
    """`_validity` of an issue on `day`, with its days as text, kept from the coupon's last issue:
    a shard issues the welcome coupon to every member it enrolls, nearly all on the same day
    (issue 15: about 1,500 instructions a new member for the sums and the two `iso`). Kept per
    coupon object, not id: a programme reloaded with other dates is another object."""
    known = _ISSUED_ON.get(coupon.id)
    if known is not None and known[0] is coupon and known[1] == day:
        return known
    valid_from, valid_to = _validity(coupon, day)
    text_from, text_to = iso(valid_from), iso(valid_to)
    after_code = _encode_json(CouponIssued("", coupon.id, text_from, text_to)).decode()[len(_CODE_OPEN):]
    known = (coupon, day, valid_from, valid_to, text_from, text_to, after_code)
    _ISSUED_ON[coupon.id] = known
    return known


def _issued_detail(code: str, coupon: Coupon, dates: tuple[Coupon, Day, Day, Day, str, str, str]) -> str:
    """The coupon_issued notice's detail: the JSON of {code, coupon_id, valid_from, valid_to} as
    `encode_detail` writes it. A code msgspec writes as it is (printable, no quote nor backslash:
    nothing escaped) is put between the text before it and the text after it, as kept by `_dates`,
    without encoding anything (issue 15); any other code is encoded."""
    if _printable(code) and '"' not in code and "\\" not in code:
        after: str = dates[6]
        return f"{_CODE_OPEN}{code}{after}"  # compiled, one join of three str, not two additions
    return _encode_json(CouponIssued(code, coupon.id, dates[4], dates[5])).decode()


def _given(member: Member, coupon: Coupon) -> int:
    """Instances of `coupon` the member was given (a new member has none: the common case)."""
    given = 0
    for c in member.coupons:  # a loop, not a generator: compiled, a C function holds no closure
        if c.coupon_id == coupon.id:
            given += 1
    return given


MOST_HELD = 10_000
"""Coupon instances a member holds at most, in every status, whatever `per_member` says: each
answer carrying the member carries them all, and 55,000 made one too big for a gRPC client's
4 MB (GetMember, and Adjust or SetStatus answered RESOURCE_EXHAUSTED once applied), each issue
slower than the last (an outside probe)."""


def _refusal(book: Book, member: Member, coupon: Coupon, given: int) -> str:
    """Why nothing can be issued: the member's limit first, then the programme's inventory
    (so a member at their limit never uses up a unit)."""
    if (coupon.per_member and given >= coupon.per_member) or len(member.coupons) >= MOST_HELD:
        return "member_limit"
    if not take_from(book.stock, coupon.id, coupon.inventory):
        return "out_of_stock"
    return ""


def coupon_id_of(code: str, member_id: str) -> str:
    """The coupon id in an instance's code, `<coupon id>-<member id>-<n>` (`_give`): ids may hold
    dashes, so the member's id and the number are cut off the end."""
    head = code.rpartition("-")[0]
    suffix = f"-{member_id}"
    return head[:-len(suffix)] if head.endswith(suffix) else head


def _give(book: Book, member: Member, coupon: Coupon, day: Day, cause: str, ref: str, given: int) -> str:
    code = f"{coupon.id}-{member.member_id}-{given + 1}"
    dates = _dates(coupon, day)
    valid_from = dates[2]
    valid_to = dates[3]
    # every enrollment issues its welcome coupon here: the tuple grows by one without a list between
    member.coupons += (CouponInstance(code, coupon.id, "unused", valid_from, valid_to, ref),)
    book.write_coupon(member, day, cause, ref, "coupon_issued", code)
    if book.keep_outputs:  # a book keeping no notices (replay without a ledger) is spared the detail's text
        # `notify_detail`'s notice, its detail the dict's very bytes without the dict to build, the
        # keys to encode, nor a Python function (encode_detail) between (issue 15)
        book.notices.append(Notice(COUPON_ISSUED, member.member_id, day, _issued_detail(code, coupon, dates)))
    return code


def issue(book: Book, member: Member, coupon: Coupon, day: Day, cause: str, ref: str) -> str:
    """A trigger issues one instance and returns its code; when it cannot, a ledger entry
    says why and the code is empty."""
    given = _given(member, coupon)
    refusal = _refusal(book, member, coupon, given)
    if refusal:
        book.write(member, day, cause, ref, "coupon_not_issued", note=f"{coupon.id}: {refusal}")
        return ""
    return _give(book, member, coupon, day, cause, ref, given)


def issue_on_enroll(book: Book, member: Member, day: Day, cause: str, ref: str) -> None:
    for coupon in book.programme.coupons.on_enroll:
        issue(book, member, coupon, day, cause, ref)


def issue_on_upgrade(book: Book, member: Member, tier: int, day: Day, cause: str, ref: str) -> None:
    for coupon in book.programme.coupons.on_upgrade.get(tier, ()):
        issue(book, member, coupon, day, cause, ref)


def score_coupon_issue(book: Book, member: Member, txn: Transaction, day: Day) -> TxnRecord | str:
    """A refusal of a coupon_issue is a rejection: nothing is written, the id stays free."""
    coupon = book.programme.coupons.by_id.get(txn.coupon_id)
    if coupon is None:
        return "unknown_coupon"
    given = _given(member, coupon)
    refusal = _refusal(book, member, coupon, given)
    if refusal:
        return refusal
    code = _give(book, member, coupon, day, "txn", txn.txn_id, given)
    return TxnRecord(member.member_id, COUPON_ISSUE, day, 0, 0, "", book.programme.version,
                     spent=Spent(coupon_code=code))


# -- using -----------------------------------------------------------------------------


def _instance(member: Member, code: str) -> CouponInstance | None:
    for instance in member.coupons:
        if instance.code == code:
            return instance
    return None


def use_problem(instance: CouponInstance | None, coupon: Coupon | None, day: Day) -> str:
    if instance is None or coupon is None:
        return "unknown_coupon"
    if instance.status == "used":
        return "coupon_used"
    if instance.status == "void" or day > instance.valid_to:
        return "coupon_expired"
    if day < instance.valid_from:
        return "coupon_not_yet_valid"
    return ""


def coupon_value(book: Book, coupon: Coupon, txn: Transaction) -> int | str:
    """What the coupon takes off this order, or why it does not apply."""
    applicable = txn.amount_minor
    if not book.programme.coupons.designated[coupon.id].empty:
        matcher = book.programme.coupons.designated[coupon.id]
        lines = [line for line in txn.lines if matcher.matches(line)]
        if not lines:
            return "not_applicable"
        applicable = sum(line.paid_minor for line in lines)
    if applicable < coupon.min_charge_minor:
        return "below_min_charge"
    if 0 < txn.amount_minor < applicable:  # designated lines that say more than the order's total: never more off
        applicable = txn.amount_minor      # than the order (the minimum is the lines', SPEC §11.5)
    if coupon.kind == "voucher":
        return min(coupon.value_minor or 0, applicable)
    if coupon.kind == "discount":
        return applicable - book.programme.round(applicable * (coupon.percent or 100), 100)
    return 0


def score_coupon_use(book: Book, member: Member, txn: Transaction, day: Day) -> TxnRecord | str:
    """Validity is judged on the use's own local day, so a late use dated within validity is
    honoured even after midnight marked the instance expired."""
    instance = _instance(member, txn.coupon_code)
    coupon = book.programme.coupons.by_id.get(instance.coupon_id) if instance else None
    problem = use_problem(instance, coupon, day)
    if problem:
        return problem
    value = coupon_value(book, coupon, txn)
    if isinstance(value, str):
        return value
    instance.status = "used"
    book.write_coupon(member, day, "txn", txn.txn_id, "coupon_used", instance.code)
    return TxnRecord(member.member_id, COUPON_USE, day, 0, 0, "", book.programme.version,
                     spent=Spent(value, instance.code))


def undo_coupon_use(book: Book, member: Member, original: TxnRecord, txn: Transaction, day: Day) -> TxnRecord:
    """The coupon is usable again; if its validity has passed, the next midnight expires it."""
    used = original.spent
    instance = _instance(member, used.coupon_code)
    if instance is not None and instance.status == "used":
        if _given_back(book, member, instance):
            instance.status = "void"
            book.write_coupon(member, day, "txn", txn.txn_id, "coupon_void", instance.code)
        else:
            instance.status = "unused"
            book.write_coupon(member, day, "txn", txn.txn_id, "coupon_restored", instance.code)
    used.undone = True
    return TxnRecord(member.member_id, REFUND, day, 0, 0, "", book.programme.version,
                     spent=Spent(-used.value_minor, used.coupon_code))


def _given_back(book: Book, member: Member, instance: CouponInstance) -> bool:
    """Whether the recharge that gave this instance was refunded in full since it was used: that
    refund voided the instances it gave that were unused then (`void_coupons`), so one in use
    comes back void, whichever refund came first (a probe found it usable again)."""
    recharge = book.txns.get((member.member_id, instance.issued_by)) if instance.issued_by else None
    return (recharge is not None and recharge.kind == RECHARGE and recharge.refunded_minor >= recharge.paid_minor
            and recharge.spent is not None
            and instance in bonus_instances(member, instance.issued_by, recharge.spent.coupon_code))


def bonus_instances(member: Member, recharge: str, codes: str) -> list[CouponInstance]:
    """The instances a recharge's bonus gave, whose codes it answered joined by commas: the run
    of the instances it issued (after its enrollment's and upgrade's, which carry its id too)
    whose codes join to `codes`. Not `codes` split at its commas: a member or coupon id may hold
    one, and such a bonus's coupons were left usable after the recharge was refunded (a probe)."""
    issued = [c for c in member.coupons if c.issued_by == recharge]
    for start in range(len(issued)):
        for end in range(start + 1, len(issued) + 1):
            if ",".join([c.code for c in issued[start:end]]) == codes:
                return issued[start:end]
    return []


def void_coupons(book: Book, member: Member, recharge: str, codes: str, day: Day, ref: str) -> None:
    """Void the still unused instances the recharge's bonus gave (`codes`, comma-joined), as a
    full refund of the recharge does."""
    for instance in bonus_instances(member, recharge, codes) if codes else []:
        if instance.status == "unused":
            instance.status = "void"
            book.write_coupon(member, day, "txn", ref, "coupon_void", instance.code)


# -- midnight --------------------------------------------------------------------------


def coupon_due(member: Member) -> Day:
    """The first run that will expire one of the member's unused instances, or 0."""
    due = 0
    for c in member.coupons:
        if c.status == "unused" and (not due or c.valid_to + 1 < due):
            due = c.valid_to + 1
    return due


def expire_coupons(book: Book, member: Member, run: Day, ref: str) -> None:
    """The run for `run` expires every unused instance whose last valid day is before it."""
    for instance in member.coupons:
        if instance.status == "unused" and instance.valid_to < run:
            instance.status = "expired"
            book.write_coupon(member, run, "midnight", ref, "coupon_expired", instance.code)
