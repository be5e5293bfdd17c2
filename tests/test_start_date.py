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


def test_the_folders_first_day_is_its_first_opened_starts(tmp_path):
    """layout.json keeps the day the folder began (no anomaly report before it); a first start that
    failed before any shard opened, tried again with another --start-date, kept the first date (a
    reviewer). Once a shard opened, a later start's date changes nothing."""
    import msgspec

    from actors.config import ServeConfig
    from actors.coordinator import Coordinator
    from storage.folder import DataFolder

    def layout_of(start: str, opened: int = 0):
        coordinator = Coordinator.__new__(Coordinator)
        coordinator.config = ServeConfig(data=tmp_path, shards=2, start_date=parse_day(start))
        coordinator.folder = DataFolder(tmp_path)
        layout = coordinator._layout(parse_day(start))
        if opened:
            coordinator.folder.save_layout(msgspec.structs.replace(layout, opened=opened))
        return layout

    assert layout_of("2026-03-05").first_day == parse_day("2026-03-05")
    assert layout_of("2026-03-09", opened=2).first_day == parse_day("2026-03-09")  # nothing opened before
    assert layout_of("2026-04-01").first_day == parse_day("2026-03-09")
