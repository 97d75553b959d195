"""Validating a one-stop export, column by column: pure, vectorised, no database.

Each check takes whole columns of one chunk of the export (Arrow string arrays of its
text, or numpy arrays of parsed values) and returns the problems it found as
`(row index, column, message)` triples, in Vietnamese. Only bad cells become Python
objects: a million good rows cost a few array operations per column. The importer maps
row indexes to file lines and refuses the file if any check found anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NAT = np.datetime64("NaT", "s")
# datetime.min: Arrow reads year 0 where Python refuses it.
FIRST_INSTANT = np.datetime64("0001-01-01T00:00:00", "s")

Problem = tuple[int, str, str]  # (row index in the chunk, column, message)

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


def _text(values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array(list(values), pa.string())
    return values


def _mask(values) -> np.ndarray:
    """An Arrow boolean result as a numpy mask (null counts as False)."""
    return pc.fill_null(values, False).to_numpy(zero_copy_only=False)


def _rows(mask: np.ndarray) -> list[int]:
    return np.flatnonzero(mask).tolist()


def local_time(text: str, time_format: str | None = None) -> datetime:
    """One cell as a local naive time, to the second. ISO 8601 by default; an offset is
    converted to Vietnam time. Raises ValueError. The reference every fast path must
    agree with."""
    value = datetime.strptime(text, time_format) if time_format else datetime.fromisoformat(text)
    if value.tzinfo is not None:
        value = value.astimezone(VN).replace(tzinfo=None)
    return value.replace(microsecond=0) if value.microsecond else value


def _plain_iso(values: pa.Array) -> np.ndarray:
    """Cells in a form Arrow's strict ISO 8601 reader and `local_time` read alike:
    YYYY-MM-DD, or that with [T ]HH:MM or [T ]HH:MM:SS; no fraction, no offset."""
    lengths = pc.binary_length(values).to_numpy(zero_copy_only=False)
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[
        values.offset : values.offset + len(values) + 1
    ]
    data = values.buffers()[2]
    if data is None or len(data) == 0:
        return np.zeros(len(values), dtype=bool)
    raw = np.frombuffer(data, dtype=np.uint8)
    last = len(raw) - 1

    def byte(at: int) -> np.ndarray:
        return raw[np.minimum(offsets[:-1] + at, last)]

    colon = ord(":")
    return (
        (lengths == 10)
        | ((lengths == 16) & (byte(13) == colon))
        | ((lengths == 19) & (byte(13) == colon) & (byte(16) == colon))
    )


def parse_times(
    values, column: str, time_format: str | None = None, *, required: bool = False
) -> tuple[np.ndarray, list[Problem]]:
    """A column of times as `datetime64[s]` (NaT for a blank or bad cell), and its bad
    cells. The plain ISO forms go through Arrow's strict reader at C speed (with a
    `time_format`: Arrow's strptime, kept only where formatting the result gives the cell
    back); anything else (offsets, fractions, other separators, or a chunk Arrow refuses)
    cell by cell through `local_time`, so both paths accept exactly what Python does."""
    values = _text(values)
    n = len(values)
    out = np.full(n, NAT, dtype="datetime64[s]")
    blank = _mask(pc.equal(values, ""))
    slow = ~blank
    if time_format and slow.any():
        try:
            parsed = pc.strptime(values, format=time_format, unit="s", error_is_null=True)
            same = _mask(pc.equal(pc.strftime(parsed, format=time_format), values))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            same = np.zeros(n, dtype=bool)  # Arrow refused the format: every cell below
        if same.any():
            out[same] = parsed.to_numpy(zero_copy_only=False).astype("datetime64[s]")[same]
            slow &= ~same
    plain = _plain_iso(values) & ~blank if not time_format else np.zeros(n, dtype=bool)
    if not time_format:
        slow = ~blank & ~plain
    if plain.any():
        chosen = np.flatnonzero(plain)
        try:
            parsed = pc.cast(values.take(pa.array(chosen)), pa.timestamp("s"))
            stamps = parsed.to_numpy(zero_copy_only=False).astype("datetime64[s]")
            out[chosen] = stamps
            slow[chosen[stamps < FIRST_INSTANT]] = True
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            slow |= plain  # Arrow refused the chunk: each cell parsed and judged below
    problems: list[Problem] = []
    expected = f"theo dạng {time_format}" if time_format else "ISO 8601"
    for row in _rows(slow):
        raw = values[row].as_py()
        try:
            out[row] = np.datetime64(local_time(raw, time_format), "s")
        except ValueError:
            out[row] = NAT
            problems.append((row, column, f"ngày giờ không hợp lệ (cần {expected}): {raw!r}"))
    if required:
        problems += [(row, column, "trống (bắt buộc)") for row in _rows(blank)]
    return out, sorted(problems)


def parse_flags(
    values, column: str, *, blank_allowed: bool
) -> tuple[list[bool | None], list[Problem]]:
    """A 0/1 column as booleans (None for a blank cell where blank is allowed)."""
    codes, problems = flag_codes(values, column, blank_allowed=blank_allowed)
    return _FLAG_VALUES[codes.astype(np.int64) + 1].tolist(), problems


_FLAG_VALUES = np.array([None, False, True], dtype=object)


def flag_codes(values, column: str, *, blank_allowed: bool) -> tuple[np.ndarray, list[Problem]]:
    """A 0/1 column as int8: 1, 0, or -1 for a blank cell where blank is allowed (and
    for a bad cell)."""
    values = _text(values)
    one = _mask(pc.equal(values, "1"))
    zero = _mask(pc.equal(values, "0"))
    out = np.where(one, 1, np.where(zero, 0, -1)).astype(np.int8)
    bad = ~one & ~zero
    if blank_allowed:
        bad &= ~_mask(pc.equal(values, ""))
    blank = " hoặc để trống" if blank_allowed else ""
    problems = [
        (row, column, f"phải là 0 hoặc 1{blank}: {values[row].as_py()!r}") for row in _rows(bad)
    ]
    return out, problems


def check_required(values, column: str) -> list[Problem]:
    return [(row, column, "trống") for row in _rows(_mask(pc.equal(_text(values), "")))]


def check_choice(values, column: str, choices: Sequence[str]) -> list[Problem]:
    values = _text(values)
    bad = ~_mask(pc.is_in(values, value_set=pa.array(list(choices), pa.string())))
    return [
        (row, column, f"{values[row].as_py()!r} không hợp lệ (chọn: {', '.join(choices)})")
        for row in _rows(bad)
    ]


def parse_counts(values, column: str) -> tuple[np.ndarray, list[Problem]]:
    """A column of small non-negative counts (-1 for a blank cell)."""
    values = _text(values)
    out = np.full(len(values), -1, dtype=np.int64)
    simple = _mask(pc.match_substring_regex(values, r"^[0-9]{1,2}$"))
    if simple.any():
        out[simple] = pc.cast(values.filter(pa.array(simple)), pa.int64()).to_numpy()
    problems: list[Problem] = []
    for row in _rows(~simple & ~_mask(pc.equal(values, ""))):
        raw = values[row].as_py()
        if raw.isdigit() and int(raw) <= 99:
            out[row] = int(raw)
        else:
            problems.append((row, column, f"phải là số nguyên từ 0 đến 99: {raw!r}"))
    return out, problems


def value_set(known) -> pa.Array:
    """Codes as an Arrow value set (from an Arrow array, a set or a dict's keys)."""
    return known if isinstance(known, pa.Array) else pa.array(sorted(known), pa.string())


def check_known(values, column: str, known, what: str) -> list[Problem]:
    """Each value must be one of `known` (a code the registry or catalog holds)."""
    values = _text(values)
    bad = ~_mask(pc.is_in(values, value_set=value_set(known)))
    return [(row, column, f"{what}: {values[row].as_py()!r}") for row in _rows(bad)]


def duplicate_message(value: str) -> str:
    return f"hồ sơ '{value}' xuất hiện hai lần trong tệp"


def check_unique(values, column: str) -> list[Problem]:
    """A value seen earlier in the same chunk (blank cells aside). Across chunks the
    importer checks the same rule in the database, with the same message."""
    values = _text(values)
    order = pc.sort_indices(values).to_numpy()
    ranked = values.take(pa.array(order))
    same = _mask(pc.equal(ranked[1:], ranked[:-1])) if len(values) > 1 else np.zeros(0, bool)
    if not same.any():
        return []
    repeated = np.zeros(len(values), dtype=bool)
    # Within a run of equal values every row but the first (in file order) repeats it;
    # sort_indices is stable, so the first of each run is the earliest row.
    repeated[order[1:][same]] = True
    repeated &= ~_mask(pc.equal(values, ""))
    return [(row, column, duplicate_message(values[row].as_py())) for row in _rows(repeated)]


def check_event_order(times: dict[str, np.ndarray]) -> list[Problem]:
    """Events out of order (e.g. an apology before receipt), one mask per rule of
    `EVENT_ORDER`."""
    problems: list[Problem] = []
    for later, earlier, message in EVENT_ORDER:
        if later not in times or earlier not in times:
            continue
        bad = times[later] < times[earlier]  # NaT compares False: blanks pass
        problems += [(row, later, message) for row in _rows(bad)]
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
        problems += [(row, column, message) for row in _rows(bad)]
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


def check_years(values: np.ndarray, column: str, first: int, last: int) -> list[Problem]:
    """Times outside the supported calendar [first, last)."""
    years = values.astype("datetime64[Y]").astype(np.int64) + 1970
    outside = ~np.isnat(values) & ((years < first) | (years >= last))
    return [
        (row, column, f"ngoài phạm vi lịch hỗ trợ: {values[row].item():%d/%m/%Y}")
        for row in _rows(outside)
    ]


APOLOGY_REMOVED = "hồ sơ đã có phiếu xin lỗi; tệp mới không được xóa nó"


def apology_changed_message(previous_new_due: datetime, allowed: int, source: str) -> str:
    """A new apology for a dossier already rescheduled as often as its regime allows."""
    return (
        f"hồ sơ đã được xin lỗi và hẹn lại ngày {previous_new_due:%d/%m/%Y %H:%M}; "
        f"chỉ được hẹn lại {allowed} lần{source}"
    )
