"""Validating a one-stop export, column by column: pure functions, no database.

Each check takes whole columns (lists of the export's text, or numpy arrays of parsed
values) and returns the problems it found as `(row index, column, message)` triples, in
Vietnamese. The importer maps row indexes to file lines and refuses the file if any check
found anything. The cross-column checks are numpy masks over `datetime64[s]` columns (NaT
for a blank cell), so a faster reader can feed them unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NAT = np.datetime64("NaT", "s")

Problem = tuple[int, str, str]  # (row index in the file's data rows, column, message)

# Events that cannot come before another one: (later, earlier, message).
EVENT_ORDER = (
    ("completed_at", "received_at", "hoàn thành trước khi tiếp nhận"),
    ("supplement_requested_at", "received_at", "yêu cầu bổ sung trước khi tiếp nhận"),
    ("supplement_received_at", "supplement_requested_at", "nhận bổ sung trước khi yêu cầu"),
    ("completed_at", "supplement_received_at", "hoàn thành trước khi nhận đủ bổ sung"),
    ("apology_at", "received_at", "xin lỗi trước khi tiếp nhận"),
    ("apology_new_due", "apology_at", "ngày hẹn lại trước ngày xin lỗi"),
    ("closed_at", "received_at", "đóng hồ sơ trước khi tiếp nhận"),
    ("closed_at", "supplement_requested_at", "đóng hồ sơ trước khi yêu cầu bổ sung"),
    ("closed_at", "supplement_received_at", "đóng hồ sơ trước khi nhận đủ bổ sung"),
    ("appointment_at", "received_at", "ngày hẹn trả trước khi tiếp nhận"),
)


def local_time(text: str, time_format: str | None = None) -> datetime:
    """One cell as a local naive time, to the second. ISO 8601 by default; an offset is
    converted to Vietnam time. Raises ValueError."""
    value = datetime.strptime(text, time_format) if time_format else datetime.fromisoformat(text)
    if value.tzinfo is not None:
        value = value.astimezone(VN).replace(tzinfo=None)
    return value.replace(microsecond=0) if value.microsecond else value


# Local ISO 8601 without an offset: numpy parses a whole column of these at C speed, to the
# second, exactly as `datetime.fromisoformat` would (fractions of a second dropped).
_PLAIN_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}(?::\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?)?")


def parse_times(
    values: Sequence[str], column: str, time_format: str | None = None, *, required: bool = False
) -> tuple[np.ndarray, list[Problem]]:
    """A column of times as `datetime64[s]` (NaT for a blank cell), and its bad cells."""
    problems: list[Problem] = []
    if required:
        problems += [(row, column, "trống (bắt buộc)") for row, raw in enumerate(values) if not raw]
    if time_format is None:
        others = [row for row, raw in enumerate(values) if raw and not _PLAIN_ISO.fullmatch(raw)]
        plain = list(values)
        for row in others:
            plain[row] = ""
        try:
            out = np.array(plain, dtype="datetime64[s]")
        except ValueError:  # a plain-looking impossible date: check cell by cell
            others = [row for row, raw in enumerate(values) if raw]
            out = np.full(len(values), NAT)
    else:
        others = [row for row, raw in enumerate(values) if raw]
        out = np.full(len(values), NAT)
    expected = f"theo dạng {time_format}" if time_format else "ISO 8601"
    for row in others:
        raw = values[row]
        try:
            out[row] = np.datetime64(local_time(raw, time_format), "s")
        except ValueError:
            problems.append((row, column, f"ngày giờ không hợp lệ (cần {expected}): {raw!r}"))
    return out, problems


def parse_flags(
    values: Sequence[str], column: str, *, blank_allowed: bool
) -> tuple[list[bool | None], list[Problem]]:
    """A 0/1 column as booleans (None for a blank cell where blank is allowed)."""
    problems: list[Problem] = []
    out: list[bool | None] = []
    blank = " hoặc để trống" if blank_allowed else ""
    for row, raw in enumerate(values):
        if raw in ("0", "1"):
            out.append(raw == "1")
        elif raw == "" and blank_allowed:
            out.append(None)
        else:
            out.append(None)
            problems.append((row, column, f"phải là 0 hoặc 1{blank}: {raw!r}"))
    return out, problems


def parse_counts(values: Sequence[str], column: str) -> tuple[np.ndarray, list[Problem]]:
    """A column of small non-negative counts (-1 for a blank cell)."""
    problems: list[Problem] = []
    out = np.full(len(values), -1, dtype=np.int64)
    for row, raw in enumerate(values):
        if raw == "":
            continue
        if raw.isdigit() and int(raw) <= 99:
            out[row] = int(raw)
        else:
            problems.append((row, column, f"phải là số nguyên từ 0 đến 99: {raw!r}"))
    return out, problems


def check_required(values: Sequence[str], column: str) -> list[Problem]:
    return [(row, column, "trống") for row, raw in enumerate(values) if not raw]


def check_choice(values: Sequence[str], column: str, choices: Sequence[str]) -> list[Problem]:
    allowed = set(choices)
    return [
        (row, column, f"{raw!r} không hợp lệ (chọn: {', '.join(choices)})")
        for row, raw in enumerate(values)
        if raw not in allowed
    ]


def check_known(values: Sequence[str], column: str, known, what: str) -> list[Problem]:
    """Each value must be one of `known` (a code the registry or catalog holds)."""
    return [(row, column, f"{what}: {raw!r}") for row, raw in enumerate(values) if raw not in known]


def check_unique(values: Sequence[str], column: str) -> list[Problem]:
    seen: set[str] = set()
    problems: list[Problem] = []
    for row, raw in enumerate(values):
        if raw and raw in seen:
            problems.append((row, column, f"hồ sơ '{raw}' xuất hiện hai lần trong tệp"))
        seen.add(raw)
    return problems


def check_event_order(times: dict[str, np.ndarray]) -> list[Problem]:
    """Events out of order (e.g. an apology before receipt, a supplement received before
    it was requested), one mask per rule of `EVENT_ORDER`."""
    problems: list[Problem] = []
    for later, earlier, message in EVENT_ORDER:
        if later not in times or earlier not in times:
            continue
        bad = times[later] < times[earlier]  # NaT compares False: blanks pass
        problems += [(int(row), later, message) for row in np.flatnonzero(bad)]
    return problems


def check_event_pairs(times: dict[str, np.ndarray]) -> list[Problem]:
    """Facts that only make sense together, or never together."""
    present = {name: ~np.isnat(column) for name, column in times.items()}
    rules = (
        (
            "supplement_received_at",
            present["supplement_received_at"] & ~present["supplement_requested_at"],
            "có ngày nhận bổ sung nhưng không có yêu cầu bổ sung",
        ),
        (
            "apology_new_due",
            present["apology_at"] != present["apology_new_due"],
            "phiếu xin lỗi cần cả apology_at và apology_new_due",
        ),
        (
            "completed_at",
            present["completed_at"]
            & present["supplement_requested_at"]
            & ~present["supplement_received_at"],
            "hoàn thành khi chưa nhận đủ hồ sơ bổ sung (cần supplement_received_at)",
        ),
        (
            "closed_at",
            present["closed_at"] & present["completed_at"],
            "hồ sơ không thể vừa có kết quả (completed_at) vừa bị trả lại / đóng (closed_at)",
        ),
    )
    problems: list[Problem] = []
    for column, bad, message in rules:
        problems += [(int(row), column, message) for row in np.flatnonzero(bad)]
    return problems


def resolve_supplement_requests(
    counts: np.ndarray, requested: np.ndarray, column: str = "supplement_requests"
) -> tuple[np.ndarray, list[Problem]]:
    """The number of supplement requests: the column's value, or 1 when a request is
    dated and the cell is blank. More than the law allows is accepted (and flagged by
    the KPIs); a count that contradicts the dates is a problem."""
    asked = ~np.isnat(requested)
    resolved = np.where(counts < 0, asked.astype(np.int64), counts)
    problems = [
        (int(row), column, "có yêu cầu bổ sung (supplement_requested_at) nhưng số lần là 0")
        for row in np.flatnonzero(asked & (counts == 0))
    ]
    problems += [
        (int(row), column, "có số lần yêu cầu bổ sung nhưng không có supplement_requested_at")
        for row in np.flatnonzero(~asked & (counts > 0))
    ]
    return resolved, problems
