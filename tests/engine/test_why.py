"""Why these points: a purchase's ledger entry names the rules that made its points, and the
explanation adds up to the points it explains."""

import math
import re
from datetime import date
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.book import Book
from engine.ledger import LedgerEntry
from engine.scoring import score_transaction
from engine.summary import EntrySummary, summarise_entry
from engine.transactions import Transaction
from tests.builders import book, buy, line, ms, programme

SPEND = """
[points.spend]
unit_minor = 1000
per_unit = 10
"""

WINTER = """
[[multipliers]]
name = "winter campaign"
factor = 1.2
when = { from = "2026-12-01", to = "2026-12-24" }
"""

WEEKEND = """
[[multipliers]]
name = "weekend"
factor = 1.5
when = { weekdays = ["sat", "sun"] }
"""


def shown(scored: Book, entry: LedgerEntry) -> EntrySummary:
    """The entry as replay, gRPC and the CLI show it: the why made from its stored parts."""
    return summarise_entry(entry, scored.programme.ladder.names, scored.programme.why)


def why_of(scored: Book, txn_id: str) -> EntrySummary:
    [entry] = [e for e in scored.ledger if e.ref == txn_id and e.kind in ("earn", "event")]
    return shown(scored, entry)


def test_a_campaign_purchase_says_its_points_came_from_the_spend_rule_times_the_campaign():
    scored = book(body=SPEND + WINTER)
    result = score_transaction(scored, buy("t1", "m1", "2026-12-03 10:00", line(12000)))
    entry = why_of(scored, "t1")
    assert (result.points, entry.points) == (144, 144)
    assert entry.why == "120 from 'spend 10 per 10.00' × 1.2 'winter campaign'"


def test_on_a_multiplier_day_the_multiplier_used_is_named_and_the_others_are_not_stacked():
    scored = book(body=SPEND + WINTER + WEEKEND)
    score_transaction(scored, buy("t1", "m1", "2026-12-05 10:00", line(10000)))  # a Saturday
    entry = why_of(scored, "t1")
    assert entry.points == 150
    assert entry.why == "100 from 'spend 10 per 10.00' × 1.5 'weekend' (not stacked: × 1.2 'winter campaign')"


def test_stacked_multipliers_are_each_named_with_their_factor():
    stacking = SPEND.replace("[points.spend]", '[points]\nmultiplier_stacking = "multiply"\n\n[points.spend]')
    scored = book(body=stacking + WINTER + WEEKEND)
    score_transaction(scored, buy("t1", "m1", "2026-12-05 10:00", line(10000)))
    entry = why_of(scored, "t1")
    assert entry.points == 180
    assert entry.why == "100 from 'spend 10 per 10.00' × 1.2 'winter campaign' × 1.5 'weekend'"


def test_product_rules_the_spend_rule_and_per_order_points_each_have_their_part():
    body = SPEND.replace("[points.spend]", "[points]\nper_order = 5\n\n[points.spend]") + """
[[product_rules]]
priority = "product"
match = { category = ["wine"] }
mode = "percent"
percent = 5

[[product_rules]]
priority = "special"
match = { sku = ["TEA-PROMO"] }
mode = "fixed"
points = 50
"""
    scored = book(body=body)
    purchase = buy("t1", "m1", "2026-03-04 10:00", line(2000, sku="TEA-PROMO", quantity=2),
                   line(30000, category="wine"), line(2900))
    result = score_transaction(scored, purchase)
    assert result.points == 100 + 15 + 20 + 5
    assert why_of(scored, "t1").why == ("100 from 'special rule 2: TEA-PROMO, 50 each' + 15 from 'product rule 1: "
                                         "wine, 5%' + 20 from 'spend 10 per 10.00' + 5 per order")


def test_spend_carried_from_earlier_purchases_is_named():
    body = SPEND.replace("[points.spend]", '[points]\nrounding = "carry"\n\n[points.spend]')
    scored = book(body=body)
    for txn in (buy("t1", "m1", "2026-03-04 10:00", line(2900)), buy("t2", "m1", "2026-03-04 11:00", line(1200))):
        score_transaction(scored, txn)
    assert why_of(scored, "t2").why == "20 from 'spend 10 per 10.00' (with 9.00 carried)"


def test_the_anomaly_action_is_part_of_the_why():
    scored = book(body=SPEND + '[anomaly]\ndaily_points_threshold = 100\naction = "hold"\n')
    result = score_transaction(scored, buy("t1", "m1", "2026-03-04 10:00", line(15000)))
    entry = why_of(scored, "t1")
    assert (result.reason, entry.pending_points) == ("held", 150)
    assert entry.why == ("150 from 'spend 10 per 10.00'; held until an operator releases them "
                         "(daily threshold 100)")


def test_a_tier_that_earns_no_points_says_so_and_an_event_names_its_type():
    tiers = '[[tiers]]\nname = "Staff"\nearns_points = false\n'
    scored = book(body=SPEND + '[growth]\nsource = "spend"\nunit_minor = 100\nper_unit = 1\n', tiers=tiers)
    score_transaction(scored, buy("t1", "m1", "2026-03-04 10:00", line(5000)))
    assert (why_of(scored, "t1").points, why_of(scored, "t1").why) == (0, "tier 'Staff' earns no points")
    events = book(body='[[events]]\ntype = "sign_in"\npoints = 5\ngrowth = 1\n')
    score_transaction(events, Transaction("e1", "m1", ms("2026-03-04 10:00"), "event", event_type="sign_in"))
    assert why_of(events, "e1").why == "5 from event 'sign_in'"


# --- the why adds up: read it back as arithmetic and compare with the points awarded

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _rules(stacking: str, rounding: str, per_order: int, factors: list[tuple[str, int]], threshold: int) -> str:
    multipliers = "".join(f'[[multipliers]]\nname = "m{i}"\nfactor = {tenths / 10}\nwhen = {{ weekdays = ["{day}"] }}\n'
                          for i, (day, tenths) in enumerate(factors))
    anomaly = f'[anomaly]\ndaily_points_threshold = {threshold}\naction = "hold"\n' if threshold else ""
    return f"""
[points]
rounding = "{rounding}"
per_order = {per_order}
multiplier_stacking = "{stacking}"

[points.spend]
unit_minor = 700
per_unit = 3

[[product_rules]]
priority = "product"
match = {{ category = ["wine"] }}
mode = "percent"
percent = 7.5

[[product_rules]]
priority = "product"
match = {{ sku = ["COFFEE"] }}
mode = "per_amount"
unit_minor = 300
per_unit = 2
{multipliers}{anomaly}"""


def _points_in(why: str, rounding: str) -> int:
    """The points a why describes: R(sum of parts × factors) + per order."""
    used = re.sub(r" \(not stacked:[^)]*\)", "", why.split(";", maxsplit=1)[0])
    parts = sum(int(n) for n in re.findall(r"(\d+) from '", used))
    factor = math.prod((Fraction(f) for f in re.findall(r"× ([\d.]+) '", used)), start=Fraction(1))
    per_order = sum(int(n) for n in re.findall(r"\+ (\d+) per order", used))
    scaled = parts * factor
    rounded = (2 * scaled.numerator + scaled.denominator) // (2 * scaled.denominator) if rounding == "half_up" \
        else scaled.numerator // scaled.denominator
    return rounded + per_order


basket = st.lists(st.tuples(st.sampled_from(("A", "COFFEE", "WINE")), st.integers(0, 40_000)), min_size=1, max_size=5)


@settings(max_examples=150, deadline=None)
@given(stacking=st.sampled_from(("max", "multiply")), rounding=st.sampled_from(("floor", "half_up", "carry")),
       per_order=st.integers(0, 20), threshold=st.sampled_from((0, 400)),
       factors=st.lists(st.tuples(st.sampled_from(_WEEKDAYS), st.integers(5, 40)), max_size=4),
       purchases=st.lists(st.tuples(st.integers(0, 6), basket), min_size=1, max_size=6))
def test_a_purchases_why_adds_up_to_its_points_and_names_every_multiplier_that_applied(
        stacking, rounding, per_order, threshold, factors, purchases):
    scored = Book(programme(body=_rules(stacking, rounding, per_order, factors, threshold)))
    for n, (weekday, items) in enumerate(purchases):
        day = date(2026, 3, 2 + weekday)  # 2 March 2026 is a Monday
        lines = [line(paid, sku=sku, category="wine" if sku == "WINE" else "") for sku, paid in items]
        result = score_transaction(scored, buy(f"t{n}", "m1", f"{day} 10:00", *lines))
        earned = [e for e in scored.ledger if e.ref == f"t{n}" and e.kind == "earn"]
        if not earned:
            assert result.points == 0
            continue
        entry = shown(scored, earned[0])
        assert entry.points + entry.pending_points == result.points == _points_in(entry.why, rounding), entry.why
        for i, (on, tenths) in enumerate(factors):
            if on == _WEEKDAYS[weekday]:
                assert f"× {Fraction(tenths, 10).numerator / Fraction(tenths, 10).denominator:g} 'm{i}'" in entry.why
        assert ("held until an operator releases them" in entry.why) == (result.reason == "held")
