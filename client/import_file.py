"""Reading an import file of members and opening balances: CSV with a header row, or JSON lines,
one member per line, each row with its line number and the byte offset after it (where a
resumed import starts). A row that cannot be read is given with its reason instead; what a
row's values mean is the server's to check (engine/opening.py), so both files get the same
reasons for the same values."""

import codecs
import csv
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

import msgspec

from engine.errors import PatronError
from engine.messages import not_utf8
from engine.opening import Opening, OpeningLot

__all__ = ["COLUMNS", "FORMATS", "Row", "file_format", "read_rows"]

FORMATS = ("csv", "jsonl")
COLUMNS = ("member_id", "tier", "tier_valid_until", "points", "stored_value", "bonus_value", "growth", "status",
           "channel", "birthday", "source", "content", "campaign")
"""CSV columns, in any order; only member_id is required. `points` holds the lots:
`AMOUNT[@EXPIRES]` separated by `;` (EXPIRES an ISO date or `never`; none: the programme's)."""
_NUMBERS = frozenset({"stored_value", "bonus_value", "growth"})
_PROFILE = ("channel", "source", "content", "campaign")


class Row(NamedTuple):
    line: int
    end: int
    """The byte offset just after the row's line."""
    member_id: str
    message: Opening | None
    reason: str = ""
    detail: str = ""


class _Lot(msgspec.Struct, forbid_unknown_fields=True):
    points: int
    expires: str = ""


class _Line(msgspec.Struct, forbid_unknown_fields=True):
    """A JSON line: the CSV columns as keys; `points` an integer or a list of lots."""

    member_id: str
    tier: str = ""
    tier_valid_until: str = ""
    points: int | list[_Lot] = 0
    stored_value: int = 0
    bonus_value: int = 0
    growth: int = 0
    status: str = ""
    channel: str = ""
    birthday: str = ""
    source: str = ""
    content: str = ""
    campaign: str = ""


_decode_line = msgspec.json.Decoder(_Line).decode


def file_format(path: Path, given: str | None) -> str:
    if given:
        return given
    if path.suffix.lower() == ".csv":
        return "csv"
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise PatronError(f"{path}: cannot tell the format from the name; give --format csv or --format jsonl")


def read_rows(path: Path, fmt: str, start: int = 0, first_line: int = 1) -> Iterator[Row]:
    """The rows from byte offset `start` (the start of line `first_line`) on; a CSV file's
    header is read first wherever the rows start."""
    with path.open("rb") as file:
        if fmt == "csv":
            columns, header_end = _header(file, path)
            if start < header_end:
                start, first_line = header_end, 2
            file.seek(start)
            yield from _csv_rows(file, columns, start, first_line)
        else:
            file.seek(start)
            yield from _json_rows(file, start, first_line)


def _header(file: BinaryIO, path: Path) -> tuple[list[str], int]:
    raw = file.readline()
    # UTF-16 (Excel's "Unicode text"): Python's csv message said nothing of it
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in raw:
        raise PatronError(f"{path}: not UTF-8 text but UTF-16 (Excel's \"Unicode text\"); save it as \"CSV UTF-8\" "
                          f"and import that")
    try:
        names = [name.strip() for name in next(csv.reader([raw.decode("utf-8-sig", "replace")]), [])]
    except csv.Error as error:  # a quoted name beyond the csv module's field limit
        raise PatronError(f"{path}: line 1 must name the columns ({', '.join(COLUMNS)}); it is not a CSV "
                          f"row: {error}") from None
    unknown = [name for name in names if name not in COLUMNS]
    if unknown or "member_id" not in names or len(set(names)) != len(names):
        raise PatronError(f"{path}: line 1 must name the columns, member_id among them, each once, from "
                          f"{', '.join(COLUMNS)}; got {', '.join(names) or 'nothing'}")
    return names, len(raw)


def _csv_rows(file: BinaryIO, columns: list[str], offset: int, line: int) -> Iterator[Row]:
    build = _builder(columns)
    width = len(columns)
    member_at = columns.index("member_id")
    for raw in file:
        offset += len(raw)
        try:
            text = raw.decode().rstrip("\r\n")
        except UnicodeDecodeError as error:  # decoded with replacements, its member id would be another's
            yield Row(line, offset, "", None, "malformed", not_utf8(error, offset - len(raw)))
            line += 1
            continue
        if text.count('"') % 2:  # a quoted value broken over lines: its second part read as a row made a member
            yield Row(line, offset, "", None, "malformed", "a quote left open (a value with a line break in it? "
                                                            "values are read one line at a time)")
        elif text.strip():
            try:
                values = next(csv.reader([text])) if '"' in text else text.split(",")
            except csv.Error as error:  # a quoted value beyond the csv module's field limit
                yield Row(line, offset, "", None, "malformed", f"not a CSV row: {error}")
                line += 1
                continue
            # kept as written, as Enroll and transactions keep it: trimmed, " m1" was imported as
            # "m1", and the transactions for " m1" made another member (an outside probe)
            member_id = values[member_at] if len(values) > member_at else ""
            if len(values) != width:
                yield Row(line, offset, member_id, None, "malformed", f"expected {width} values, got {len(values)}")
            else:
                try:
                    yield Row(line, offset, member_id, build(member_id, values))
                except ValueError as error:
                    yield Row(line, offset, member_id, None, "bad_number", str(error))
        line += 1


def _builder(columns: list[str]) -> Callable[[str, list[str]], Opening]:
    """Makes a row's engine row from its values; the columns' places are worked out once per file."""
    places = {name: index for index, name in enumerate(columns)}
    profile = [(name, places[name]) for name in _PROFILE if name in places]  # as Enroll takes them
    # a birthday is a date: ` 2000-03-05 ` was refused bad_birthday (an import probe)
    texts = [(name, places[name]) for name in ("tier", "tier_valid_until", "status", "birthday") if name in places]
    numbers = [(name, places[name]) for name in _NUMBERS if name in places]
    points_at = places.get("points")

    def build(member_id: str, values: list[str]) -> Opening:
        fields = {name: values[i] for name, i in profile}
        fields.update((name, values[i].strip()) for name, i in texts)  # names and dates: spaces mean nothing
        for name, i in numbers:
            fields[name] = _number(name, values[i])
        if points_at is not None:
            fields["points"] = _lots(values[points_at])
        return Opening(member_id=member_id, **fields)
    return build


_WHOLE = re.compile(r"[+-]?[0-9]+")
_SMALLEST, _LARGEST = -(1 << 63), (1 << 63) - 1
"""What a row's numbers may hold on the wire (the server's own bounds are far smaller)."""


def _number(name: str, text: str) -> int:
    # ASCII digits only: int() also takes "1_000" and other scripts' digits, which no export means
    if not text.strip():
        return 0
    if not _WHOLE.fullmatch(text.strip()):
        raise ValueError(f"{name}: expected a whole number, got {text.strip()!r}")
    return _in_64_bits(name, int(text))


def _in_64_bits(name: str, value: int) -> int:
    if not _SMALLEST <= value <= _LARGEST:
        raise ValueError(f"{name}: {value} is beyond 64 bits")
    return value


def _lots(text: str) -> list[OpeningLot]:
    lots: list[OpeningLot] = []
    if not text:
        return lots
    for part in text.split(";"):
        amount, at, expires = part.partition("@")
        if at and not expires.strip():  # "1@" read as "1" would take the default expiry unasked
            raise ValueError(f"points: expected AMOUNT@EXPIRES, got {part.strip()!r}")
        if amount.strip():
            lots.append(OpeningLot(_number("points", amount), expires.strip()))
        elif part.strip():  # "@never": a lot without its amount was read as no lot at all
            raise ValueError(f"points: expected AMOUNT@EXPIRES, got {part.strip()!r}")
    return lots


def _json_rows(file: BinaryIO, offset: int, line: int) -> Iterator[Row]:
    for raw in file:
        offset += len(raw)
        if raw.strip():
            yield _json_row(line, offset, raw)
        line += 1


def _json_row(line: int, end: int, raw: bytes) -> Row:
    try:
        row = _decode_line(raw)
    except msgspec.ValidationError as error:
        if not raw.lstrip().startswith(b"{"):  # valid JSON, but an array, a string or a number: no row at all
            return Row(line, end, "", None, "malformed", f"not a JSON object: {error}")
        return Row(line, end, _member_of(raw), None, "bad_field", str(error))
    except msgspec.DecodeError as error:
        return Row(line, end, "", None, "malformed", f"not a JSON object: {error}")
    except UnicodeDecodeError:  # msgspec's, for a string that is not UTF-8, says where in the string
        return Row(line, end, "", None, "malformed", _not_utf8_line(raw, end - len(raw)))
    try:
        for name in _NUMBERS:
            _in_64_bits(name, getattr(row, name))
        given = ([_Lot(row.points)] if row.points else []) if isinstance(row.points, int) else row.points
        points = [OpeningLot(_in_64_bits("points", lot.points), lot.expires) for lot in given]
    except ValueError as error:  # a number beyond 64 bits
        return Row(line, end, row.member_id, None, "bad_number", str(error))
    message = Opening(member_id=row.member_id, tier=row.tier, tier_valid_until=row.tier_valid_until, points=points,
                      stored_value=row.stored_value, bonus_value=row.bonus_value, growth=row.growth,
                      status=row.status, **{k: getattr(row, k) for k in _PROFILE})
    return Row(line, end, row.member_id, message)


def _not_utf8_line(raw: bytes, start: int) -> str:
    try:
        raw.decode()
    except UnicodeDecodeError as error:
        return not_utf8(error, start)
    return "not UTF-8 text"


class _Named(msgspec.Struct):
    """Only a line's member id: the other keys are passed over unread, so a number no decoder
    takes (1e400) cannot stop the report naming the member."""

    member_id: str = ""


_decode_named = msgspec.json.Decoder(_Named).decode


def _member_of(raw: bytes) -> str:
    """The member id of a line whose other fields are wrong, for the report; empty when there is none."""
    try:
        return _decode_named(raw).member_id
    except msgspec.DecodeError:  # not an object, or the id itself is not text
        return ""
