"""How values are shown in messages to retailers: as they would write them in the rules document."""

import unicodedata
from decimal import Decimal
from typing import Any

__all__ = ["either", "invisible", "listed_twice", "not_utf8", "shown"]

_ESCAPES = {chr(n): f"\\u{n:04X}" for n in [*range(0x20), *range(0x7F, 0xA0)]} | {
    "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}
"""A text as a TOML basic string writes it: a control character in a message would hide in a
terminal or a log, and the rules checks mark their stand-in texts with one (validation.py)."""


def either(options: tuple) -> str:
    """ "a", "a or b", "a, b or c"; "none" for no options. Each once: a document naming a coupon
    twice, told so, was also offered it twice as a choice (an outside probe)."""
    texts = list(dict.fromkeys(shown(o) for o in options))
    if not texts:
        return "none"
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]


def not_utf8(error: UnicodeDecodeError, before: int = 0) -> str:
    """What is wrong with a file that is not UTF-8, and where (its caller names the file); `before`:
    the file's bytes ahead of what the error decoded (a file checked a block at a time)."""
    return (f"not UTF-8 text (byte {error.object[error.start]:#04x} at offset {before + error.start}); "
            f"save it as UTF-8")


def shown(value: Any) -> str:
    """A value as TOML would write it; tables and lists by what they are."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + "".join(_ESCAPES.get(c) or _invisible(c) for c in value) + '"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Decimal) and not value.is_finite():  # Python's "Infinity", "NaN" are not TOML's
        return ("-" if value.is_signed() else "") + ("nan" if value.is_nan() else "inf")
    return str(value)


def invisible(character: str) -> bool:
    """A format character: a zero-width space, a direction mark (Unicode category Cf)."""
    return unicodedata.category(character) == "Cf"


BLANK = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f\u2800\u3164\uffa0"
                  "\ufe00\ufe01\ufe02\ufe03\ufe04\ufe05\ufe06\ufe07\ufe08\ufe09\ufe0a\ufe0b\ufe0c\ufe0d\ufe0e\ufe0f")
"""Characters drawn as nothing though Unicode does not class them as format or control characters:
the Hangul fillers, the combining grapheme joiner, the Khmer inherent vowels, the Mongolian
variation selectors and vowel separator, the braille blank and the variation selectors (an outside
probe's reason was a Hangul filler)."""


def readable(text: str) -> bool:
    """Whether a reader sees anything of `text`: not only spaces, invisible (Cf), control (Cc) or
    `BLANK` characters. An operator's reason of a space, a zero-width space or a NUL was taken (an
    outside probe), and the ledger kept a reason no one could read."""
    return any(not (character.isspace() or character in BLANK or unicodedata.category(character) in ("Cf", "Cc"))
               for character in text)


def _invisible(character: str) -> str:
    """An invisible character escaped as TOML writes it: shown as it is, a name made of one looked
    empty."""
    if not invisible(character):
        return character
    code = ord(character)
    return f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"


def listed_twice(values: list, path: str, advice: str = "") -> list[str]:
    """`path[i]: VALUE is listed twice` for each value met again in a list, then `advice`."""
    seen: set = set()
    problems = []
    for index, value in enumerate(values):
        if value in seen:
            problems.append(f"{path}[{index}]: {shown(value)} is listed twice{advice}")
        seen.add(value)
    return problems
