"""Rules documents: the example loads as it is; every problem is named by its key path."""

from pathlib import Path

import pytest

from engine.errors import RulesError
from engine.validation import load_rules, load_rules_file

EXAMPLE = Path(__file__).parents[2].parent / "shared" / "examples" / "rules.toml"
REPO_EXAMPLE = Path(__file__).parents[2] / "examples" / "rules.toml"


def problems(text: str) -> list[str]:
    with pytest.raises(RulesError) as raised:
        load_rules(text)
    return raised.value.problems


def example_with(old: str, new: str) -> str:
    text = REPO_EXAMPLE.read_text()
    assert old in text, old
    return text.replace(old, new, 1)


def test_the_shared_example_rules_load_as_they_are():
    rules = load_rules_file(EXAMPLE if EXAMPLE.exists() else REPO_EXAMPLE)
    assert [t.name for t in rules.tiers] == ["Basic", "Silver", "Gold"]


def test_a_bad_window_names_its_path_what_was_expected_and_what_was_found():
    assert problems(example_with('window = "3 months"', 'window = "3 weeks"')) == [
        'tiers[2].window: expected "lifetime", "N months" or "N days", got "3 weeks"']


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
        'tiers[1].threshold: expected an integer of at least 0, got "lots"',
    ]


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
     'tiers[2].validity: expected "permanent", "N days", "N months" or "N months end_of_month", got "1 year"'),
    ('type = "review"', 'type = "sign_in"',
     'events[1].type: expected a unique, non-empty event type, got "sign_in"'),
    ('when = { from = "2026-12-01", to = "2026-12-24" }', 'when = { from = "2026-12-24", to = "2026-12-01" }',
     'multipliers[4].when.to: expected a date on or after from (2026-12-24), got 2026-12-01'),
    ('when = { dates = ["2026-11-11"] }', 'when = { dates = ["11/11/2026"] }',
     'multipliers[2].when.dates[0]: expected a date (YYYY-MM-DD), got "11/11/2026"'),
])
def test_cross_field_problems_name_the_key(old, new, problem):
    assert problems(example_with(old, new)) == [problem]


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


def test_a_missing_file_is_a_rules_error_not_a_crash(tmp_path):
    with pytest.raises(RulesError, match="cannot read the rules file"):
        load_rules_file(tmp_path / "absent.toml")
