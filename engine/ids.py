"""What an id may be: a transaction's, a member's, the original a refund names. Ids are kept and
compared exactly as sent and given back in results, ledgers, reports and coupon codes, so one
holding a NUL or a line break carried it into every one of them, and an id of spaces named a
member no one could see or type (an outside probe): such ids are refused, as empty and too long
ones are. So are invisible characters that make two ids look alike or one look like another text
(`\ufeffM` and `M` were two members; a direction override shows an id backwards: an outside
probe). Both are fixed sets, so that what is an id never changes with the Unicode version of a
Python: the control characters (Unicode's Cc: U+0000–U+001F and U+007F–U+009F) and `HIDDEN`."""

try:
    import cython

    COMPILED = cython.compiled
except ImportError:  # the pure engine needs no Cython installed
    COMPILED = False

__all__ = ["FINE", "HIDDEN", "MAX_ID_LENGTH", "MISSING", "TOO_LONG", "UNPRINTABLE", "id_problem", "id_requirement"]

MAX_ID_LENGTH = 100
_LONGEST = MAX_ID_LENGTH
"""As ids.pxd types it, a C integer: the module's global looked up for each id cost more than its loop."""
FINE, MISSING, TOO_LONG, UNPRINTABLE = 0, 1, 2, 3
"""What `id_problem` finds: nothing; no id (empty, or only spaces); over MAX_ID_LENGTH characters;
a control or hidden character."""
HIDDEN = ("\u061c\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
          "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff")
"""Characters that show nothing, refused in ids: the zero-width space, the word joiner and the
invisible operators, the byte order mark, and the marks, embeddings, overrides and isolates that
set a text's direction. The zero-width joiner and non-joiner are kept: some scripts (Persian, the
Indic ones) and emoji sequences write with them."""


def id_problem(text: str) -> int:
    """FINE, or what is wrong with `text` as an id (checked in this order). Compiled, an ASCII id
    (nearly every one) is read as C bytes (ids.pxd's ascii_id_problem): a character read by its
    kind and tested as Unicode took most of the check."""
    if COMPILED and (answer := ascii_id_problem(text, _LONGEST)) >= 0:  # noqa: F821 (C, ids.pxd)
        return answer
    if not text:
        return MISSING
    if len(text) > _LONGEST:
        return TOO_LONG
    blank = True
    for character in text:
        code = ord(character)
        if code < 0x20 or 0x7F <= code <= 0x9F or (code >= 0x61C and character in HIDDEN):
            return UNPRINTABLE
        if blank and not character.isspace():
            blank = False
    return MISSING if blank else FINE


def id_requirement(name: str) -> str:
    """What an id field must be, for a message that names it."""
    return (f"{name}: expected 1 to {MAX_ID_LENGTH} characters, not only spaces, without control or hidden "
            f"characters (a NUL, a tab, a line break, a zero-width space, a byte order mark, a direction mark)")
