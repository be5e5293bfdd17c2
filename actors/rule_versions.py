"""The why labels of every rules version a ledger may name. An entry stores the parts of its why,
pointing into the rules that scored it (engine/why.py); reading an entry of an older version takes
that version's rules from the data folder, which keeps every version published (checkpoints too)."""

import logging

from engine.errors import RulesError
from engine.programme import Programme
from engine.validation import load_rules
from engine.why import WhyLabels
from storage.folder import DataFolder

__all__ = ["RuleVersions"]

log = logging.getLogger("patron.rules")


class RuleVersions:
    """Labels by version: the version in force from its programme, others read once and kept
    (a version's rules never change once published)."""

    def __init__(self, folder: DataFolder) -> None:
        self.folder = folder
        self._kept: dict[int, WhyLabels | None] = {}

    def labels(self, version: int, in_force: Programme) -> WhyLabels | None:
        """None when the folder no longer has the version's rules (logged once): its entries
        are shown without their why rather than with another version's names."""
        if version == in_force.version:
            return in_force.why
        if version not in self._kept:
            self._kept[version] = self._read(version)
        return self._kept[version]

    def _read(self, version: int) -> WhyLabels | None:
        try:
            return WhyLabels(load_rules(self.folder.published_rules(version)))
        except (OSError, RulesError) as error:
            log.warning("rules version %d cannot be read from %s (%s): its ledger entries are shown without "
                        "their why", version, self.folder.rules, error)
            return None
