"""Date rules: windows, validity and expiry, with the worked examples of docs/rules.md."""

from datetime import UTC, datetime

import pytest

from engine.calendar import LocalCalendar, iso, parse_day
from engine.expiry import ExpiryPolicy
from engine.periods import parse_validity, parse_window, valid_through, window_start
from engine.rules import ExpiryRules


def day(text: str) -> int:
    return parse_day(text)


def test_a_12_month_window_as_of_25_aug_2020_covers_26_aug_2019_to_25_aug_2020():
    assert iso(window_start(parse_window("12 months"), day("2020-08-25"))) == "2019-08-26"


def test_month_windows_clamp_to_the_end_of_shorter_months():
    # 31 May less 3 months is 28 Feb 2026 (clamped), so the window starts on 1 Mar
    assert iso(window_start(parse_window("3 months"), day("2026-05-31"))) == "2026-03-01"


def test_a_day_window_covers_the_last_n_days_including_today():
    assert iso(window_start(parse_window("30 days"), day("2026-03-30"))) == "2026-03-01"


@pytest.mark.parametrize(("upgraded", "validity", "last_day"), [
    ("2020-05-15", "12 months", "2021-05-14"),
    ("2020-01-01", "12 months", "2020-12-31"),
    ("2026-03-10", "6 months end_of_month", "2026-09-30"),
    ("2026-03-10", "30 days", "2026-04-08"),
    ("2024-02-29", "12 months", "2025-02-27"),
])
def test_validity_runs_through_the_last_valid_day(upgraded, validity, last_day):
    assert iso(valid_through(parse_validity(validity), day(upgraded))) == last_day


def test_permanent_validity_has_no_last_day():
    assert valid_through(parse_validity("permanent"), day("2026-03-10")) == 0


@pytest.mark.parametrize(("policy", "earned", "expires"), [
    (ExpiryRules("jan1_after_years", years=1), "2026-03-05", "2028-01-01"),
    (ExpiryRules("jan1_after_years", years=0), "2026-03-05", "2027-01-01"),
    (ExpiryRules("jan1_after_years", years=0), "2026-12-31", "2027-01-01"),
    (ExpiryRules("rolling_days", days=365), "2026-03-05", "2027-03-05"),
    (ExpiryRules("annual_reset"), "2026-03-05", "2027-01-01"),
])
def test_points_expire_at_midnight_of_the_policys_day(policy, earned, expires):
    assert iso(ExpiryPolicy(policy).expires(day(earned))) == expires


def test_a_transaction_counts_on_the_local_day_it_occurred():
    calendar = LocalCalendar("Asia/Shanghai")
    at = int(datetime(2026, 3, 4, 16, 30, tzinfo=UTC).timestamp() * 1000)  # 00:30 in Shanghai
    assert iso(calendar.day_of(at)) == "2026-03-05"
    assert iso(calendar.day_of(at - 3_600_000)) == "2026-03-04"


def test_local_days_follow_daylight_saving_changes():
    calendar = LocalCalendar("Europe/Berlin")
    midnight = calendar.midnight_ms(day("2026-03-29"))  # clocks go forward at 02:00
    assert calendar.midnight_ms(day("2026-03-30")) - midnight == 23 * 3_600_000
    assert iso(calendar.day_of(midnight)) == "2026-03-29"
    assert iso(calendar.day_of(midnight - 1)) == "2026-03-28"


@pytest.mark.parametrize("text", ["20261202", "2026-W49-3", "2026-336", "2026-12-2", " 2026-12-02", "2026-12-02\n",
                                  "２０２６-12-02", "2026-1²-02"])
def test_a_date_is_written_yyyy_mm_dd_and_nothing_else(text):
    """What date.fromisoformat also reads ran a midnight and fetched a report (an outside probe)."""
    with pytest.raises(ValueError, match="expected a date as YYYY-MM-DD"):
        parse_day(text)
    assert iso(parse_day("2026-12-02")) == "2026-12-02"
