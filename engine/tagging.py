"""Changing members' tags: the midnight run's computed tags, and an operator's manual ones.

Computed tags change only at midnight: the run for D judges them as of D - 1. A quiet member
is visited only on the day one of its tags could change (`Member.tag_check`), so a night does
not cost a visit to every member."""

from engine.book import Book
from engine.errors import InvalidRequestError, UnknownMemberError
from engine.members import Member
from engine.messages import readable
from engine.transactions import TxnRecord
from engine.types import PURCHASE, Day

__all__ = ["MAX_MANUAL_TAGS", "MAX_TAG_LENGTH", "NOT_COUNTED", "counted_purchase", "forget_purchase", "note_purchase",
           "retag", "set_manual_tags", "watch_new"]

MAX_TAG_LENGTH = 64
MAX_MANUAL_TAGS = 64
"""Manual tags a member may hold, and tags one call may add or remove. Every tag is written on
the member, in its ledger note and in the members-per-tag counts, and a change runs on the
member's shard while its other members wait: unbounded, one call held a shard for minutes."""


NOT_COUNTED = frozenset({"frozen", "lost"})
"""Reasons of purchases kept at zero on a card that could not earn: scoring never counted them."""


def counted_purchase(record: TxnRecord) -> bool:
    """Whether a purchase's record counts for purchase-count tags, as note_purchase and
    forget_purchase counted it: paid on a card that could earn, not refunded in full."""
    return (record.kind == PURCHASE and record.reason not in NOT_COUNTED
            and (not record.refunded_minor or record.refunded_minor < record.paid_minor))


def note_purchase(book: Book, member: Member, day: Day) -> None:
    """A paid purchase: recency starts again, and it counts for purchase-count tags."""
    member.last_purchase = max(member.last_purchase, day)
    if book.programme.tags.counts_purchases:
        member.purchases += 1
        book.programme.ladder.record(member, "purchases", day, 1)


def forget_purchase(book: Book, member: Member, day: Day) -> None:
    """A purchase refunded in full no longer counts for purchase-count tags (SPEC §2: cancelling a
    paid order is a refund; an outside probe found it counted). Recency stays: the member came."""
    if book.programme.tags.counts_purchases:
        member.purchases -= 1
        book.programme.ladder.record(member, "purchases", day, -1)


def watch_new(book: Book, member: Member, day: Day) -> None:
    """A member created outside a transaction is judged at the next midnight run."""
    if book.programme.tags.rules:
        member.tag_check = day + 1
        book.wake_on(day + 1, member.member_id)


def retag(book: Book, member: Member, run: Day, ref: str) -> None:
    """The midnight run's tags, as of the day before; a change is a ledger entry."""
    tags = book.programme.tags
    as_of = run - 1
    computed, member.tag_check = tags.judged(member, as_of)
    if computed != member.tags:
        book.count_tags(member.tags + member.manual_tags, computed + member.manual_tags)
        note = _change(member.tags, computed)
        member.tags = computed
        book.write(member, run, "midnight", ref, "tag", note=note)


def set_manual_tags(book: Book, member_id: str, add: list[str], remove: list[str], reason: str,
                    day: Day) -> Member:
    """An operator's tags, kept apart from the computed ones. Asking for tags the member
    already has (or lacks) changes nothing and writes nothing."""
    member = book.members.get(member_id)
    if member is None:
        raise UnknownMemberError(member_id)
    _check_request(member_id, add, remove, reason)
    before = set(member.manual_tags)
    _check_computed(member, book.programme.tags.names, add, remove, before)
    after = (before | set(add)) - set(remove)
    if after == before:
        return member
    _check_room(member_id, before, after)
    manual = sorted(after)
    book.count_tags(member.tags + member.manual_tags, member.tags + manual)
    note = f"{_change(member.manual_tags, manual)}: {reason}"
    member.manual_tags = manual
    book.write(member, day, "operator", "tags", "tag", note=note)
    return member


def _check_request(member_id: str, add: list[str], remove: list[str], reason: str) -> None:
    """Refuses a malformed call before anything changes; the counts come first, so a call of
    80,000 tags is refused without reading them."""
    if len(set(add)) > MAX_MANUAL_TAGS:  # more than a member may hold: no number of calls would take them
        raise InvalidRequestError(f"add: member {member_id!r}: at most {MAX_MANUAL_TAGS} tags per call, got "
                                  f"{len(set(add)):,}; a member holds at most {MAX_MANUAL_TAGS} manual tags")
    if len(set(remove)) > MAX_MANUAL_TAGS:
        raise InvalidRequestError(f"remove: member {member_id!r}: at most {MAX_MANUAL_TAGS} tags per call, got "
                                  f"{len(set(remove)):,}; send them in several calls")
    for tag in add:  # printable: a tag is a Prometheus label value and a line of `patron status`
        if not tag or len(tag) > MAX_TAG_LENGTH or not tag.isprintable() or tag.isspace():
            raise InvalidRequestError(f"tag: expected 1 to {MAX_TAG_LENGTH} printable characters, not only spaces, "
                                      f"got {tag!r}")
    if not readable(reason):
        raise InvalidRequestError("reason: an operator's change of tags needs a reason one can read (not only "
                                  "spaces or invisible characters)")


def _check_computed(member: Member, computed: frozenset[str], add: list[str], remove: list[str],
                    before: set[str]) -> None:
    """The programme's rules give and take its computed tags: an operator's tag of the same name
    was counted with them, and removing one changed nothing and said nothing (an outside probe).
    A computed tag the member still holds from a version before counts as one until the midnight
    run takes it away. A manual tag that a later version made a computed tag's name may still be
    removed."""
    rules = computed | set(member.tags)
    for key, tags in (("add", add), ("remove", remove)):
        for tag in tags:
            if tag in rules and tag not in before:
                raise InvalidRequestError(f"{key}: member {member.member_id!r}: {tag!r} is a computed tag" + (
                    ", which the rules' [[tags]] give and take at the midnight run; an operator's tag needs a name "
                    "no [[tags]] rule uses" if tag in computed else  # else said to be a rule's, there was none
                    " the member still holds from an earlier rules version, until the next midnight run takes it "
                    "away; ask again after that run"))


def _check_room(member_id: str, before: set[str], after: set[str]) -> None:
    """A member may hold MAX_MANUAL_TAGS. One that holds more (tagged before there was a limit)
    may still lose tags, but gains none until it is within the limit."""
    if len(after) > MAX_MANUAL_TAGS and not after <= before:
        raise InvalidRequestError(f"add: member {member_id!r} would hold {len(after):,} manual tags, at most "
                                  f"{MAX_MANUAL_TAGS}; remove some first")


def _change(before: list[str], after: list[str]) -> str:
    """The note of a change: tags added, then tags taken away. Sets, so that it takes time in
    proportion to the tags, not to their square."""
    was, now = set(before), set(after)
    return " ".join([f"+{t}" for t in after if t not in was] + [f"-{t}" for t in before if t not in now])
