"""What an id may be (engine/ids.py), against a definition written another way: by a regular
expression for the control and hidden characters and Python's own test for an all-space text."""

import re

from hypothesis import given
from hypothesis import strategies as st

from engine.ids import FINE, MAX_ID_LENGTH, MISSING, TOO_LONG, UNPRINTABLE, id_problem

CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def expected(text: str) -> int:
    if not text:
        return MISSING
    if len(text) > MAX_ID_LENGTH:
        return TOO_LONG
    if CONTROL.search(text):
        return UNPRINTABLE
    return MISSING if text.isspace() else FINE


# ids as tills send them, with spaces, control and other characters mixed in
pieces = st.sampled_from(["M", "0", "é", "😀", " ", "\u00a0", "\u3000", "\t", "\x00", "\x1f", "\x7f", "\x85",
                          "\x9f", "\xa0", "\u200b", "\n", "\u200c", "\u200d", "\u202e", "\u2069", "\ufeff",
                          "\u061c", "\u200e", "\u2064", "\u2065"])
ids = st.one_of(st.text(max_size=120), st.lists(pieces, max_size=110).map("".join))


@given(ids)
def test_an_id_is_judged_as_the_definition_says(text):
    assert id_problem(text) == expected(text)


def test_the_edges():
    assert id_problem("M" * MAX_ID_LENGTH) == FINE
    assert id_problem("M" * (MAX_ID_LENGTH + 1)) == TOO_LONG
    assert id_problem(" " * (MAX_ID_LENGTH + 1)) == TOO_LONG
    assert [id_problem(t) for t in ("M 1", " M", "\u00a0\u3000", "M\x1f", "M\x20", "M\x7e", "M\xa0")] == [
        FINE, FINE, MISSING, UNPRINTABLE, FINE, FINE, FINE]
    # ASCII ones are read as bytes when compiled (ids.pxd): spaces then a letter, and spaces alone
    assert [id_problem(t) for t in (" ", "   ", "  M", "M  ", "  \x7f", " " * MAX_ID_LENGTH)] == [
        MISSING, MISSING, FINE, FINE, UNPRINTABLE, MISSING]
    # hidden characters (ids.py HIDDEN) are refused; the joiners some scripts write with are kept
    assert [id_problem(t) for t in ("\ufeffM", "M\u200b", "\u202eM1", "M\u200dM", "\u0645\u200c\u0645")] == [
        UNPRINTABLE, UNPRINTABLE, UNPRINTABLE, FINE, FINE]
