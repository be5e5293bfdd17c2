"""The names of every rules version a ledger may name: its why labels and its tier ladder. An entry
stores the parts of its why, pointing into the rules that scored it (engine/why.py), and its tiers
by position in that version's ladder (engine/ledger.py); reading an entry of an older version takes
that version's rules from the data folder, which keeps every version published (checkpoints too)."""

import logging

from msgspec import Struct

from engine.errors import RulesError
from engine.programme import Programme
from engine.validation import load_rules
from engine.why import WhyLabels
from storage.folder import DataFolder

__all__ = ["RuleVersions", "VersionNames"]

log = logging.getLogger("patron.rules")


class VersionNames(Struct, frozen=True):
    """What one version's entries are read with: its tiers by position and its why labels."""

    tiers: list[str]
    """Empty when the version's rules are lost: its entries show no tiers."""
    why: WhyLabels | None
    """None when the version's rules are lost: its entries show no why."""


_LOST = VersionNames([], None)


class RuleVersions:
    """Names by version: the version in force from its programme, others read once and kept
    (a version's rules never change once published)."""

    def __init__(self, folder: DataFolder) -> None:
        self.folder = folder
        self._kept: dict[int, VersionNames] = {}
        self._missed: set[int] = set()

    def names(self, version: int, in_force: Programme) -> VersionNames:
        """A version the folder does not have (logged once) gives no names: its entries are shown
        without their tiers and why rather than with another version's names. A miss is not kept:
        a node gateway's folder may learn the version later."""
        if version == in_force.version:
            return VersionNames(in_force.ladder.names, in_force.why)
        if version not in self._kept:
            names = self._read(version)
            if names is _LOST:
                return names
            self._kept[version] = names
        return self._kept[version]

    def _read(self, version: int) -> VersionNames:
        try:
            rules = load_rules(self.folder.published_rules(version))
        except (OSError, RulesError) as error:
            if version not in self._missed:
                self._missed.add(version)
                log.warning("rules version %d cannot be read from %s (%s): its ledger entries are shown "
                            "without their tiers and why", version, self.folder.rules, error)
            return _LOST
        return VersionNames([tier.name for tier in rules.tiers], WhyLabels(rules))
