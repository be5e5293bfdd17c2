"""How values are shown in messages to retailers: as they would write them in the rules document."""

from typing import Any

__all__ = ["either", "shown"]


def either(options: tuple) -> str:
    """ "a", "a or b", "a, b or c"; "none" for no options."""
    texts = [shown(o) for o in options]
    if not texts:
        return "none"
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]


def shown(value: Any) -> str:
    """A value as TOML would write it; tables and lists by what they are."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)
