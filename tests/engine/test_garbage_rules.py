"""Garbage rules documents get validation errors naming their paths, never a crash."""

import tomllib
from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import RulesError
from engine.rules import Rules
from engine.validation import load_rules, parse_rules

EXAMPLE = tomllib.loads((Path(__file__).parents[2] / "examples" / "rules.toml").read_text())

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.text(max_size=12),
                    st.floats(allow_nan=False), st.dates(), st.datetimes(), st.decimals())
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)


def paths(document: object, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths(value, (*prefix, index))
    return found


def replaced(document: object, path: tuple, value: object) -> object:
    if not path:
        return value
    head, *rest = path
    if isinstance(document, dict):
        return {**document, head: replaced(document[head], tuple(rest), value)}
    copy = list(document)
    copy[head] = replaced(copy[head], tuple(rest), value)
    return copy


def outcome(parse: Callable[[], Rules]) -> Rules | RulesError:
    """The rules, or the RulesError raised; any other exception fails the test."""
    try:
        return parse()
    except RulesError as error:
        return error


def named(problems: list[str]) -> bool:
    return bool(problems) and all(isinstance(p, str) and ": " in p for p in problems)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_value_anywhere_in_the_example_is_accepted_or_named(data):
    path = data.draw(st.sampled_from(paths(EXAMPLE)))
    document = replaced(EXAMPLE, path, data.draw(values))
    result = outcome(lambda: parse_rules(document))
    assert isinstance(result, Rules) or named(result.problems)


@settings(max_examples=200, deadline=None)
@given(extra=st.dictionaries(st.text(min_size=1, max_size=10), values, min_size=1, max_size=3))
def test_unknown_keys_are_always_named(extra):
    document = {**EXAMPLE, **{f"x_{key}": value for key, value in extra.items()}}
    result = outcome(lambda: parse_rules(document))
    assert isinstance(result, RulesError)
    assert any("unknown key" in problem for problem in result.problems)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_is_a_rules_document_or_a_rules_error(text):
    result = outcome(lambda: load_rules(text))
    assert isinstance(result, Rules) or result.problems
