"""The help that lists a command's actions (`patron`, `patron shards` alone)."""

import argparse

__all__ = ["ActionsFormatter"]


class ActionsFormatter(argparse.HelpFormatter):
    """argparse (Python 3.11's at least) measures an action's name at its parent's indent, two
    columns short: a name as wide as the widest option (`rebalance`, `checkpoint`) had its help
    pushed to the next line, and `patron shards` read as if `rebalance` had none (an outside tester)."""

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if action.help is not argparse.SUPPRESS:
            for subaction in self._iter_indented_subactions(action):  # indented while iterating
                width = len(self._format_action_invocation(subaction)) + self._current_indent
                self._action_max_length = max(self._action_max_length, width)
