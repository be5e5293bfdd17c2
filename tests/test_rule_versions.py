"""Reading an entry's why and its tiers takes the labels and the tier names of the rules version
that wrote it, from the data folder when it is not the version in force; a version the folder lost
gives no why and no tier names, never another version's names."""

import logging

from actors.rule_versions import RuleVersions
from engine.programme import Programme
from engine.validation import load_rules
from engine.why import Why, why_text
from storage.folder import DataFolder
from tests.conftest import EXAMPLE_RULES

V1 = EXAMPLE_RULES.read_text()
V2 = V1.replace("version = 1", "version = 2", 1).replace('"winter campaign"', '"winter sale"')
WINTER = Why(120, (4,))  # the example's fifth multiplier
WITHOUT_SILVER = V1.replace("version = 1", "version = 2", 1).replace(
    V1[V1.index('[[tiers]]\nname = "Silver"'):V1.index('[[tiers]]\nname = "Gold"')], "").replace(
    'upgrade_to = "Silver"', "")


def test_an_older_versions_entries_are_read_with_that_versions_labels_kept_in_the_folder(tmp_path):
    folder = DataFolder(tmp_path)
    folder.publish_rules(1, V1)
    folder.publish_rules(2, V2)
    versions = RuleVersions(folder)
    in_force = Programme(load_rules(V2))
    assert why_text(WINTER, versions.names(2, in_force).why) == "120 from 'spend 10 per 10.00' × 1.2 'winter sale'"
    assert why_text(WINTER, versions.names(1, in_force).why) == "120 from 'spend 10 per 10.00' × 1.2 'winter campaign'"
    (folder.rules / "v000001.toml").unlink()
    assert versions.names(1, in_force).why is not None  # read once, then kept


def test_a_version_the_folder_does_not_have_gives_no_why_and_says_so_once(tmp_path, caplog):
    folder = DataFolder(tmp_path)
    folder.publish_rules(2, V2)
    versions = RuleVersions(folder)
    in_force = Programme(load_rules(V2))
    with caplog.at_level(logging.WARNING, logger="patron.rules"):
        assert why_text(WINTER, versions.names(1, in_force).why) == ""
        assert versions.names(1, in_force).why is None
    assert [r.getMessage() for r in caplog.records] == [
        f"rules version 1 cannot be read from {folder.rules} ([Errno 2] No such file or directory: "
        f"'{folder.rules / 'v000001.toml'}'): its ledger entries are shown without their tiers and why"]


def test_a_why_stored_as_text_before_its_parts_were_is_shown_as_it_was_written():
    labels = Programme(load_rules(V1)).why
    assert why_text("120 from 'spend 10 per 10.00' × 1.2 'winter campaign'", labels) == (
        "120 from 'spend 10 per 10.00' × 1.2 'winter campaign'")
    assert why_text("", labels) == ""


def test_an_older_versions_entries_name_their_tiers_by_that_versions_ladder_read_from_the_folder(tmp_path):
    folder = DataFolder(tmp_path)
    folder.publish_rules(1, V1)
    folder.publish_rules(2, WITHOUT_SILVER)
    in_force = Programme(load_rules(WITHOUT_SILVER))
    versions = RuleVersions(DataFolder(tmp_path))  # as after a restart: nothing but the folder
    assert versions.names(1, in_force).tiers == ["Basic", "Silver", "Gold"]
    assert versions.names(2, in_force).tiers == ["Basic", "Gold"]


def test_a_version_the_folder_does_not_have_names_no_tiers(tmp_path):
    folder = DataFolder(tmp_path)
    folder.publish_rules(2, WITHOUT_SILVER)
    assert RuleVersions(folder).names(1, Programme(load_rules(WITHOUT_SILVER))).tiers == []


def test_a_version_missed_once_is_read_when_the_folder_has_it_later(tmp_path):
    # a node gateway's folder learns versions as they are published: a miss was kept for good
    folder = DataFolder(tmp_path)
    folder.publish_rules(2, WITHOUT_SILVER)
    versions = RuleVersions(folder)
    in_force = Programme(load_rules(WITHOUT_SILVER))
    assert versions.names(1, in_force).tiers == []
    folder.publish_rules(1, V1)
    assert versions.names(1, in_force).tiers == ["Basic", "Silver", "Gold"]
