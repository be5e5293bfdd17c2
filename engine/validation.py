"""Checking a rules document: every problem named by its key path, what was expected and what was found."""

import re
import stat
import tomllib
import types
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec
from msgspec import Meta, Struct

from engine.calendar import parse_day
from engine.errors import RulesError
from engine.messages import either, not_utf8, shown
from engine.rule_checks import cross_field_problems, new_version_problems
from engine.rules import DecimalBound, Rules, Wording, build_rules
from engine.spending_checks import spending_problems

__all__ = ["load_rules", "load_rules_file", "parse_rules", "version_problem",
           "version_too_low"]


def load_rules_file(path: str | Path, new: bool = False, over: int | None = None) -> Rules:
    """Read, check and build a rules document from a TOML file (`new`, `over`: as `load_rules`)."""
    try:
        # a file far past the bound is not read at all; nearer it, its text is measured as a
        # published document's is (without a byte order mark, CRLF read as LF: both only shrink it)
        if new and (size := Path(path).stat().st_size) > 2 * MOST_BYTES:
            raise RulesError([_too_big(size)])
        text = _read_text(Path(path))
    except OSError as error:
        # the caller names the file before each problem, as it does for every other problem
        raise RulesError([f"cannot read the rules file ({error.strerror})"]) from None
    except UnicodeDecodeError as error:
        raise RulesError([not_utf8(error)]) from None
    return load_rules(text, new, over)


def _read_text(path: Path) -> str:
    """A file's text; what has no size (a device, a pipe) is read to twice the bound: /dev/zero was
    read until memory ran out (a probe)."""
    if stat.S_ISREG(path.stat().st_mode):
        return path.read_text(encoding="utf-8")
    with open(path, encoding="utf-8") as source:  # line ends read as a file's are: CRLF as LF
        text = source.read(2 * MOST_BYTES + 1)
    if len(text) > 2 * MOST_BYTES:
        raise RulesError([_too_big(2 * MOST_BYTES, more=True)])
    return text


def load_rules(text: str, new: bool = False, over: int | None = None) -> Rules:
    """Check and build a rules document from TOML text; raises RulesError listing every problem.
    `new`: a version about to be published or validated, which also meets the checks added since
    older versions were stored (rule_checks.new_version_problems); `over`: the version in force,
    the document is new when its own is above it (a file `serve --rules` starts with may be the
    version in force, read back)."""
    text = without_bom(text)
    if new:
        _refuse_too_big(text)
    try:
        document = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        raise RulesError([f"not a TOML document: {error}"]) from None
    except ValueError:  # an integer of thousands of digits: Python's int() refuses it
        raise RulesError([_too_long(text)]) from None
    except RecursionError:  # tomllib reads nested arrays and tables by recursion
        document = None
    if document is None or _too_deep(document, MOST_NESTING):
        raise RulesError([f"arrays or tables nested more than {MOST_NESTING} deep; a rules document "
                          f"needs at most {MOST_NESTING}"])
    version = document.get("version")
    if not new and over is not None and type(version) is int and version > over:
        _refuse_too_big(text)  # a file `serve --rules` starts with is new only once its version is read
        new = True
    return parse_rules(document, new)


MOST_BYTES = 1024 * 1024
"""A new rules document is at most 1 MiB, over 100 times the example rules (8.5 KB), every key
given: a 40 MB one took 5.4 GB to check and printed problems for minutes, a 5 MB comment was
published and stored (an outside probe). A version stored before the bound still loads."""


def _refuse_too_big(text: str) -> None:
    """Before the document is parsed, which is what costs."""
    size = len(text) if len(text) * 4 <= MOST_BYTES else len(text.encode("utf-8"))
    if size > MOST_BYTES:
        raise RulesError([_too_big(size)])


def _too_big(size: int, more: bool = False) -> str:
    return (f"the document is {'more than ' if more else ''}{size:,} bytes; a rules document may be at most "
            f"{MOST_BYTES:,} bytes (1 MiB): leave out comments and entries no rule needs")


_LONG_NUMBER = re.compile(r"(?m)(?:^|([A-Za-z0-9_\"'.-]+)[ \t]*=|[\[,{])[ \t]*[+-]?([0-9][0-9_]{4300,})")
"""An integer as long as Python refuses to read (4,300 digits), with the key written before it when
it is a key's value."""


def _too_long(text: str) -> str:
    """Where the number too long to read is: Python's own message told the retailer to call
    sys.set_int_max_str_digits() (an outside probe)."""
    found = _LONG_NUMBER.search(text)
    most = f"a rules document's numbers have at most {MOST_DIGITS} digits"
    if found is None:
        return f"a number too long to read; {most}"
    line = text.count("\n", 0, found.start(2)) + 1
    where = f"{found.group(1)} (line {line})" if found.group(1) else f"line {line}"
    return f"{where}: a number of {len(found.group(2).replace('_', '')):,} digits, too long to read; {most}"


def version_problem(text: str, in_force: int) -> str:
    """What a document's `version` lacks to be published over `in_force` ("" when it does not, or
    cannot be read): said beside its other problems, it was told only once they were fixed (a probe)."""
    version = _version(text)
    return version_too_low(version, in_force) if version > 0 else ""


def without_bom(text: str) -> str:
    """A rules document without the byte order mark editors on Windows begin a file with: TOML
    reads it as a statement, "Invalid statement (at line 1, column 1)" (an outside probe)."""
    return text.removeprefix("\ufeff")


def _version(text: str) -> int:
    """A document's `version` as written, or 0 where there is none or the document cannot be read
    (or is too big to be: it is not parsed)."""
    try:
        _refuse_too_big(text)
        version = tomllib.loads(without_bom(text)).get("version")
    except (ValueError, RecursionError, RulesError):  # tomllib.TOMLDecodeError is a ValueError
        return 0
    return version if type(version) is int else 0


def version_too_low(version: int, in_force: int) -> str:
    """The document in force sent again is answered before this is asked, so the same version
    here has other text: said so, a retried publish looked refused for its number alone (a probe)."""
    if version == in_force:
        return (f"version: expected a version above {in_force} (the version in force, whose text differs "
                f"from this one's), got {version}")
    if version < in_force:
        return f"version: expected a version above {in_force} (the version in force), got {version}"
    return ""


def _too_deep(value: Any, room: int) -> bool:
    """Whether arrays and tables nest in `value` more than `room` deep (the document's own table
    not counted); the walk stops at the first that does."""
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return any(isinstance(child, (dict, list)) and (room == 0 or _too_deep(child, room - 1)) for child in children)


def parse_rules(document: dict, new: bool = False) -> Rules:
    """Every problem in one pass: what the shape check finds is set aside (an optional key
    dropped, a required one given a stand-in) so the checks across keys still run on the rest;
    `new`: with a new version's own checks (an empty tier name was told only once every other
    problem was fixed: an outside probe)."""
    problems: list[str] = []
    usable = _check(document, Rules, "", problems)
    shape_problems = list(problems)
    rules = build_rules(usable)
    # a key, or one of its list's tables, dropped whole: names that refer to them are not judged
    unusable = frozenset(found.group(1) for p in shape_problems if (found := _WHOLE.match(p.split(":", 1)[0])))
    across = (cross_field_problems(rules) + spending_problems(rules, unusable)
              + (new_version_problems(rules) if new else []))
    problems += [p for p in across if not _about(p, shape_problems)]
    if problems:
        raise RulesError(problems)
    return rules


def _about(problem: str, shape_problems: list[str]) -> bool:
    """A cross-field problem that only restates a shape problem, or names a stand-in value: a
    stand-in's text is its mark and path, which lie under a shape problem's path (a retailer's
    own text may hold the mark, but not beside the path of a key given a stand-in)."""
    paths = [p.split(":", 1)[0] for p in shape_problems]
    if any(mark in problem or shown(mark)[1:-1] in problem for mark in (_STAND_IN + path for path in paths)):
        return True
    path = problem.split(":", 1)[0]
    return any(path.startswith(shape) or _table_of(path) == _table_of(shape) or path == _table_of(shape)
               for shape in paths)


def _table_of(path: str) -> str:
    """The table a key is in (checks within a table that has a wrong key wait for it, and so do
    checks of the table itself and under the wrong key, but not those of the table's other tables: a wrong
    `points.rounding` hid `points.expiry`'s problems until it was fixed, an outside probe), or
    the key itself at the top, which would otherwise hold back everything."""
    return path.rsplit(".", 1)[0] if "." in path else path


# -- the shape of the document, driven by the model's types ---------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
"""A key TOML writes without quotes."""
_WHOLE = re.compile(r"([A-Za-z_]+)(?:\[\d+\])?$")
"""The path of a top-level key or of one table of its list."""
MOST_NESTING = 16
"""Arrays and tables nest at most this deep within a rules document (the example rules, every
key given, nest 4 deep): the checks walk a document by recursion, which one nested hundreds deep
would exhaust."""
MOST_DIGITS = 31
"""A number in the rules has at most this many digits before its point (below 10^31: a stored
version is read again at every start, so the bound it was published under stays)..."""
MOST_ZEROS = 30
"""...and a decimal at most this many zeros after it before its first digit."""
_DIGITS_BOUND = 10 ** MOST_DIGITS
_DROP = object()
"""What _check returns for a value that is not usable: its key is left out."""
_STAND_IN = "\x00"
"""Marks a stand-in text for a required key that was missing or wrong."""


def _check(value: Any, kind: Any, path: str, problems: list[str]) -> Any:
    """Adds what is wrong with `value` to `problems`; returns what of it is usable, or _DROP."""
    kind, meta = _unwrap(kind)
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(kind) if a is not type(None)]
        return _check(value, options[0], path, problems)
    if isinstance(kind, type) and issubclass(kind, Struct):
        return _check_table(value, kind, path, problems)
    if origin is list:
        return _check_list(value, get_args(kind)[0], path, problems)
    if origin is dict:
        return _check_mapping(value, get_args(kind)[1], path, problems)
    if origin is Literal:
        if value in get_args(kind):
            return value
        problems.append(f"{path}: expected {either(get_args(kind))}, got {shown(value)}")
        return _DROP
    return _check_scalar(value, kind, meta, path, problems)


Bound = Meta | DecimalBound | Wording


def _unwrap(kind: Any) -> tuple[Any, Bound | None]:
    if get_origin(kind) is Annotated:
        base, *extras = get_args(kind)
        return base, next((m for m in extras if isinstance(m, (Meta, DecimalBound, Wording))), None)
    return kind, None


def _check_table(value: Any, kind: type[Struct], path: str, problems: list[str]) -> Any:
    if not isinstance(value, dict):
        problems.append(f"{path or 'the document'}: expected a table, got {shown(value)}")
        # one mistake, one problem: its keys were not forgotten, the table was (`tiers = ["Basic"]`
        # also said `tiers[0].name: missing`, an outside probe)
        return _check_table({}, kind, path, [])
    fields = {f.encode_name: f for f in msgspec.structs.fields(kind)}
    usable = {}
    for key, element in value.items():  # in document order, as the retailer reads it
        if key in fields:
            checked = _check(element, fields[key].type, _join(path, key), problems)
            if checked is not _DROP:
                usable[key] = checked
        else:
            known = ", ".join(fields)
            problems.append(f"{_join(path, key)}: unknown key; expected one of {known}")
    for key, info in fields.items():
        if key not in value and info.required:
            problems.append(f"{_join(path, key)}: missing; expected {_describe(info.type)}")
        if key not in usable and info.required:
            usable[key] = _stand_in(info.type, _join(path, key))
    return usable


def _stand_in(kind: Any, path: str) -> Any:
    """A value of the right type for a required key that is missing or wrong."""
    kind, meta = _unwrap(kind)
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        return None
    if isinstance(kind, type) and issubclass(kind, Struct):
        return _check_table({}, kind, path, [])
    if origin is Literal:
        return get_args(kind)[0]
    if origin in (list, dict):
        return origin()
    if isinstance(meta, Wording):
        return "permanent" if meta.parse("permanent") else "lifetime"
    low = 0 if meta is None else (meta.ge if meta.ge is not None else (meta.gt or 0) + 1)
    return {str: _STAND_IN + path, bool: False, date: date(2000, 1, 1), Decimal: Decimal(1)}.get(kind, low)


def _check_list(value: Any, item: Any, path: str, problems: list[str]) -> Any:
    if not isinstance(value, list):
        problems.append(f"{path}: expected a list of {_describe(item)}, got {shown(value)}")
        return _DROP
    checked = (_check(element, item, f"{path}[{index}]", problems) for index, element in enumerate(value))
    return [element for element in checked if element is not _DROP]


def _check_mapping(value: Any, item: Any, path: str, problems: list[str]) -> Any:
    if not isinstance(value, dict):
        problems.append(f"{path}: expected a table, got {shown(value)}")
        return _DROP
    checked = {key: _check(element, item, _join(path, key), problems) for key, element in value.items()}
    return {key: element for key, element in checked.items() if element is not _DROP}


def _check_scalar(value: Any, kind: Any, meta: Bound | None, path: str, problems: list[str]) -> Any:
    if not _is_a(value, kind):
        problems.append(f"{path}: expected {_finite(_describe(kind, meta), value)}{_digits_hint(value, kind)}, "
                        f"got {shown(value)}")
        return _DROP
    if meta is not None and not _within(value, meta):
        problems.append(f"{path}: expected {_describe(kind, meta)}, got {shown(value)}")
        return _DROP
    return value


def _finite(expected: str, value: Any) -> str:
    """TOML's inf and nan are no number a rule can use: "expected a number greater than 0, got
    Infinity" read as if infinity were too small (an outside probe)."""
    if isinstance(value, Decimal) and not value.is_finite():
        return expected.replace("a number", "a finite number", 1)
    return expected


def _digits_hint(value: Any, kind: Any) -> str:
    """Why a finite number was refused where a decimal goes: its size (1E-32 was told "expected a
    number greater than 0", an outside probe)."""
    if _unwrap(kind)[0] is not Decimal or isinstance(value, bool) or not isinstance(value, int | Decimal):
        return ""
    return f" with at most {MOST_DIGITS} digits before its point or {MOST_ZEROS} zeros after it" if (
        isinstance(value, int) or value.is_finite()) else ""


def _is_a(value: Any, kind: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is Decimal:  # an integer of 400 digits passed where a decimal of as many was refused
        return (isinstance(value, int) and not isinstance(value, bool) and abs(value) < _DIGITS_BOUND) or (
            isinstance(value, Decimal) and _sensible(value))
    if kind is date:  # a TOML date-time is a datetime, itself a date
        return (isinstance(value, date) and not isinstance(value, datetime)) or (
            isinstance(value, str) and _iso_date(value))
    return isinstance(value, kind)


def _sensible(value: Decimal) -> bool:
    """TOML's inf and nan read as Decimals, which no bound can compare, and an exponent in the
    millions makes the rules' exact fractions take minutes to build: neither is a factor."""
    # adjusted(): the place of the first digit, 0 for units: 31 digits before the point end at 30,
    # 30 zeros after it put the first digit at -31 (its docs said 30 and 30, each one off: a probe)
    return value.is_finite() and -MOST_ZEROS - 1 <= value.adjusted() < MOST_DIGITS


def _iso_date(text: str) -> bool:
    try:
        parse_day(text)
    except ValueError:
        return False
    return True


def _within(value: Any, meta: Bound) -> bool:
    if isinstance(meta, Wording):
        return meta.parse(value) is not None
    if meta.ge is not None and value < meta.ge:
        return False
    if getattr(meta, "le", None) is not None and value > meta.le:
        return False
    return meta.gt is None or value > meta.gt


def _describe(kind: Any, meta: Bound | None = None) -> str:
    kind, inner = _unwrap(kind)
    meta = meta or inner
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        return _describe(next(a for a in get_args(kind) if a is not type(None)))
    if origin is Literal:
        return either(get_args(kind))
    if origin is list:
        item = _describe(get_args(kind)[0])
        return "a list of tables" if item == "a table" else f"a list of {item}"
    if origin is dict or (isinstance(kind, type) and issubclass(kind, Struct)):
        return "a table"
    names = {bool: "true or false", int: "an integer", Decimal: "a number", str: "a string",
             date: "a date (YYYY-MM-DD)"}
    name = names.get(kind, str(kind))
    if isinstance(meta, Wording):
        return meta.expected
    if meta is None:
        return name
    low = meta.ge if meta.ge is not None else (None if meta.gt is None else meta.gt + 1)
    high = getattr(meta, "le", None)
    if low is not None and high is not None:
        return f"{name} from {low:,} to {high:,}"
    if meta.gt is not None:
        return f"{name} greater than {meta.gt}"
    if meta.ge is not None:
        return f"{name} of at least {meta.ge}"
    return name


def _join(path: str, key: str) -> str:
    """A key's path as TOML writes it: a key that is not bare (a space, a dot, a control
    character) quoted and escaped, as messages show texts."""
    key = key if _BARE_KEY.fullmatch(key) else shown(key)
    return f"{path}.{key}" if path else key
