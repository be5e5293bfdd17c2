"""Reading import files: rows with their lines and the offsets a resumed import starts from,
and the reasons of rows that cannot be read."""

import pytest

from client.import_file import read_rows
from engine.errors import PatronError


def lots(row) -> list[tuple[int, str]]:
    return [(lot.points, lot.expires) for lot in row.message.points]


def test_csv_rows_come_with_their_lines_values_and_the_offset_after_them(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text('growth,member_id,points,channel\n7,a,"10@2027-01-01;5@never;3",pos\n\n8,b,,"web, app"\n')
    first, second = read_rows(path, "csv")
    assert (first.line, first.member_id, first.message.growth, first.message.channel) == (2, "a", 7, "pos")
    assert lots(first) == [(10, "2027-01-01"), (5, "never"), (3, "")]
    assert (second.line, second.member_id, lots(second), second.message.channel) == (4, "b", [], "web, app")
    assert second.end == path.stat().st_size
    [resumed] = read_rows(path, "csv", start=first.end, first_line=first.line + 1)
    assert resumed == second


def test_csv_rows_that_cannot_be_read_say_why_and_the_rest_are_read(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("member_id,stored_value,points\na,1x,1\nb,1\nc,2,5@2027-01-01\n")
    rows = [(row.line, row.member_id, row.reason) for row in read_rows(path, "csv")]
    assert rows == [(2, "a", "bad_number"), (3, "b", "malformed"), (4, "c", "")]


def test_a_quoted_value_broken_over_lines_makes_both_lines_malformed_not_a_member(tmp_path):
    # the second part, `line",7`, was imported as member 'line"' with 7 points (an outside probe)
    path = tmp_path / "m.csv"
    path.write_text('member_id,channel,points\na,"multi\nline",7\nb,"x, ""y""",3\n')
    rows = [(row.line, row.member_id, row.reason) for row in read_rows(path, "csv")]
    assert rows == [(2, "", "malformed"), (3, "", "malformed"), (4, "b", "")]


def test_a_csv_member_id_and_profile_are_kept_as_written_as_enroll_keeps_them(tmp_path):
    # trimmed, " m1" was imported as "m1": its transactions made another member, and a row "m1"
    # further down was refused duplicate_member (an outside probe)
    path = tmp_path / "m.csv"
    path.write_text('member_id,channel,tier,points,birthday\n" m1 ", pos ,Gold ,1, 2000-03-05 \nm2 ,web, Silver,2,\n'
                    'm1,app,,3,03-05\n')
    rows = [(row.member_id, row.message.channel, row.message.tier, row.message.birthday)
            for row in read_rows(path, "csv")]
    assert rows == [(" m1 ", " pos ", "Gold", "2000-03-05"), ("m2 ", "web", "Silver", ""), ("m1", "app", "", "03-05")]


def test_a_json_line_that_is_not_an_object_is_a_malformed_row(tmp_path):
    # an outside probe: an array, a string and a number were `bad_field`, as if a field were wrong
    path = tmp_path / "m.jsonl"
    path.write_text('{"member_id": "a"}\n[1, 2]\n"just text"\n 42\n{"member_id": "b", "growth": "x"}\n')
    rows = [(row.line, row.member_id, row.reason) for row in read_rows(path, "jsonl")]
    assert rows == [(1, "a", ""), (2, "", "malformed"), (3, "", "malformed"), (4, "", "malformed"),
                    (5, "b", "bad_field")]


@pytest.mark.parametrize(("column", "value", "detail"), [
    ("stored_value", "1_000", "stored_value: expected a whole number, got '1_000'"),
    ("growth", "\u0661\u0662", "growth: expected a whole number, got '\u0661\u0662'"),  # Arabic-Indic digits
    ("points", "@never", "points: expected AMOUNT@EXPIRES, got '@never'"),
    ("points", "5@never;;@2027-01-01", "points: expected AMOUNT@EXPIRES, got '@2027-01-01'"),
    ("points", "5@never;1@ ", "points: expected AMOUNT@EXPIRES, got '1@'")])
def test_csv_numbers_are_ascii_digits_and_a_lot_has_its_amount(tmp_path, column, value, detail):
    # int() took "1_000" and other scripts' digits, and "@never" was read as no lot: 0 points
    path = tmp_path / "m.csv"
    path.write_text(f"member_id,{column}\na,{value}\nb,12\n", encoding="utf-8")
    first, second = read_rows(path, "csv")
    assert (first.member_id, first.reason, first.detail) == ("a", "bad_number", detail)
    assert (second.member_id, second.reason) == ("b", "")


@pytest.mark.parametrize("header", ["id,points", "member_id,points,colour", "member_id,member_id", ""])
def test_a_csv_header_without_member_id_or_with_unknown_columns_stops_the_import(tmp_path, header):
    path = tmp_path / "m.csv"
    path.write_text(header + "\n")
    with pytest.raises(PatronError, match="line 1 must name the columns, member_id among them"):
        list(read_rows(path, "csv"))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_csv_is_named_as_such_with_what_to_do(tmp_path, encoding):
    """Excel's "Unicode text": Python's csv message spoke of universal-newline mode (an outside probe)."""
    path = tmp_path / "m.csv"
    path.write_text("member_id,points\na,40\n", encoding=encoding)
    with pytest.raises(PatronError, match=r"not UTF-8 text but UTF-16 .*save it as \"CSV UTF-8\""):
        list(read_rows(path, "csv"))


def test_json_lines_take_points_as_a_number_or_as_lots_and_refuse_unknown_keys(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"member_id": "a", "points": 40, "tier": "Gold"}\n'
                    '{"member_id": "b", "points": [{"points": 3, "expires": "never"}]}\n'
                    '{"member_id": "c", "colour": "red"}\n[1, 2]\n{"member_id": "d", "growth": "many"}\n')
    rows = list(read_rows(path, "jsonl"))
    assert (lots(rows[0]), rows[0].message.tier, lots(rows[1])) == ([(40, "")], "Gold", [(3, "never")])
    assert [(row.line, row.member_id, row.reason) for row in rows[2:]] == [
        (3, "c", "bad_field"), (4, "", "malformed"), (5, "d", "bad_field")]


def test_json_numbers_out_of_every_range_are_rejected_rows_and_the_rest_are_read(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"member_id": "L1"}\n{"member_id": "L2", "stored_value": 1e400}\n'
                    '{"member_id": "L3", "points": [{"points": -1e400, "expires": "never"}]}\n'
                    '{"member_id": 1e400}\n{"member_id": "L5", "growth": 99999999999999999999}\n{"member_id": "L6"}\n')
    rows = [(row.line, row.member_id, row.reason) for row in read_rows(path, "jsonl")]
    assert rows == [(1, "L1", ""), (2, "L2", "bad_field"), (3, "L3", "bad_field"), (4, "", "bad_field"),
                    (5, "L5", "bad_number"), (6, "L6", "")]
    second = list(read_rows(path, "jsonl"))[1]
    assert second.detail == "Number out of range - at `$.stored_value`"


@pytest.mark.parametrize(("fmt", "text"), [
    ("csv", b"member_id,points\na1,5\nb\xff2,5\nc3,5\n"),
    ("jsonl", b'{"member_id": "a1"}\n{"member_id": "b\xff2"}\n{"member_id": "c3"}\n')])
def test_a_row_that_is_not_utf8_is_a_malformed_row_that_says_where(tmp_path, fmt, text):
    # an outside probe: a JSON line stopped the import with a traceback; a CSV row was imported as
    # member "b\ufffd2", a member id the till never sent
    path = tmp_path / f"m.{fmt}"
    path.write_bytes(text)
    rows = [(row.member_id, row.reason, row.detail) for row in read_rows(path, fmt)]
    assert rows == [("a1", "", ""), ("", "malformed", f"not UTF-8 text (byte 0xff at offset {text.index(0xff)}); "
                                                      "save it as UTF-8"), ("c3", "", "")]


def test_a_csv_value_longer_than_the_csv_reader_takes_is_a_malformed_row(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(f'member_id,channel\na,pos\nb,"{"x" * 200_000}"\nc,web\n')
    rows = [(row.line, row.member_id, row.reason) for row in read_rows(path, "csv")]
    assert rows == [(2, "a", ""), (3, "", "malformed"), (4, "c", "")]


def test_a_csv_header_longer_than_the_csv_reader_takes_stops_the_import_in_one_sentence(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(f'member_id,"{"x" * 200_000}"\na,b\n')
    with pytest.raises(PatronError, match="line 1 must name the columns"):
        list(read_rows(path, "csv"))
