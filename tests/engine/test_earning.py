"""What a paid purchase earns, step by step (docs/rules.md: how a purchase earns)."""

from datetime import date
from decimal import Decimal

import pytest

from engine.multipliers import MultiplierTable
from engine.rules import Multiplier, MultiplierWhen
from tests.builders import book, buy, line, refund, score

SPEND = """
[points.spend]
unit_minor = 1000
per_unit = 10
"""


def test_ten_points_per_ten_yuan_on_29_yuan_gives_20():
    results = score(book(body=SPEND), buy("t1", "m1", "2026-03-04 10:00", line(2900)))
    assert (results[0].outcome, results[0].points) == ("accepted", 20)


def test_half_up_rounding_rounds_the_half_unit_up():
    top = ""
    body = SPEND.replace("[points.spend]", '[points]\nrounding = "half_up"\n\n[points.spend]')
    results = score(book(top, body), buy("t1", "m1", "2026-03-04 10:00", line(2500)),
                    buy("t2", "m1", "2026-03-04 11:00", line(2499)))
    assert [r.points for r in results] == [30, 20]


def test_carry_keeps_spend_below_one_unit_for_the_next_purchase():
    body = SPEND.replace("[points.spend]", '[points]\nrounding = "carry"\n\n[points.spend]')
    results = score(book(body=body), buy("t1", "m1", "2026-03-04 10:00", line(2900)),
                    buy("t2", "m1", "2026-03-04 11:00", line(1200)))
    assert [r.points for r in results] == [20, 20]  # 29 -> 20 (9 carried); 9 + 12 = 21 -> 20


def test_a_refund_takes_its_spend_below_one_unit_out_of_the_carry():
    # buying under one unit and returning it built a carry that earned points (an outside probe)
    body = SPEND.replace("[points.spend]", '[points]\nrounding = "carry"\n\n[points.spend]')
    target = book(body=body)
    for n in range(3):
        score(target, buy(f"t{n}", "m1", "2026-03-04 10:00", line(999)),
              refund(f"r{n}", "m1", "2026-03-04 10:00", f"t{n}", 999))
    assert score(target, buy("t9", "m1", "2026-03-04 11:00", line(10)))[0].points == 0  # 0.10 net: 0
    # two purchases of 5.00, the second earning with the first's carry, then the first returned:
    # 10.00 more are needed before 10 points more (15.00 spent, 10 points), not 5.00
    other = book(body=body)
    score(other, buy("a", "m2", "2026-03-04 10:00", line(500)), buy("b", "m2", "2026-03-04 10:00", line(500)),
          refund("ra", "m2", "2026-03-04 11:00", "a", 500))
    assert [r.points for r in score(other, buy("c", "m2", "2026-03-04 12:00", line(500)),
                                    buy("d", "m2", "2026-03-04 12:00", line(500)))] == [0, 0]
    assert other.members["m2"].points == 10


def test_a_full_refund_of_a_purchase_that_completed_a_unit_gives_back_the_carry_it_took():
    """5.00, then 5.00 more (a unit: 10 points), then the second returned: the member is as after
    the first, and the next 5.00 completes the unit again. The refund took the second's 5.00 out
    of the carry though its 10 points were reversed whole: 20.00 kept earned 10 (an outside probe)."""
    body = SPEND.replace("[points.spend]", '[points]\nrounding = "carry"\n\n[points.spend]')
    target = book(body=body)
    score(target, buy("a", "m1", "2026-03-04 10:00", line(500)), buy("b", "m1", "2026-03-04 10:00", line(500)),
          refund("rb", "m1", "2026-03-04 11:00", "b", 500))
    assert target.members["m1"].carry_minor == 500
    assert [r.points for r in score(target, buy("c", "m1", "2026-03-04 12:00", line(500)),
                                     buy("d", "m1", "2026-03-04 12:00", line(500)),
                                     buy("e", "m1", "2026-03-04 12:00", line(500)))] == [10, 0, 10]
    assert target.members["m1"].points == 20  # 20.00 kept


def test_refunds_of_a_purchase_in_parts_move_the_carry_back_in_proportion_and_whole_at_the_end():
    body = SPEND.replace("[points.spend]", '[points]\nrounding = "carry"\n\n[points.spend]')
    target = book(body=body)
    score(target, buy("a", "m1", "2026-03-04 10:00", line(700)), buy("b", "m1", "2026-03-04 10:00", line(2600)))
    member = target.members["m1"]
    assert (member.points, member.carry_minor) == (30, 300)  # 7.00 + 26.00: 30 points, 3.00 carried
    score(target, refund("r1", "m1", "2026-03-04 11:00", "b", 1300))
    assert (member.points, member.carry_minor) == (15, 500)  # half of b's move of the carry (-4.00) back
    score(target, refund("r2", "m1", "2026-03-04 11:00", "b", 1300))
    assert (member.points, member.carry_minor) == (0, 700)  # as after a alone


def test_a_purchase_recorded_before_its_move_of_the_carry_was_kept_is_refunded_as_then():
    body = SPEND.replace("[points.spend]", '[points]\nrounding = "carry"\n\n[points.spend]')
    target = book(body=body)
    score(target, buy("a", "m1", "2026-03-04 10:00", line(500)), buy("b", "m1", "2026-03-04 10:00", line(500)))
    target.txns[("m1", "b")].carry_moved = None  # as an index record written before the field read
    score(target, refund("rb", "m1", "2026-03-04 11:00", "b", 500))
    assert target.members["m1"].carry_minor == -500  # its spend below one unit out of the carry


def test_a_purchase_made_before_the_programme_carried_moves_no_carry_when_refunded():
    target = book(body=SPEND)
    score(target, buy("a", "m1", "2026-03-04 10:00", line(2900)))
    target.programme.carries = True  # the rules now carry: a's refund took 9.00 out of a carry it never made
    score(target, refund("ra", "m1", "2026-03-04 11:00", "a", 2900))
    assert target.members["m1"].carry_minor == 0


def test_blacklisted_lines_and_lines_without_barcode_do_not_earn():
    body = SPEND + """
[filters]
no_barcode_lines_earn = false
[filters.blacklist]
category = ["infant_formula"]
name_contains = ["deposit"]
"""
    purchase = buy("t1", "m1", "2026-03-04 10:00", line(5000), line(9000, category="infant_formula"),
                   line(3000, sku=""), line(2000, name="Bottle DEPOSIT"))
    assert score(book(body=body), purchase)[0].points == 50


def test_a_whitelist_lets_only_matching_lines_earn():
    body = SPEND + '[filters.whitelist]\nproduct_id = ["P-1"]\n'
    purchase = buy("t1", "m1", "2026-03-04 10:00", line(5000, product_id="P-1"), line(9000, product_id="P-2"))
    assert score(book(body=body), purchase)[0].points == 50


@pytest.mark.parametrize(("flag", "field"), [("promotional_lines_earn", "promotional"),
                                             ("member_discounted_lines_earn", "member_discounted")])
def test_programme_flags_can_stop_promotional_and_discounted_lines_earning(flag, field):
    body = SPEND + f"[filters]\n{flag} = false\n"
    purchase = buy("t1", "m1", "2026-03-04 10:00", line(5000), line(5000, **{field: True}))
    assert score(book(body=body), purchase)[0].points == 50


PRODUCT_RULES = SPEND + """
[[product_rules]]
priority = "product"
match = { category = ["tea"] }
mode = "percent"
percent = 5

[[product_rules]]
priority = "special"
match = { sku = ["TEA-PROMO"] }
mode = "fixed"
points = 50

[[product_rules]]
priority = "product"
match = { product_id = ["P-COFFEE"] }
mode = "per_amount"
unit_minor = 500
per_unit = 10
"""


def test_a_special_rule_wins_over_a_product_rule_that_matches_first_in_the_file():
    purchase = buy("t1", "m1", "2026-03-04 10:00", line(100, sku="TEA-PROMO", category="tea", quantity=2))
    assert score(book(body=PRODUCT_RULES), purchase)[0].points == 100  # fixed 50 x quantity 2


def test_percent_rules_give_a_share_of_the_price_in_major_units():
    purchase = buy("t1", "m1", "2026-03-04 10:00", line(10000, sku="OOLONG", category="tea"))
    assert score(book(body=PRODUCT_RULES), purchase)[0].points == 5  # 5% of 100 yuan


def test_per_amount_rules_round_once_per_line():
    purchase = buy("t1", "m1", "2026-03-04 10:00", line(1200, product_id="P-COFFEE"))
    assert score(book(body=PRODUCT_RULES), purchase)[0].points == 20  # floor(1200/500) x 10


def test_lines_claimed_by_product_rules_do_not_also_earn_by_spend():
    purchase = buy("t1", "m1", "2026-03-04 10:00", line(1200, product_id="P-COFFEE"), line(2900))
    assert score(book(body=PRODUCT_RULES), purchase)[0].points == 20 + 20


MULTIPLIERS = SPEND + """
[[multipliers]]
name = "double eleven"
factor = 3.0
when = { dates = ["2026-11-11", "2028-11-11"] }

[[multipliers]]
name = "weekend"
factor = 1.5
when = { weekdays = ["sat", "sun"] }
"""


def test_multipliers_use_the_local_date_of_the_purchase():
    # 15:59 UTC on Friday 6 March is 23:59 Friday in Shanghai; 16:01 UTC is Saturday
    results = score(book(body=MULTIPLIERS), buy("t1", "m1", "2026-03-06 23:59", line(2900)),
                    buy("t2", "m1", "2026-03-07 00:01", line(2900)))
    assert [r.points for r in results] == [20, 30]


def test_multipliers_combine_by_max_unless_the_programme_multiplies():
    # 11 November 2028 is a Saturday: double eleven (3) and weekend (1.5) both apply
    purchase = buy("t1", "m1", "2028-11-11 12:00", line(10000))
    assert score(book(body=MULTIPLIERS), purchase)[0].points == 300
    multiplying = '[points]\nmultiplier_stacking = "multiply"\n' + MULTIPLIERS
    assert score(book(body=multiplying), purchase)[0].points == 450


def test_per_order_points_are_added_after_multiplying():
    body = '[points]\nper_order = 7\n' + MULTIPLIERS
    assert score(book(body=body), buy("t1", "m1", "2026-03-07 12:00", line(2900)))[0].points == 30 + 7


def test_the_factor_is_applied_with_one_rounding_step_on_the_whole_purchase():
    body = MULTIPLIERS.replace("factor = 1.5", "factor = 1.25")
    purchase = buy("t1", "m1", "2026-03-07 12:00", line(1000), line(1000), line(1000))
    assert score(book(body=body), purchase)[0].points == 37  # floor(30 x 1.25), not 3 x floor(12.5)


def test_birthday_multipliers_apply_on_the_members_birthday():
    from engine.members import Member, Profile

    body = SPEND + '[[multipliers]]\nname = "birthday"\nfactor = 2\nwhen = { birthday = "day" }\n'
    target = book(body=body)
    target.members["m1"] = Member("m1", 0, profile=Profile(birthday="03-05"))
    results = score(target, buy("t1", "m1", "2026-03-05 12:00", line(2900)),
                    buy("t2", "m1", "2026-03-06 12:00", line(2900)))
    assert [r.points for r in results] == [40, 20]


def test_growth_follows_the_points_actually_awarded_by_default():
    body = SPEND + "[growth]\nper_point = 0.5\n"
    result = score(book(body=body), buy("t1", "m1", "2026-03-04 10:00", line(2900)))[0]
    assert (result.points, result.growth) == (20, 10)


def test_growth_from_spend_has_its_own_rule_over_every_eligible_line():
    body = PRODUCT_RULES + '[growth]\nsource = "spend"\nunit_minor = 100\nper_unit = 1\n'
    result = score(book(body=body), buy("t1", "m1", "2026-03-04 10:00", line(1200, product_id="P-COFFEE")))[0]
    assert (result.points, result.growth) == (20, 12)


def test_a_tier_that_does_not_earn_points_gets_none():
    tiers = '[[tiers]]\nname = "Staff"\nearns_points = false\n'
    result = score(book(body=SPEND, tiers=tiers), buy("t1", "m1", "2026-03-04 10:00", line(2900)))[0]
    assert (result.outcome, result.points) == ("accepted", 0)


def test_a_purchase_without_lines_earns_on_its_amount_by_the_spend_rule():
    from engine.transactions import Transaction
    from tests.builders import ms

    purchase = Transaction("t1", "m1", ms("2026-03-04 10:00"), "purchase", amount_minor=2900)
    assert score(book(body=SPEND), purchase)[0].points == 20


def test_a_multiplier_table_answers_as_its_rules_before_and_after_it_forgets():
    """The table remembers answers by day, tier and birthday and forgets them all past its bound
    (engine/multipliers.py): what it answers is always what its rules make of the question."""
    gold = Multiplier(name="gold", factor=Decimal(2), when=MultiplierWhen(tiers=["Gold"]))
    birthday = Multiplier(name="birthday", factor=Decimal(3), when=MultiplierWhen(birthday="day"))
    table = MultiplierTable([gold, birthday], "multiply")
    day = date(2026, 3, 4).toordinal()
    asked = [(day + d, tier, born) for d in (0, 1) for tier in ("Gold", "Basic") for born in ("03-04", "03-05", "")]
    for question in asked * 2:
        assert table.factor(*question) == table._combine(*question), question
    assert table.factor(day, "Gold", "03-04") == (6, 1, (0, 1))
    table._held = 100_001  # as many answers as it keeps
    assert table.factor(day, "Basic", "03-05") == (1, 1, ())
    assert table._held == 1
    assert list(table._cache) == [day]


def test_a_multiplier_table_that_fails_to_answer_remembers_nothing():
    """An error while working out an answer (here a birthday that is not MM-DD, which no decoder
    lets through) leaves the table's memory as it was: no empty dict for its day or tier, which
    would be held uncounted by the table's bound (engine/multipliers.py)."""
    birthday = Multiplier(name="birthday", factor=Decimal(3), when=MultiplierWhen(birthday="day"))
    table = MultiplierTable([birthday], "max")
    day = date(2026, 3, 4).toordinal()
    with pytest.raises(ValueError, match="invalid literal for int"):
        table.factor(day, "Gold", "ab-cd")
    assert (table._cache, table._held) == ({}, 0)
    assert table.factor(day, "Gold", "03-04") == (3, 1, (0,))
    held = {d: {t: dict(b) for t, b in tiers.items()} for d, tiers in table._cache.items()}
    for question in ((day, "Gold", "ab-cd"), (day, "Basic", "ab-cd"), (day + 1, "Gold", "ab-cd")):
        with pytest.raises(ValueError, match="invalid literal for int"):
            table.factor(*question)
        assert (table._cache, table._held) == (held, 1), question
    assert table.factor(day, "Gold", "03-04") == (3, 1, (0,))
