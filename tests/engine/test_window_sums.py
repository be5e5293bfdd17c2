"""Window sums kept current (engine/window_sums.py) always equal the per-day figures added up
afresh: after purchases, late ones, refunds on the original's day, events, midnights that prune
old days, and a new rules version."""

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.book import Book
from engine.members import Member
from engine.programme import Programme
from engine.publishing import reevaluate
from engine.replay import replay_stream
from engine.transactions import LineItem, Transaction
from engine.validation import load_rules
from tests.builders import ms

RULES = """
version = 1
programme = "Windows"
timezone = "Asia/Shanghai"
max_lateness_days = 3
[points.spend]
unit_minor = 100
per_unit = 1
[tier_policy]
on_change = "realtime"
[[tiers]]
name = "Basic"
[[tiers]]
name = "Silver"
metric = "points"
window = "4 days"
threshold = 400
validity = "5 days"
[[tiers]]
name = "Gold"
metric = "spend"
window = "1 months"
threshold = 90000
validity = "1 months"
[[events]]
type = "sign_in"
points = 50
growth = 5
per_day = 2
[[tags]]
name = "regular"
purchases = 3
window = "6 days"
[[tags]]
name = "big spender"
spend_minor = 60000
window = "2 months"
"""
REPUBLISHED = (RULES.replace("version = 1", "version = 2").replace('window = "4 days"', 'window = "9 days"')
               .replace('metric = "spend"\nwindow = "1 months"', 'metric = "growth"\nwindow = "3 days"'))
START = ms("2026-11-10 08:00")


@st.composite
def streams(draw) -> list[Transaction]:
    """Mostly forward in time, days apart at times, sometimes late by up to two days."""
    txns: list[Transaction] = []
    at = START
    for n in range(draw(st.integers(1, 60))):
        at += draw(st.sampled_from([0, 3_600_000, 20 * 3_600_000, 50 * 3_600_000, 9 * 86_400_000]))
        late = draw(st.sampled_from([0, 0, 0, 86_400_000, 2 * 86_400_000]))
        member = draw(st.sampled_from(["a", "b"]))
        kind = draw(st.sampled_from(["purchase"] * 4 + ["refund", "event"]))
        if kind == "purchase":
            lines = [LineItem(sku="S", paid_minor=draw(st.integers(0, 40_000)))]
            txns.append(Transaction(f"t{n}", member, at - late, kind, lines=lines))
        elif kind == "refund":
            mine = [t.txn_id for t in txns if t.member_id == member and t.kind == "purchase"] or ["unknown"]
            txns.append(Transaction(f"t{n}", member, at, kind, refund_of=draw(st.sampled_from(mine)),
                                    amount_minor=draw(st.integers(1, 40_000))))
        else:
            txns.append(Transaction(f"t{n}", member, at - late, kind, event_type="sign_in"))
    return txns


def resummed(member: Member, metric: str, start: int, as_of: int) -> int:
    return sum(amount for day, amount in member.windows.get(metric, {}).items() if start <= day <= as_of)


def check_every_sum(book: Book, offsets: list[int]) -> None:
    """Asked in the drawn order of as-of days, so kept sums slide back and forth."""
    sums = book.programme.ladder.sums
    for member in book.members.values():
        for offset in offsets:
            as_of = book.today + offset
            for slot, window in enumerate(sums.windows):
                expected = resummed(member, window.metric, sums.start(slot, as_of), as_of)
                assert sums.total(member, slot, as_of) == expected, (member.member_id, window.metric, as_of)


@settings(max_examples=80, deadline=None)
@given(txns=streams(), offsets=st.lists(st.integers(-40, 2), min_size=1, max_size=4), publish_at=st.integers(0, 60))
def test_kept_sums_equal_a_fresh_sum_after_any_stream(txns, offsets, publish_at):
    book = Book(Programme(load_rules(RULES)))
    for n, _ in enumerate(replay_stream(book, txns)):
        check_every_sum(book, offsets)
        if n == publish_at:
            book.programme = Programme(load_rules(REPUBLISHED))
            for member in list(book.members.values()):
                reevaluate(book, member, 2)
    check_every_sum(book, offsets)


def test_a_member_read_again_gets_its_sums_derived_afresh():
    """A member reloaded (a batch that failed, a member read from storage) has new day dicts:
    sums kept for the old ones must not be used."""
    programme = Programme(load_rules(RULES))
    sums = programme.ladder.sums
    slot = next(i for i, w in enumerate(sums.windows) if w.metric == "spend" and w.period.unit == "months")
    member = Member("a", enrolled=740_000, windows={"spend": {740_000: 500}})
    assert sums.total(member, slot, 740_001) == 500
    member.windows = {"spend": {740_000: 800}}
    assert sums.total(member, slot, 740_001) == 800
