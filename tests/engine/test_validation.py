"""Rules documents: the example loads as it is; every problem is named by its key path."""

import re
from pathlib import Path

import pytest

from engine.errors import RulesError
from engine.rules import CashRules
from engine.validation import load_rules, load_rules_file

REPO_EXAMPLE = Path(__file__).parents[2] / "examples" / "rules.toml"


def problems(text: str) -> list[str]:
    with pytest.raises(RulesError) as raised:
        load_rules(text)
    return raised.value.problems


def example_with(old: str, new: str) -> str:
    text = REPO_EXAMPLE.read_text()
    assert old in text, old
    return text.replace(old, new, 1)


def test_the_example_rules_load_as_they_are():
    rules = load_rules_file(REPO_EXAMPLE)
    assert [t.name for t in rules.tiers] == ["Basic", "Silver", "Gold"]


def test_a_bad_window_names_its_path_what_was_expected_and_what_was_found():
    assert problems(example_with('window = "3 months"', 'window = "3 weeks"')) == [
        'tiers[2].window: expected "lifetime", "N months" or "N days" (N from 1 to 9,999), got "3 weeks"']


def test_an_unknown_key_is_an_error_that_lists_the_known_ones():
    assert problems(example_with("per_order = 0", "per_order = 0\nper_ordr = 1")) == [
        "points.per_ordr: unknown key; expected one of rounding, per_order, pending_days, "
        "multiplier_stacking, spend, expiry"]


def test_every_problem_is_reported_not_only_the_first():
    text = example_with('rounding = "floor"', 'rounding = "round"')
    text = text.replace("threshold = 10000\n", 'threshold = "lots"\n', 1)
    text = text.replace("factor = 1.5", "factor = -1", 1)
    assert problems(text) == [
        'points.rounding: expected "floor", "half_up" or "carry", got "round"',
        "multipliers[3].factor: expected a number greater than 0, got -1",
        'tiers[1].threshold: expected an integer from 0 to 1,000,000,000,000,000, got "lots"',
    ]


def test_a_wrong_key_holds_back_the_checks_of_its_own_table_not_of_the_tables_within():
    """`points.rounding` wrong hid that `points.expiry` lacked its years until it was fixed (an outside
    probe); a check of the wrong key's own table, which may read the key's stand-in, still waits."""
    text = example_with('rounding = "floor"', 'rounding = "round"')
    text = text.replace("years = 1                           #", "#", 1)
    assert problems(text) == [
        'points.rounding: expected "floor", "half_up" or "carry", got "round"',
        'points.expiry.years: missing; expected an integer with policy "jan1_after_years"',
    ]
    # the table's own check waits: with its sku dropped, the match would "name nothing" (a reviewer)
    assert problems(example_with('match = { sku = ["TEA-PROMO"] }', 'match = { sku = "TEA-PROMO" }')) == [
        'product_rules[0].match.sku: expected a list of a string, got "TEA-PROMO"']


def test_tiers_judged_on_the_same_metric_and_window_must_ask_more_the_higher_they_are():
    text = example_with('metric = "spend"\nwindow = "3 months"', 'metric = "growth"\nwindow = "lifetime"')
    text = text.replace("threshold = 1000000                 #", "threshold = 5000 #")
    text = text.replace('validity = "12 months"', 'validity = "permanent"').replace("extension = {", "# {")
    assert problems(text) == [
        'tiers[2].threshold: tiers go from lowest to highest, so it must be above 10000 (tier "Silver"), got 5000']


def test_a_missing_required_key_is_named():
    assert problems('version = 1\nprogramme = "x"\n[[tiers]]\nname = "Basic"\n') == [
        "timezone: missing; expected a string"]


@pytest.mark.parametrize(("old", "new", "problem"), [
    ('# downgrade_to = "Silver"', 'downgrade_to = "Gold"',
     'tiers[2].downgrade_to: expected the name of a lower tier ("Basic" or "Silver"), got "Gold"'),
    ('when = { tiers = ["Gold"] }', 'when = { tiers = ["Platinum"] }',
     'multipliers[0].when.tiers: expected names of tiers ("Basic", "Silver" or "Gold"), got "Platinum"'),
    ('timezone = "Asia/Shanghai"', 'timezone = "Mars/Olympus"',
     'timezone: expected an IANA timezone name such as "Asia/Shanghai", got "Mars/Olympus"'),
    ('years = 1                           #', '#',
     'points.expiry.years: missing; expected an integer with policy "jan1_after_years"'),
    ('validity = "permanent"              #', 'validity = "12 months" #',
     'tiers[1].validity: a tier reached on a lifetime metric is permanent; expected "permanent", got "12 months"'),
    ('validity = "12 months"', 'validity = "1 year"',
     'tiers[2].validity: expected "permanent", "N days", "N months" or "N months end_of_month" (N from 1 to 9,999), '
     'got "1 year"'),
    ('type = "review"', 'type = "sign_in"',
     'events[1].type: expected a unique, non-empty event type, got "sign_in"'),
    ('when = { from = "2026-12-01", to = "2026-12-24" }', 'when = { from = "2026-12-24", to = "2026-12-01" }',
     'multipliers[4].when.to: expected a date on or after from (2026-12-24), got 2026-12-01'),
    ('when = { dates = ["2026-11-11"] }', 'when = { dates = ["11/11/2026"] }',
     'multipliers[2].when.dates[0]: expected a date (YYYY-MM-DD), got "11/11/2026"'),
])
def test_cross_field_problems_name_the_key(old, new, problem):
    assert problems(example_with(old, new)) == [problem]


@pytest.mark.parametrize(("old", "new", "problem"), [
    ('name = "Basic"\n', 'name = "Basic"\nvalidity = "3 days"\neffective = "next_day"\n',
     'tiers[0]: the lowest tier is never reached, left or extended: it is permanent; remove validity, effective'),
    # an empty list held on every day as weekdays and on none as dates
    ('when = { weekdays = ["sat", "sun"] }', 'when = { weekdays = [] }',
     'multipliers[3].when.weekdays: expected at least one, got an empty list (leave the key out for no '
     'condition on it)'),
    ('when = { dates = ["2026-11-11"] }', 'when = { dates = [] }',
     'multipliers[2].when.dates: expected at least one, got an empty list (leave the key out for no condition on it)'),
    ('name_contains = ["deposit"]', 'name_contains = ["deposit", ""]',
     'filters.blacklist.name_contains[1]: expected a piece of a product name, got an empty text (it is in every name)'),
    # outside probe of the rules: a host's own clock setting as the programme's zone; an empty
    # programme name; two tiers one case apart; a permanent tier's downgrade_to (it never ends)
    ('timezone = "Asia/Shanghai"', 'timezone = "localtime"',
     'timezone: expected an IANA timezone name such as "Asia/Shanghai", got "localtime" (it names the host\'s own '
     'setting or a variant of the tz database, not a place)'),
    ('programme = "Demo Retail"', 'programme = " "', 'programme: expected the programme\'s name, got " "'),
    ('validity = "permanent"              #', 'downgrade_to = "Basic"\nvalidity = "permanent" #',
     'tiers[1].downgrade_to: a permanent tier never ends, so it is never left for another; give it a validity or '
     'remove downgrade_to'),
    # an outside probe: an upgrade coupon listing its tier twice was issued twice at each upgrade
    ('issue_on = "upgrade"\ntiers = ["Gold"]', 'issue_on = "upgrade"\ntiers = ["Gold", "Silver", "Gold"]',
     'coupons[2].tiers[2]: "Gold" is listed twice; list each tier once'),
    ('tiers = []                          # tiers that may use it', 'tiers = ["Gold", "Gold"] #',
     'recharge_bonuses[0].tiers[1]: "Gold" is listed twice; list each tier once'),
    ('when = { tiers = ["Gold"] }', 'when = { tiers = ["Gold", "Gold"] }',
     'multipliers[0].when.tiers[1]: "Gold" is listed twice; list each tier once'),
    # an outside probe: the empty channel is that of every transaction sent without one
    ('default_tier_by_channel = { pos = "Basic",', 'default_tier_by_channel = { "" = "Gold", pos = "Basic",',
     'default_tier_by_channel."": expected the name of a channel, got an empty text (a new member without a '
     'channel starts in the lowest tier; it cannot be given another)'),
    ('default_tier_by_channel = { pos = "Basic",', 'default_tier_by_channel = { " \\u200b" = "Gold", pos = "Basic",',
     'default_tier_by_channel." \\u200B": expected the name of a channel, got only spaces (a new member without '
     'a channel starts in the lowest tier; it cannot be given another)'),
    # an outside probe: keys that act only when a member goes up, naming the tier none is below,
    # and growth per point where growth comes from spend
    ('issue_on = "upgrade"\ntiers = ["Gold"]', 'issue_on = "upgrade"\ntiers = ["Basic", "Gold"]',
     'coupons[2].tiers[0]: "Basic" is the lowest tier, which no upgrade enters, so it would never issue the coupon; '
     'remove it'),
    ('upgrade_to = "Silver"', 'upgrade_to = "Basic"',
     'recharge_bonuses[0].upgrade_to: "Basic" is the lowest tier, which no member is below, so it would never move '
     'anyone; remove upgrade_to'),
    ('source = "points"                   # points | spend\nper_point = 1',
     'source = "spend"\nper_point = 1\nunit_minor = 1000\nper_unit = 10',
     'growth.per_point: not used with source = "spend" (growth comes from unit_minor and per_unit); remove it'),
    # an outside probe: names and ids no one can read, named in ledgers, calls and the why of points
    ('id = "WELCOME10"', 'id = " "',
     'coupons[0].id: expected text one can read (not only spaces or invisible characters), got " "'),
    ('type = "review"', 'type = "\u200b"',
     'events[1].type: expected text one can read (not only spaces or invisible characters), got "\\u200B"'),
    ('name = "birthday"', 'name = ""',
     'multipliers[1].name: expected text one can read (not only spaces or invisible characters), got ""'),
    ('gift_sku = "CAKE-01"', 'gift_sku = " "',
     'coupons[3].gift_sku: expected text one can read (not only spaces or invisible characters), got " "'),
    ('name = "lapsed"', 'name = "  "',
     'tags[0].name: expected text one can read (not only spaces or invisible characters), got "  "'),
    # an outside probe: a control character inside a name, carried into ledgers, reports and exports
    ('name = "lapsed"', 'name = "lap\\tsed"',
     'tags[0].name: "lap\\tsed" holds a control character (a tab, a line break, a NUL); remove it'),
    ('type = "review"', 'type = "re\\nview"',
     'events[1].type: "re\\nview" holds a control character (a tab, a line break, a NUL); remove it'),
    ('id = "WELCOME10"', 'id = "WELCOME\\u000010"',
     'coupons[0].id: "WELCOME\\u000010" holds a control character (a tab, a line break, a NUL); remove it'),
])
def test_keys_that_did_nothing_are_refused_in_a_new_version_and_still_read_in_a_stored_one(old, new, problem):
    # an outside probe: each was accepted and did nothing, or did something else than it said
    text = example_with(old, new)
    with pytest.raises(RulesError) as raised:
        load_rules(text, new=True)
    assert raised.value.problems == [problem]
    assert load_rules(text).tiers  # a data folder's stored version still loads at start


def test_two_tiers_one_case_apart_are_refused_in_a_new_version():
    text = example_with('name = "Silver"', 'name = "basic"').replace('upgrade_to = "Silver"', 'upgrade_to = "basic"')
    with pytest.raises(RulesError) as raised:
        load_rules(text, new=True)
    assert raised.value.problems == [
        'tiers[1].name: "basic" differs from the earlier tier "Basic" only in case; name them apart']
    assert load_rules(text).tiers


@pytest.mark.parametrize(("silver", "gold", "problem"), [
    ("Café", "Cafe\\u0301",  # composed, and with a combining accent: one text to a reader
     'tiers[2].name: "Cafe\u0301" differs from the earlier tier "Café" only in how Unicode writes its characters; '
     'name them apart'),
    ("Silver", "\\uFF53ILVER",  # a fullwidth s
     'tiers[2].name: "\uff53ILVER" differs from the earlier tier "Silver" only in how Unicode writes its characters; '
     'name them apart'),
    (" Silver", "Gold", 'tiers[1].name: " Silver" begins or ends with a space or an invisible character; remove it'),
    ("Silver\\u200b", "Gold",
     'tiers[1].name: "Silver\\u200B" begins or ends with a space or an invisible character; remove it'),
    ("\\u200b\\u2060", "Gold", 'tiers[1].name: expected a non-empty name, got "\\u200B\\u2060"'),
    ("Sil\\u0085ver", "Gold",  # a control character inside; at an end it is told once, as padding
     'tiers[1].name: "Sil\\u0085ver" holds a control character (a tab, a line break, a NUL); remove it'),
    ("Silver\\t", "Gold",
     'tiers[1].name: "Silver\\t" begins or ends with a space or an invisible character; remove it'),
    ("Sil\\tver ", "Gold",
     ['tiers[1].name: "Sil\\tver " begins or ends with a space or an invisible character; remove it',
      'tiers[1].name: "Sil\\tver " holds a control character (a tab, a line break, a NUL); remove it']),
])
def test_tier_names_that_look_alike_or_end_in_something_unseen_are_refused_in_a_new_version(silver, gold, problem):
    """An outside probe: each was two tiers to patron and one to a reader, or a tier no one could
    name by what they see (names apart only in case were refused already)."""
    text = REPO_EXAMPLE.read_text().replace('"Silver"', f'"{silver}"').replace('"Gold"', f'"{gold}"')
    with pytest.raises(RulesError) as raised:
        load_rules(text, new=True)
    assert raised.value.problems == (problem if isinstance(problem, list) else [problem])  # all at once
    assert load_rules(text).tiers  # a stored version still loads


def test_a_mode_lists_every_key_it_misses_and_every_key_it_does_not_use():
    assert problems(example_with('mode = "percent"', 'mode = "per_amount"')) == [
        'product_rules[1].unit_minor: missing; expected a number with mode "per_amount"',
        'product_rules[1].per_unit: missing; expected a number with mode "per_amount"',
        'product_rules[1].percent: not used with mode "per_amount"; remove it',
    ]


def test_a_key_of_another_mode_is_named():
    assert problems(example_with("percent = 5", "unit_minor = 100")) == [
        'product_rules[1].unit_minor: not used with mode "percent"; remove it',
        'product_rules[1].percent: missing; expected a number with mode "percent"',
    ]


def test_a_document_that_is_not_toml_says_so():
    assert problems("version = = 1")[0].startswith("not a TOML document: ")


@pytest.mark.parametrize(("old", "new", "problem"), [
    ("version = 1", f"version = {'9' * 5000}", "version (line 17): a number of 5,000 digits, too long to read"),
    ("days_of_month = []", f"days_of_month = [\n  1,\n  {'9_' * 4400}9]",
     "line 165: a number of 4,401 digits, too long to read"),  # in a list: its line
])
def test_a_number_too_long_to_read_names_its_key_or_line(old, new, problem):
    """Python's message said "Exceeds the limit (4300 digits)... use sys.set_int_max_str_digits()",
    which no retailer can act on (an outside probe)."""
    assert problems(example_with(old, new)) == [f"{problem}; a rules document's numbers have at most 31 digits"]


def test_a_missing_file_is_a_rules_error_not_a_crash(tmp_path):
    with pytest.raises(RulesError, match="cannot read the rules file"):
        load_rules_file(tmp_path / "absent.toml")


def test_the_repo_example_carries_every_spending_table():
    rules = load_rules_file(REPO_EXAMPLE)
    assert rules.redemption.cash == CashRules(mode="ratio", points_per_unit=100, unit_minor=100, max_share_percent=50)
    assert [c.id for c in rules.coupons] == ["WELCOME10", "RECHARGE20", "GOLD-WINE", "BIRTHDAY-CAKE"]
    assert [b.upgrade_to for b in rules.recharge_bonuses] == ["Silver", None]
    assert [t.name for t in rules.tags] == ["lapsed", "regular", "big spender"]
    assert [t.discount_percent for t in rules.tiers] == [100, 95, 90]
    assert rules.default_tier_by_channel == {"pos": "Basic", "online": "Basic"}


def test_problems_in_separate_tables_are_all_reported_in_one_pass():
    text = example_with('timezone = "Asia/Shanghai"', 'timezone = "Mars/Olympus"')
    text = text.replace('type = "review"', 'type = "sign_in"', 1)
    text = text.replace('rounding = "floor"', 'rounding = "round"', 1)
    text = text.replace('coupons = ["RECHARGE20"]', 'coupons = ["NOPE"]', 1)
    assert problems(text) == [
        'points.rounding: expected "floor", "half_up" or "carry", got "round"',
        'timezone: expected an IANA timezone name such as "Asia/Shanghai", got "Mars/Olympus"',
        'events[1].type: expected a unique, non-empty event type, got "sign_in"',
        'recharge_bonuses[0].coupons[0]: expected the name of one of the coupons ("WELCOME10", "RECHARGE20", '
        '"GOLD-WINE" or "BIRTHDAY-CAKE"), got "NOPE"',
    ]


def test_a_wrong_key_holds_back_only_the_checks_of_its_own_table():
    # the window is wrong, so whether this tier may have a validity waits for it to be fixed
    assert problems(example_with('window = "3 months"\nthreshold = 1000000', 'window = 3\nthreshold = 1000000')) == [
        'tiers[2].window: expected "lifetime", "N months" or "N days" (N from 1 to 9,999), got 3']


def test_a_missing_required_key_still_lets_the_other_tables_be_checked():
    text = example_with('name = "recharge 100, get 10"\n', "")
    text = text.replace('upgrade_to = "Silver"', 'upgrade_to = "Platinum"')
    assert problems(text) == [
        "recharge_bonuses[1].name: missing; expected a string",
        'recharge_bonuses[0].upgrade_to: expected the name of a tier ("Basic", "Silver" or "Gold"), got "Platinum"',
    ]


TIERED = """[redemption.cash]
mode = "tiered"
max_share_percent = 100
[[redemption.cash.steps]]
points = 1000
value_minor = 1000
[[redemption.cash.steps]]
points = 5000
value_minor = 6000
"""
RATIO = """[redemption.cash]                   # points as cash at the till
mode = "ratio"                      # ratio | tiered
points_per_unit = 100               # ratio: 100 points buy one unit...
unit_minor = 100                    # ...worth 1.00
max_share_percent = 50              # at most half of the order
"""


def test_tiered_points_as_cash_loads_with_ascending_steps():
    rules = load_rules(example_with(RATIO, TIERED))
    assert [(s.points, s.value_minor) for s in rules.redemption.cash.steps] == [(1000, 1000), (5000, 6000)]


@pytest.mark.parametrize(("old", "new", "expected"), [
    # points as cash
    (RATIO, TIERED.replace("points = 5000", "points = 900"),
     ["redemption.cash.steps[1]: steps go from fewest points to most, each worth more; expected more than "
      "1000 points and 1000 minor, got 900 and 6000"]),
    (RATIO, '[redemption.cash]\nmode = "tiered"\npoints_per_unit = 100\n',
     ['redemption.cash.points_per_unit: not used with mode "tiered"; remove it',
      'redemption.cash.steps: missing; expected at least one step with mode "tiered"']),
    ("unit_minor = 100                    # ...worth 1.00", "",
     ['redemption.cash.unit_minor: missing; expected an integer with mode "ratio"']),
    ("max_share_percent = 50", "max_share_percent = 0",
     ["redemption.cash.max_share_percent: expected an integer from 1 to 100, got 0"]),
    ("days_of_month = []", "days_of_month = [32]",
     ["redemption.days_of_month[0]: expected an integer from 1 to 31, got 32"]),
    ('weekdays = []                       # "mon"', 'weekdays = ["monday"] #',
     ['redemption.weekdays[0]: expected "mon", "tue", "wed", "thu", "fri", "sat" or "sun", got "monday"']),
    ("fixed_amounts = []", "fixed_amounts = [10000, 20000, 10000]",
     ["stored_value.fixed_amounts[2]: 10000 is listed twice"]),
    # recharge bonuses
    ('tiers = []                          # tiers that may use it', 'tiers = ["Platinum"] #',
     ['recharge_bonuses[0].tiers[0]: expected the name of one of the tiers ("Basic", "Silver" or "Gold"), '
      'got "Platinum"']),
    ('from = "2026-12-01"\nto = "2027-02-28"', 'from = "2027-03-01"\nto = "2027-02-28"',
     ["recharge_bonuses[0].to: expected a date on or after from (2027-03-01), got 2027-02-28"]),
    ('name = "recharge 100, get 10"', 'name = "recharge 500, get 80"',
     ['recharge_bonuses[1].name: expected a unique, non-empty name, got "recharge 500, get 80"']),
    ("min_amount_minor = 10000", "min_amount_minor = 0",
     ["recharge_bonuses[1].min_amount_minor: expected an integer from 1 to 1,000,000,000,000,000, got 0"]),
    # coupons
    ("valid_after_days = 1                # relative", 'valid_from = "2026-12-01" #',
     ["coupons[0]: a validity is fixed (valid_from, valid_to) or relative (valid_after_days, valid_days), "
      "not both; remove one"]),
    ('valid_to = "2027-03-31"', 'valid_to = "2026-11-30"',
     ["coupons[2].valid_to: expected a date on or after valid_from (2026-12-01), got 2026-11-30"]),
    ('valid_to = "2027-03-31"', "",
     ["coupons[2].valid_to: missing; expected a date with a fixed validity"]),
    ("valid_days = 14", "",
     ["coupons[3]: missing validity; expected valid_from and valid_to, or valid_days (and valid_after_days)"]),
    ("value_minor = 1000                  # voucher", "percent = 90 #",
     ['coupons[0].value_minor: missing; expected it with kind "voucher"',
      'coupons[0].percent: not used with kind "voucher"; remove it']),
    ("percent = 80", "percent = 100",
     ["coupons[2].percent: expected an integer from 1 to 99, got 100"]),
    ('gift_sku = "CAKE-01"', 'gift_sku = ""',
     ['coupons[3].gift_sku: missing; expected it with kind "gift"']),
    ('id = "RECHARGE20"', 'id = "WELCOME10"',
     ['coupons[1].id: expected a unique, non-empty id, got "WELCOME10"',
      'recharge_bonuses[0].coupons[0]: expected the name of one of the coupons ("WELCOME10", "GOLD-WINE" or '
      '"BIRTHDAY-CAKE"), got "RECHARGE20"']),
    ("inventory = 1000000 ", "inventory = 10000000000 ",
     ["coupons[0].inventory: expected an integer from 0 to 9,999,999,999, got 10000000000"]),
    ('issue_on = "upgrade"\ntiers = ["Gold"]', 'issue_on = "upgrade"\ntiers = ["Diamond"]',
     ['coupons[2].tiers[0]: expected the name of one of the tiers ("Basic", "Silver" or "Gold"), got "Diamond"']),
    ('issue_on = "upgrade"\ntiers = ["Gold"]', 'issue_on = "upgrade"',
     ['coupons[2].tiers: missing; expected the tiers whose upgrade issues it, with issue_on = "upgrade"']),
    ('issue_on = "enroll"', 'issue_on = "enroll"\ntiers = ["Gold"]',
     ['coupons[0].tiers: used only with issue_on = "upgrade"; remove it']),
    ('issue_on = "enroll"', 'issue_on = "birthday"',
     ['coupons[0].issue_on: expected "api", "enroll" or "upgrade", got "birthday"']),
    # tier benefits, tags, notices
    ("discount_percent = 95", "discount_percent = 0",
     ["tiers[1].discount_percent: expected an integer from 1 to 100, got 0"]),
    ('discount_excludes = { category = ["infant_formula"] }', 'discount_excludes = { brand = ["x"] }',
     ["tiers[1].discount_excludes.brand: unknown key; expected one of sku, category, name_contains, product_id"]),
    ("recency_days = 90", "recency_days = 90\nwindow = \"3 months\"",
     ["tags[0].window: not used with recency_days; remove it"]),
    ('purchases = 4                       # at least 4 paid purchases...\nwindow = "3 months"',
     "purchases = 4",
     ['tags[1].window: missing; expected "lifetime", "N months" or "N days" with purchases']),
    ("spend_minor = 500000", "spend_minor = 500000\npurchases = 3",
     ['tags[2]: expected exactly one of recency_days, purchases or spend_minor, got "purchases" or "spend_minor"']),
    ('name = "big spender"', 'name = "lapsed"',
     ['tags[2].name: expected a unique, non-empty name, got "lapsed"']),
    ("retention_days = 7", "retention_days = 0",
     ["notify.retention_days: expected an integer from 1 to 1,000,000, got 0"]),
    ("expiring_days = 30", "expiring_days = 30\nbirthday = 3",
     ["notify.birthday: unknown key; expected one of expiring_days, birthday_days_before, retention_days"]),
])
def test_spending_problems_name_the_key(old, new, expected):
    assert problems(example_with(old, new)) == expected


# Each was accepted and then raised in scoring, at midnight or at publishing (a review found them):
# a day count that carries a date past the year 9999 (expiry, a coupon's validity, a reminder, a
# birthday notice), an infinite decimal in Fraction, a NaN in validation's own comparison, an
# exponent in the millions (minutes to build the rules' fractions), a date-time in a date key.
# The day counts each stop at 1,000,000, a shared bound, not only where each would fail.
MILLION = "an integer from {} to 1,000,000, got {}"


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("years = 1 ", "years = 7973 ", ["points.expiry.years: expected an integer from 0 to 1,000, got 7973"]),
    ('policy = "jan1_after_years"         # never | jan1_after_years | rolling_days | annual_reset\nyears = 1',
     'policy = "rolling_days"\ndays = 3000000', ["points.expiry.days: expected " + MILLION.format(1, 3000000)]),
    ("valid_days = 30 ", "valid_days = 3000000 ", ["coupons[0].valid_days: expected " + MILLION.format(1, 3000000)]),
    ("valid_after_days = 1 ", "valid_after_days = 3000000 ",
     ["coupons[0].valid_after_days: expected " + MILLION.format(0, 3000000)]),
    ("expiring_days = 30", "expiring_days = 10000000",
     ["notify.expiring_days: expected " + MILLION.format(0, 10000000)]),
    ("birthday_days_before = 3", f"birthday_days_before = {10**15}",
     ["notify.birthday_days_before: expected " + MILLION.format(0, 10**15)]),
    ("pending_days = 0 ", "pending_days = 1000001 ", ["points.pending_days: expected " + MILLION.format(0, 1000001)]),
    ("recency_days = 90 ", "recency_days = 1000001 ", ["tags[0].recency_days: expected " + MILLION.format(1, 1000001)]),
    ("max_lateness_days = 7", "max_lateness_days = 1000001",
     ["max_lateness_days: expected " + MILLION.format(0, 1000001)]),
    ("factor = 2.0 ", "factor = inf ", ["multipliers[0].factor: expected a finite number greater than 0, got inf"]),
    ("factor = 2.0 ", "factor = nan ", ["multipliers[0].factor: expected a finite number greater than 0, got nan"]),
    ("factor = 2.0 ", "factor = -inf ", ["multipliers[0].factor: expected a finite number greater than 0, got -inf"]),
    ("factor = 2.0 ", "factor = 1e9999999 ", ["multipliers[0].factor: expected a number greater than 0 with at most "
                                             "31 digits before its point or 30 zeros after it, got 1E+9999999"]),
    # an outside probe: 1E-31 was told "greater than 0", 400 digits passed as an integer, and
    # 5,000 digits answered "unexpected ValueError"
    ("factor = 2.0 ", "factor = 1e-32 ", ["multipliers[0].factor: expected a number greater than 0 with at most "
                                          "31 digits before its point or 30 zeros after it, got 1E-32"]),
    ("factor = 2.0 ", "factor = 1e31 ", ["multipliers[0].factor: expected a number greater than 0 with at most "
                                         "31 digits before its point or 30 zeros after it, got 1E+31"]),  # 32 digits
    ("factor = 2.0 ", f"factor = {'9' * 32} ", ["multipliers[0].factor: expected a number greater than 0 with "
                                                f"at most 31 digits before its point or 30 zeros after it, got "
                                                f"{'9' * 32}"]),
    ("factor = 2.0 ", f"factor = {'9' * 400} ", ["multipliers[0].factor: expected a number greater than 0 with "
                                                 f"at most 31 digits before its point or 30 zeros after it, got "
                                                 f"{'9' * 400}"]),
    ("per_point = 1 ", "per_point = inf ", ["growth.per_point: expected a finite number of at least 0, got inf"]),
    ('from = "2026-12-01"', "from = 2026-12-01T10:00:00",
     ["multipliers[4].when.from: expected a date (YYYY-MM-DD), got 2026-12-01 10:00:00"]),
])
def test_day_counts_and_decimals_beyond_what_can_be_meant_are_refused_by_name(old, new, expected):
    assert problems(example_with(old, new)) == expected


@pytest.mark.parametrize("value", ["1e-31", "0." + "0" * 30 + "1", "1e30", "9" * 31, "9" * 31 + ".5"])
def test_a_decimal_of_31_digits_before_its_point_or_30_zeros_after_it_loads(value):
    """The bound docs/rules.md gives (it said 30 and 30, each one off: an outside probe); a stored
    version is read again at every start, so the upper bound stays where it was."""
    load_rules(example_with("factor = 2.0 ", f"factor = {value} "))


def test_a_rules_file_saved_with_a_byte_order_mark_loads(tmp_path):
    """Editors on Windows add one; it was "not a TOML document: Invalid statement (at line 1,
    column 1)", pointing at a character no one can see (an outside probe)."""
    path = tmp_path / "rules.toml"
    path.write_bytes(b"\xef\xbb\xbf" + example_with("", "").encode())
    assert load_rules_file(path).version == load_rules(example_with("", "")).version
    from engine.validation import version_problem

    assert version_problem("\ufeff" + example_with("", ""), 99) == version_problem(example_with("", ""), 99) != ""


_HEAD = 'version = 1\nprogramme = "T"\ntimezone = "Asia/Shanghai"\n'
_TIER = '[[tiers]]\nname = "Basic"\n'


@pytest.mark.parametrize(("text", "problem"), [
    (_HEAD + 'tiers = ["Basic"]\n', 'tiers[0]: expected a table, got "Basic"'),
    (_HEAD + "anomaly = 5\n" + _TIER, "anomaly: expected a table, got 5"),
    (_HEAD + _TIER + "[points]\nspend = 5\n", "points.spend: expected a table, got 5"),
    (_HEAD + "product_rules = [1]\n" + _TIER, "product_rules[0]: expected a table, got 1"),
    (_HEAD + "coupons = [1]\n" + _TIER, "coupons[0]: expected a table, got 1"),
])
def test_a_value_where_a_table_goes_is_one_problem_not_its_keys_missing_too(text, problem):
    """Each also listed the table's required keys as missing: one mistake, two to four problems
    (an outside probe)."""
    assert problems(text) == [problem]


def test_a_day_count_that_never_comes_still_loads():
    # "never expires" written as a count of days, as rules files did before the bound
    load_rules(example_with("valid_days = 30 ", "valid_days = 999999 "))


def test_a_rules_file_that_cannot_be_read_says_why_and_leaves_the_path_to_its_caller(tmp_path):
    with pytest.raises(RulesError) as raised:
        load_rules_file(tmp_path / "absent.toml")
    assert raised.value.problems == ["cannot read the rules file (No such file or directory)"]


@pytest.mark.parametrize(("zone", "shown"), [("Asia/Shanghai\\u0000", "Asia/Shanghai\\u0000"),
                                             ("Asia/\\tShanghai", "Asia/\\tShanghai")])
def test_a_timezone_with_a_control_character_is_refused_and_shown_escaped(zone, shown):
    # The stand-in texts of missing keys are marked with a NUL, and a problem naming a retailer's
    # own NUL was once taken for one and dropped: the document was "valid" and its calendar raised.
    assert problems(example_with('timezone = "Asia/Shanghai"', f'timezone = "{zone}"')) == [
        f'timezone: expected an IANA timezone name such as "Asia/Shanghai", got "{shown}"']


@pytest.mark.parametrize("nested", ["[" * 5000 + "]" * 5000, "[" * 17 + "]" * 17,
                                    "{a = " * 2000 + "1" + "}" * 2000])
def test_arrays_or_tables_nested_past_any_rule_are_refused_by_name(nested):
    assert problems(example_with("\n[points]", f"\nx = {nested}\n[points]")) == [
        "arrays or tables nested more than 16 deep; a rules document needs at most 16"]


@pytest.mark.parametrize("depth", [10, 16])
def test_nesting_within_the_bound_is_checked_as_any_other_key(depth):
    found = problems(example_with("\n[points]", "\nx = " + "[" * depth + "]" * depth + "\n[points]"))
    assert [problem.split(";")[0] for problem in found] == ["x: unknown key"]


def test_a_key_that_is_not_bare_is_shown_quoted_and_escaped():
    found = problems(example_with("\n[points]", '\n"a\\u0000 b" = 1\n[points]'))
    assert [problem.split(";")[0] for problem in found] == ['"a\\u0000 b": unknown key']


def test_a_control_character_in_a_retailers_text_is_no_stand_in_beside_another_problem():
    # a missing or wrong required key is given a stand-in text marked with a NUL, and problems
    # naming it are dropped: a retailer's NUL beside such a key was dropped with them
    found = problems(example_with('timezone = "Asia/Shanghai"', 'timezone = "Asia/Shanghai\\u0000"')
                     .replace("version = 1", 'version = "x"', 1))
    assert [problem.split(":")[0] for problem in found] == ["version", "timezone"]


UNNAMED_SILVER = example_with('name = "Silver"', 'name = "  "').replace('upgrade_to = "Silver"', 'upgrade_to = "  "')
"""Silver named by spaces, which versions published before the check could be."""


def test_a_new_version_needs_named_tiers_and_a_version_stored_before_the_check_still_loads():
    assert [tier.name for tier in load_rules(UNNAMED_SILVER).tiers] == ["Basic", "  ", "Gold"]  # as read back
    with pytest.raises(RulesError) as raised:
        load_rules(UNNAMED_SILVER, new=True)  # as published or validated
    assert raised.value.problems == ['tiers[1].name: expected a non-empty name, got "  "']


def test_a_new_versions_own_checks_are_told_beside_every_other_problem():
    """Silver emptied while a recharge bonus still names it: both at once (an outside probe: the
    empty name was told only once the other problem was fixed)."""
    with pytest.raises(RulesError) as raised:
        load_rules(example_with('name = "Silver"', 'name = ""'), new=True)
    assert [problem.split(":")[0] for problem in raised.value.problems] == [
        "recharge_bonuses[0].upgrade_to", "tiers[1].name"]


@pytest.mark.parametrize("written", ["2026-W46-3", "20261111", "2026-315"])
def test_a_date_in_the_rules_is_yyyy_mm_dd_and_nothing_else(written):
    """What date.fromisoformat also reads (an ISO week date escaped as msgspec's own error)."""
    found = problems(example_with('dates = ["2026-11-11"]', f'dates = ["{written}"]'))
    assert [problem.split(":")[0] for problem in found] == ["multipliers[2].when.dates[0]"], found


def test_a_document_is_held_to_a_new_versions_checks_only_when_above_the_version_in_force():
    # what `serve --rules` starts with: the version in force read back was stored before a check
    # was added (an empty piece of a name, in every name), and a newer one is told that problem
    text = REPO_EXAMPLE.read_text().replace('name_contains = ["deposit"]', 'name_contains = ["deposit", ""]', 1)
    version = load_rules(text).version
    assert load_rules(text, over=version).version == version
    with pytest.raises(RulesError) as raised:
        load_rules(text, over=version - 1)
    assert [problem.split(":")[0] for problem in raised.value.problems] == ["filters.blacklist.name_contains[1]"]


def _example_without(table: str, given: str) -> str:
    """The example rules with every `[[table]]` taken out and `table = given` at the top instead."""
    pieces = re.split(r"(?m)^(?=\[)", REPO_EXAMPLE.read_text())
    kept = "".join(piece for piece in pieces if not piece.startswith(f"[[{table}]]"))
    return kept.replace('programme = "Demo Retail"', f'programme = "Demo Retail"\n{table} = {given}', 1)


@pytest.mark.parametrize(("table", "given", "problem"), [
    ("tiers", "5", "tiers: expected a list of a table, got 5"),
    ("tiers", "[]", "tiers: expected at least one tier (the first is the lowest and the default)"),
    ("tiers", "[5]", "tiers[0]: expected a table, got 5"),
    ("coupons", "5", "coupons: expected a list of a table, got 5"),
    ("coupons", '["WELCOME10"]', 'coupons[0]: expected a table, got "WELCOME10"'),
])
def test_names_that_refer_to_a_table_not_usable_are_not_each_one_more_problem(table, given, problem):
    """With its tiers not usable, the example also told each name of a tier elsewhere as
    "expected the name of a tier (none)" (five problems more for one mistake); so with its coupons."""
    assert problems(_example_without(table, given)) == [problem]


@pytest.mark.parametrize("zone", ["Asia", "Asia/" + "x" * 300, "x" * 300])
def test_a_timezone_that_names_a_folder_of_zones_or_is_too_long_for_a_file_is_a_problem(zone):
    """The tz database's folder ("Asia") and a name longer than a file's were read as files: an
    OSError, which `rules validate` showed as "…/tzdata/zoneinfo/Asia: Is a directory" and
    PublishRules answered INTERNAL, with the install's path (an outside probe)."""
    assert problems(example_with('timezone = "Asia/Shanghai"', f'timezone = "{zone}"')) == [
        f'timezone: expected an IANA timezone name such as "Asia/Shanghai", got "{zone}"']


BIG = REPO_EXAMPLE.read_text() + "# " + "x" * (1024 * 1024) + "\n"
"""The example rules past 1 MiB by a comment: a 5 MB comment was published and stored (an outside probe)."""
TOO_BIG = (f"the document is {len(BIG.encode()):,} bytes; a rules document may be at most 1,048,576 bytes (1 MiB): "
           f"leave out comments and entries no rule needs")


def test_a_new_document_past_1_mib_is_refused_before_it_is_read_and_a_stored_one_still_loads(tmp_path, monkeypatch):
    from engine import validation

    path = tmp_path / "big.toml"
    path.write_text(BIG)
    monkeypatch.setattr(validation.tomllib, "loads", None)  # refused before parsing: a 40 MB one took 5.4 GB
    for refused in (lambda: load_rules(BIG, new=True), lambda: load_rules_file(path, new=True)):
        with pytest.raises(RulesError) as raised:
            refused()
        assert raised.value.problems == [TOO_BIG]
    assert validation.version_problem(BIG, 99) == ""  # not parsed to find its version either
    monkeypatch.undo()
    assert load_rules(BIG).version == 1  # a version stored before the bound
    with pytest.raises(RulesError) as raised:  # `serve --rules` with a version above the one in force
        load_rules(BIG, over=0)
    assert raised.value.problems == [TOO_BIG]
    assert load_rules(BIG, over=1).version == 1  # the version in force, read back


def test_a_file_without_a_size_is_read_only_to_the_bound():
    # /dev/zero has no size to check first: it was read until memory ran out (a probe)
    with pytest.raises(RulesError) as raised:
        load_rules_file("/dev/zero", new=True)
    assert raised.value.problems == [
        "the document is more than 2,097,152 bytes; a rules document may be at most 1,048,576 bytes (1 MiB): "
        "leave out comments and entries no rule needs"]


def test_a_pipe_is_read_as_a_file_is_its_line_ends_included(tmp_path):
    # read as bytes, a document with CRLF that passes from a file was refused from a pipe (a review)
    import os
    import threading

    text = REPO_EXAMPLE.read_text() + "#\n" * 400_000  # 1.2 MB with CRLF, 0.8 MB read as text
    pipe = tmp_path / "rules.pipe"
    os.mkfifo(pipe)
    writer = threading.Thread(target=lambda: pipe.write_bytes(text.replace("\n", "\r\n").encode()))
    writer.start()
    try:
        assert load_rules_file(pipe, new=True).version == 1
    finally:
        writer.join(timeout=10)


def test_a_file_is_measured_as_its_text_is_published_crlf_and_byte_order_mark_aside(tmp_path):
    # the file's bytes on disk were measured: one with CRLF passed publish and failed validate (a reviewer)
    text = REPO_EXAMPLE.read_text() + "#\n" * 400_000  # 0.8 MB as text, 1.2 MB with CRLF
    path = tmp_path / "crlf.toml"
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    assert path.stat().st_size > 1024 * 1024 >= len(text.encode())
    assert load_rules_file(path, new=True).version == load_rules(text, new=True).version == 1


def test_a_rules_error_tells_its_first_50_problems_and_how_many_more_and_keeps_them_all():
    """800,000 bad entries made an INVALID_ARGUMENT answer of 76 MB (an outside probe): the gateway
    answers what is told, and so does the error's own text."""
    import pickle

    error = RulesError([f"x{n}: unknown key" for n in range(60)])
    assert error.told == [f"x{n}: unknown key" for n in range(50)] + ["… and 10 more problems"]
    assert str(error).splitlines() == error.told
    assert RulesError(["a"] * 51).told[-1] == "… and 1 more problem"
    assert RulesError(["a"] * 50).told == ["a"] * 50
    assert pickle.loads(pickle.dumps(error)).problems == error.problems  # as it crosses to the gateway
