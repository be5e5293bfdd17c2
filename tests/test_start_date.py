"""`--start-date` sets the business day of a new data folder only; on a folder that has one it is
passed over, and serve says so."""

from actors.coordinator import start_date_ignored
from engine.calendar import parse_day


def test_a_start_date_a_folder_already_passed_is_said_to_be_ignored():
    note = start_date_ignored(parse_day("2026-11-01"), ["2026-12-05", "2026-12-05"])
    assert note == ("--start-date 2026-11-01 is for a new data folder only: this one is on business day 2026-12-05 "
                    "(midnight runs move it)")


def test_nothing_is_said_for_a_new_folder_or_without_a_start_date():
    assert start_date_ignored(parse_day("2026-11-01"), ["2026-11-01", "2026-11-01"]) == ""
    assert start_date_ignored(0, ["2026-12-05"]) == ""
