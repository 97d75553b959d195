"""The calendar of open deadlines, read back as a calendar client reads it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import icalendar  # a test dependency (pyproject.toml): the check never silently skips
from hypothesis import given, settings
from hypothesis import strategies as st

from notifications import ics

STAMP = datetime(2025, 4, 29, 1, 0, tzinfo=UTC)


def unfold(text: str) -> list[str]:
    """RFC 5545 3.1: a CRLF followed by one space or tab continues the previous line."""
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    return text.replace("\r\n ", "").replace("\r\n\t", "").split("\r\n")[:-1]


def unescape(value: str) -> str:
    out, chars = [], iter(value)
    for char in chars:
        if char == "\\":
            following = next(chars)
            out.append("\n" if following in "nN" else following)
        else:
            out.append(char)
    return "".join(out)


def events(text: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for content_line in unfold(text):
        name, _, value = content_line.partition(":")
        if content_line == "BEGIN:VEVENT":
            current = {}
        elif content_line == "END:VEVENT":
            found.append(current)
            current = None
        elif current is not None:
            current[name] = value
    return found


def deadline(n: int, **overrides) -> ics.Deadline:
    values = {
        "uid": ics.deadline_uid("QD-384-2025", f"X.{n}", "SO-TP", f"2025-0{n}"),
        "due": date(2025, 4, 20 + n),
        "summary": f"[X.{n}] Báo cáo công tác cải cách TTHC, hằng tháng; đợt {n}",
        "description": "Nội dung: Báo cáo kết quả\nCơ quan thực hiện: Sở Tư pháp, tỉnh Nghệ An",
    }
    return ics.Deadline(**(values | overrides))


def test_each_open_deadline_is_an_all_day_event_on_its_due_date():
    text = ics.calendar([deadline(2), deadline(1)], name="Đúng hạn — Sở Tư pháp", stamp=STAMP)
    lines = unfold(text)
    assert lines[:3] == ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//dunghan//Dung han 1.0//VI"]
    assert "X-WR-CALNAME:Đúng hạn — Sở Tư pháp" in lines
    assert lines[-1] == "END:VCALENDAR"
    first, second = events(text)
    assert first["DTSTART;VALUE=DATE"] == "20250421"
    assert first["DTEND;VALUE=DATE"] == "20250422"  # exclusive: one whole day
    assert second["DTSTART;VALUE=DATE"] == "20250422"
    assert first["DTSTAMP"] == "20250429T010000Z"
    assert unescape(first["SUMMARY"]) == ("[X.1] Báo cáo công tác cải cách TTHC, hằng tháng; đợt 1")
    assert unescape(first["DESCRIPTION"]) == (
        "Nội dung: Báo cáo kết quả\nCơ quan thực hiện: Sở Tư pháp, tỉnh Nghệ An"
    )
    assert first["SUMMARY"].count("\\,") == 1 and first["SUMMARY"].count("\\;") == 1


def test_lines_are_folded_at_75_octets_without_splitting_a_character():
    long = deadline(1, description="Nội dung: " + "kiểm soát thủ tục hành chính, " * 20)
    text = ics.calendar([long], name="Đúng hạn", stamp=STAMP)
    physical = text.split("\r\n")[:-1]
    assert max(len(p.encode("utf-8")) for p in physical) <= 75
    assert any(p.startswith(" ") for p in physical)
    for piece in physical:
        piece.encode("utf-8").decode("utf-8")  # every piece is whole characters
    (event,) = events(text)
    assert unescape(event["DESCRIPTION"]) == long.description


@settings(max_examples=1000)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400))
def test_folding_and_escaping_give_back_any_text(value):
    text = ics.calendar([deadline(1, summary=value)], name="x", stamp=STAMP)
    assert all(len(p.encode("utf-8")) <= 75 for p in text.split("\r\n"))
    (event,) = events(text)
    assert unescape(event["SUMMARY"]) == value.replace("\r\n", "\n").replace("\r", "\n")


def test_the_uid_names_the_item_not_the_database_row():
    uid = ics.deadline_uid("QD-384-2025", "X.2", "SO-TP", "2025-04-22")
    assert uid == ics.deadline_uid("QD-384-2025", "X.2", "SO-TP", "2025-04-22")
    assert uid != ics.deadline_uid("QD-384-2025", "X.2", "SO-YT", "2025-04-22")
    assert uid.endswith("@dunghan")


def test_a_calendar_without_deadlines_is_still_a_valid_calendar():
    text = ics.calendar([], name="Đúng hạn — Sở Tư pháp", stamp=STAMP)
    lines = unfold(text)
    assert events(text) == []
    assert "BEGIN:VTIMEZONE" in lines and "TZID:Asia/Ho_Chi_Minh" in lines


def test_an_independent_parser_reads_the_same_calendar():
    text = ics.calendar(
        [deadline(1), deadline(2, description="Dòng một\nDòng hai; có dấu, phẩy \\ và gạch")],
        name="Đúng hạn — Sở Tư pháp",
        stamp=STAMP,
    )
    parsed = icalendar.Calendar.from_ical(text)
    vevents = list(parsed.walk("VEVENT"))
    assert [str(e["SUMMARY"]) for e in vevents] == [deadline(1).summary, deadline(2).summary]
    assert [e["DTSTART"].dt for e in vevents] == [date(2025, 4, 21), date(2025, 4, 22)]
    assert [e["DTEND"].dt for e in vevents] == [date(2025, 4, 22), date(2025, 4, 23)]
    assert str(vevents[1]["DESCRIPTION"]) == "Dòng một\nDòng hai; có dấu, phẩy \\ và gạch"
    assert str(vevents[0]["UID"]) == deadline(1).uid
    assert str(parsed["X-WR-CALNAME"]) == "Đúng hạn — Sở Tư pháp"
