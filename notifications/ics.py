"""iCalendar (RFC 5545) for open deadlines: one all-day VEVENT per item, on its due date.

Pure: deadlines in, text out. Written by hand rather than with a library because the
subset is small and fully specified here: CRLF line ends (3.1), lines folded at 75 octets
without splitting a UTF-8 character (3.1), TEXT values escaped (3.3.11), DATE values for
all-day events with an exclusive DTEND (3.6.1), a UID that never changes for an item so
calendar clients update it instead of adding a copy (3.8.4.7). The tests read the output
back with an independent parser.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

PRODID = "-//dunghan//Dung han 1.0//VI"
UID_DOMAIN = "dunghan"
MAX_OCTETS = 75
CRLF = "\r\n"
TZID = "Asia/Ho_Chi_Minh"
# Vietnam keeps UTC+7 all year (no daylight saving since 1975).
VIETNAM_TIMEZONE = (
    "BEGIN:VTIMEZONE",
    f"TZID:{TZID}",
    "BEGIN:STANDARD",
    "DTSTART:19750613T000000",
    "TZOFFSETFROM:+0700",
    "TZOFFSETTO:+0700",
    "TZNAME:ICT",
    "END:STANDARD",
    "END:VTIMEZONE",
)


@dataclass(frozen=True)
class Deadline:
    """One open deadline as a calendar shows it."""

    uid: str
    due: date
    summary: str
    description: str
    updated: datetime | None = None


def deadline_uid(plan_code: str, number: str, agency_code: str, period_key: str) -> str:
    """A UID that names the item by what it is (plan, obligation, agency, period), so it is
    the same in every calendar file and every email, whatever the database ids."""
    digest = hashlib.sha256(f"{plan_code}|{number}|{agency_code}|{period_key}".encode())
    return f"{digest.hexdigest()[:32]}@{UID_DOMAIN}"


def escape_text(value: str) -> str:
    """A TEXT value: backslash, semicolon, comma and newlines escaped (RFC 5545 3.3.11)."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\n", "\\n")


def fold(line: str) -> str:
    """A content line folded into CRLF-joined pieces of at most 75 octets (the leading
    space of a continuation included), never inside a multi-byte character."""
    data = line.encode("utf-8")
    if len(data) <= MAX_OCTETS:
        return line
    pieces: list[bytes] = []
    start, room = 0, MAX_OCTETS
    while len(data) - start > room:
        end = start + room
        while data[end] & 0xC0 == 0x80:  # a UTF-8 continuation byte: cut before its lead
            end -= 1
        pieces.append(data[start:end])
        start, room = end, MAX_OCTETS - 1
    pieces.append(data[start:])
    return (CRLF + " ").join(piece.decode("utf-8") for piece in pieces)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _event(deadline: Deadline, stamp: str) -> list[str]:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{deadline.uid}",
        f"DTSTAMP:{stamp}",
        f"DTSTART;VALUE=DATE:{deadline.due:%Y%m%d}",
        f"DTEND;VALUE=DATE:{deadline.due + timedelta(days=1):%Y%m%d}",
        f"SUMMARY:{escape_text(deadline.summary)}",
        f"DESCRIPTION:{escape_text(deadline.description)}",
        "TRANSP:TRANSPARENT",
        "STATUS:CONFIRMED",
    ]
    if deadline.updated is not None:
        lines.append(f"LAST-MODIFIED:{_stamp(deadline.updated)}")
    lines.append("END:VEVENT")
    return lines


def calendar(deadlines: Iterable[Deadline], *, name: str, stamp: datetime) -> str:
    """A VCALENDAR of all-day events. It always holds the VTIMEZONE of Vietnam, so that a
    calendar with no open deadline is still valid (RFC 5545 wants one component) and a
    subscribed calendar empties when the last deadline is met."""
    stamp_text = _stamp(stamp)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(name)}",
        f"X-WR-TIMEZONE:{TZID}",
        *VIETNAM_TIMEZONE,
    ]
    for deadline in sorted(deadlines, key=lambda d: (d.due, d.summary, d.uid)):
        lines.extend(_event(deadline, stamp_text))
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + CRLF for line in lines)
