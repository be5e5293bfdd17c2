"""SPEC §1: a member has up to 48 custom attributes, however many enrollments gave them."""

import pytest

from engine.calendar import parse_day
from engine.errors import InvalidRequestError
from engine.operators import MAX_ATTRIBUTES, Enrollment, enroll
from tests.builders import book

DAY = parse_day("2026-03-04")


def attributes(prefix: str, count: int = MAX_ATTRIBUTES) -> dict[str, str | int | float]:
    return {f"{prefix}{n}": n for n in range(count)}


def test_enrolling_a_member_again_with_other_attributes_cannot_pass_the_limit_and_changes_nothing():
    target = book()
    enroll(target, Enrollment(member_id="E20", attributes=attributes("a")), DAY)
    before = target.members["E20"].profile
    with pytest.raises(InvalidRequestError, match="member 'E20' has 48 and this adds 48, 96 in all; at most 48"):
        enroll(target, Enrollment(member_id="E20", campaign="spring", attributes=attributes("b")), DAY)
    with pytest.raises(InvalidRequestError, match="has 48 and this adds 1, 49 in all"):
        enroll(target, Enrollment(member_id="E20", attributes={"a0": 7, "b0": 1}), DAY)
    assert target.members["E20"].profile == before


def test_enrolling_again_may_change_attributes_the_member_has_and_add_up_to_the_limit():
    target = book()
    enroll(target, Enrollment(member_id="E21", attributes=attributes("a", 40)), DAY)
    member, created = enroll(target, Enrollment(member_id="E21", attributes={**attributes("a", 40), "a0": "x",
                                                                             **attributes("b", 8)}), DAY)
    assert (created, len(member.profile.attributes), member.profile.attributes["a0"]) == (False, 48, "x")


def test_a_member_past_the_limit_from_before_it_was_checked_may_be_enrolled_again_but_gains_nothing():
    target = book()
    member, _ = enroll(target, Enrollment(member_id="E22"), DAY)
    member.profile.attributes = attributes("a", 96)
    enroll(target, Enrollment(member_id="E22", birthday="03-05", attributes={"a1": "x"}), DAY)
    assert (member.profile.birthday, len(member.profile.attributes)) == ("03-05", 96)
    with pytest.raises(InvalidRequestError, match="has 96 and this adds 1, 97 in all"):
        enroll(target, Enrollment(member_id="E22", attributes={"new": 1}), DAY)


@pytest.mark.parametrize("birthday", ["1900-02-29", "0000-01-01", "1990-02-30", "13-01", "02-30",
                                      "١٢-٠١", "０３-０５", "12-01\n"])
def test_a_birthday_that_is_no_date_is_refused(birthday):
    # "1900-02-29" and "0000-01-01" once passed: only the month and day were checked, in a leap year;
    # digits of other scripts and a trailing newline passed a pattern that took them (an outside probe)
    with pytest.raises(InvalidRequestError, match='birthday: expected "MM-DD" or "YYYY-MM-DD"'):
        enroll(book(), Enrollment(member_id="B1", birthday=birthday), DAY)


@pytest.mark.parametrize(("birthday", "kept"), [("2000-02-29", "02-29"), ("02-29", "02-29"), ("1985-12-31", "12-31")])
def test_a_birthday_is_kept_as_its_month_and_day(birthday, kept):
    target = book()
    enroll(target, Enrollment(member_id="B2", birthday=birthday), DAY)
    assert target.members["B2"].profile.birthday == kept


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_a_number_attribute_must_be_finite(number):
    # JSON, in which members are exported and shown, has no NaN: it was printed as null
    target = book()
    with pytest.raises(InvalidRequestError, match=r"attributes\.score: expected a finite number"):
        enroll(target, Enrollment(member_id="N1", attributes={"score": number}), DAY)
    assert "N1" not in target.members


@pytest.mark.parametrize(("attributes", "problem"), [
    ({"": "x"}, "attributes: expected names of 1 to 64 printable characters"),
    ({"n" * 65: "x"}, "attributes: expected names of 1 to 64 printable characters"),
    ({"a\nb": "x"}, "attributes: expected names of 1 to 64 printable characters"),
    ({"notes": "x" * 1_001}, "attributes.notes: expected at most 1,000 characters, got 1,001"),
])
def test_an_attribute_is_named_and_of_a_size_a_member_record_can_carry(attributes, problem):
    # a probe's attribute of a megabyte went into the member's record, written at every change
    target = book()
    with pytest.raises(InvalidRequestError, match=problem):
        enroll(target, Enrollment(member_id="A1", attributes=attributes), DAY)
    assert "A1" not in target.members
    enroll(target, Enrollment(member_id="A1", attributes={"notes": "x" * 1_000}), DAY)


def test_attributes_sent_as_dates_are_kept_as_dates_until_sent_again_as_something_else():
    """SPEC §1: typed attributes (an outside probe: a date came back as text)."""
    target = book()
    sent = {"since": "2026-12-02", "city": "Hangzhou", "born": "1990-03-05"}
    enroll(target, Enrollment(member_id="E23", attributes=sent, date_attributes=frozenset({"since", "born"})), DAY)
    assert target.members["E23"].profile.dates == ("born", "since")
    enroll(target, Enrollment(member_id="E23", attributes={"since": "soon"}), DAY)
    assert target.members["E23"].profile.dates == ("born",)


@pytest.mark.parametrize("text", ["20261202", "2026-W49-3", "2026-12-2", " 2026-12-02", "2026-02-30"])
def test_a_date_attribute_is_yyyy_mm_dd_and_nothing_else(text):
    with pytest.raises(InvalidRequestError, match=r"attributes.since: expected a date \(YYYY-MM-DD\)"):
        enroll(book(), Enrollment(member_id="E24", attributes={"since": text}, date_attributes=frozenset({"since"})),
               DAY)


def test_a_profile_stored_before_dates_were_kept_reads_back_with_none():
    """Profile.dates was appended: a record written before it reads back as it was, with no date."""
    import msgspec

    from engine.members import Profile

    stored = msgspec.msgpack.encode(["03-05", "wechat", "", "spring", "pos", {"city": "Hangzhou"}])
    assert msgspec.msgpack.decode(stored, type=Profile) == Profile("03-05", "wechat", "", "spring", "pos",
                                                                   {"city": "Hangzhou"}, ())


@pytest.mark.parametrize("member_id", ["", " ", "M\x001", "M\n", "x" * 101])
def test_enroll_refuses_an_id_a_transaction_could_not_name_and_enrolls_no_one(member_id):
    target = book()
    with pytest.raises(InvalidRequestError, match="member_id: expected 1 to 100 characters, not only spaces"):
        enroll(target, Enrollment(member_id=member_id), DAY)
    assert not target.members
