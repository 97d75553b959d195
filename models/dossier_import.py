"""Importing the one-stop system's exports: procedures and dossiers.

An import is one transaction per file: every row is validated first, and a file with any
bad row is refused whole, with every bad row listed by line and column; nothing is
written. A valid file is upserted by id, so re-importing an updated export updates the
dossiers in place. Hot path: no ORM objects per row; columns go through numpy for the
due dates and into the database in bulk (COPY on PostgreSQL).

Dossier export columns (CSV with a header row, or JSON lines with the same keys; another
system's names through a column-mapping file, `deadlines.export_columns`):
`dossier_id, procedure_code, agency_code, channel (online|direct|postal), received_at
(ISO 8601, local time), completed_at, supplement_requested_at (the last request),
supplement_received_at (the complete dossier after it), apology_at, apology_new_due,
digitized (0/1), e_result (0/1), paid_online (0/1/blank)`, and optionally `handler`,
`supplement_requests` (how many requests; blank: 1 when a request is dated), `closed_at`
(returned or closed without a result) and `appointment_at` (the receipt slip's date).
Times with an offset are converted to Vietnam time; seconds are the finest unit kept.

The checks themselves are pure column functions (`deadlines.dossier_checks`); this module
reads, looks up the catalog and registry, derives the due dates and writes.
"""

from __future__ import annotations

import csv
import gc
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from deadlines import dossier_checks as checks
from deadlines.calendar import FIRST_YEAR, LAST_YEAR, WorkCalendar
from deadlines.dossier import (
    UNITS,
    ArrayOps,
    ClockFacts,
    OneStopRules,
    apology_deadline_many,
    due_766_many,
    due_at,
    legal_due_many,
    states_many,
)
from deadlines.export_columns import (
    CHANNELS,
    DOSSIER_COLUMNS,
    IDENTITY,
    OPTIONAL_COLUMNS,
    TIME_COLUMNS,
    ColumnMapping,
)
from models.store import upsert
from models.tables import Agency, Dossier, Procedure

VN = ZoneInfo("Asia/Ho_Chi_Minh")
PROCEDURE_COLUMNS = ("procedure_code", "name", "limit_value", "limit_unit", "level")
REQUIRED_COLUMNS = tuple(c for c in DOSSIER_COLUMNS if c not in OPTIONAL_COLUMNS)
# From this many rows (and at least as many as the table holds) an import is a bulk load.
BULK_ROWS = 10_000
DB_COLUMNS = (
    "id",
    "procedure_code",
    "agency_code",
    "channel",
    *TIME_COLUMNS,
    "digitized",
    "e_result",
    "paid_online",
    "handler",
    "supplement_requests",
    "regime",
    "first_due",
    "legal_due",
    "due",
    "due_766",
    "apology_timely",
    "reschedules",
    "state",
    "imported_at",
)
DERIVED_TIMES = ("first_due", "legal_due", "due", "due_766", "imported_at")


@dataclass(frozen=True)
class RowProblem:
    path: str
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        column = f", cột {self.column}" if self.column else ""
        return f"{self.path}, dòng {self.line}{column}: {self.message}"


class ImportRefused(ValueError):
    """The file was refused whole; `problems` lists every bad row."""

    def __init__(self, path: str, problems: list[RowProblem]):
        self.path, self.problems = path, problems
        head = f"Tệp {path} bị từ chối ({len(problems)} lỗi); không ghi dữ liệu nào:"
        super().__init__("\n".join([head, *(str(p) for p in problems)]))


@dataclass(frozen=True)
class ImportReport:
    path: str
    rows: int
    inserted: int
    updated: int


# ------------------------------------------------------------------------ reading


def _records(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, record) pairs from a CSV with a header, or from JSON lines.

    A CSV yields its header first as `(1, ["col", …])`; a line that is not a JSON object
    yields `(line, "message")`.
    """
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield number, f"JSON không hợp lệ: {exc.msg}"
                    continue
                if not isinstance(record, dict):
                    yield number, "mỗi dòng phải là một đối tượng JSON"
                    continue
                yield number, record
        return
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        yield 1, [h.strip() for h in (reader.fieldnames or []) if h and h.strip()]
        for record in reader:
            yield reader.line_num, {k.strip(): (v or "") for k, v in record.items() if k}


def _open(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ImportRefused(str(path), [RowProblem(str(path), 0, "", "không tìm thấy tệp")])
    return path


def _check_header(path: Path, header: list[str], expected, optional) -> list[RowProblem]:
    missing = [c for c in expected if c not in header and c not in optional]
    if not missing:
        return []
    return [
        RowProblem(
            str(path), 1, "", f"thiếu cột: {', '.join(missing)} (cần: {', '.join(expected)})"
        )
    ]


# --------------------------------------------------------------------- procedures


def import_procedures(engine: Engine, path: str | Path) -> ImportReport:
    """Load a procedures CSV (`procedure_code, name, limit_value, limit_unit, level`)."""
    path = _open(path)
    problems: list[RowProblem] = []
    rows: dict[str, dict] = {}
    for line, record in _records(path):
        if isinstance(record, list):
            problems += _check_header(path, record, PROCEDURE_COLUMNS, set())
            if problems:
                raise ImportRefused(str(path), problems)
            continue
        if isinstance(record, str):
            problems.append(RowProblem(str(path), line, "", record))
            continue
        record = {k: "" if v is None else str(v).strip() for k, v in record.items()}
        where = (str(path), line)
        code, name = record.get("procedure_code", ""), record.get("name", "")
        if not code:
            problems.append(RowProblem(*where, "procedure_code", "trống"))
        elif code in rows:
            problems.append(RowProblem(*where, "procedure_code", f"mã '{code}' lặp lại"))
        if not name:
            problems.append(RowProblem(*where, "name", "trống"))
        try:
            value = float(record.get("limit_value", ""))
            if not 0 <= value <= 3650:
                raise ValueError
        except ValueError:
            problems.append(
                RowProblem(
                    *where, "limit_value", f"không phải số hợp lệ: {record.get('limit_value')!r}"
                )
            )
            value = None
        unit = record.get("limit_unit", "")
        if unit not in UNITS:
            problems.append(
                RowProblem(
                    *where, "limit_unit", f"{unit!r} không hợp lệ (chọn: {', '.join(UNITS)})"
                )
            )
        level = record.get("level", "")
        if not level:
            problems.append(RowProblem(*where, "level", "trống"))
        if code and value is not None:
            rows[code] = {
                "code": code,
                "name": name,
                "limit_value": value,
                "limit_unit": unit,
                "level": level,
            }
    if problems:
        raise ImportRefused(str(path), problems)
    with Session(engine) as session, session.begin():
        before = session.scalar(select(func.count()).select_from(Procedure))
        upsert(session, Procedure, list(rows.values()), ["code"])
        after = session.scalar(select(func.count()).select_from(Procedure))
    return ImportReport(str(path), len(rows), after - before, len(rows) - (after - before))


# ----------------------------------------------------------------------- dossiers


@dataclass
class RawExport:
    """An export in dunghan's columns, as text, with the file line of each row."""

    lines: list[int] = field(default_factory=list)
    cells: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in DOSSIER_COLUMNS})

    def __len__(self) -> int:
        return len(self.lines)


@dataclass(frozen=True)
class Lookups:
    """What the database already knows that a row is checked against."""

    procedures: dict[str, tuple[float, int]]  # code -> (limit value, unit index)
    agencies: set[str]
    apologies: dict[str, tuple[datetime, datetime, int]]  # id -> (at, new due, reschedules)


def read_export(path: Path, mapping: ColumnMapping) -> tuple[RawExport, list[RowProblem]]:
    """Every record of the file in dunghan's columns; a missing column or an unreadable
    line is a problem."""
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return _read_json_lines(path, mapping)
    raw = RawExport()
    name = str(path)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        missing = mapping.missing_columns(header, REQUIRED_COLUMNS)
        if mapping.supplements is not None:
            missing.append(
                f"danh sách yêu cầu bổ sung '{mapping.supplements.list_name}' (supplements "
                f"trong {mapping.path}) chỉ đọc được từ tệp JSON lines"
            )
        if missing:
            return raw, [RowProblem(name, 1, "", "; ".join(missing))]
        # One (append, position in the row, code table) per dunghan column: no dictionary
        # per row, which keeps a million-row export cheap to read.
        position = {h: i for i, h in reversed(list(enumerate(header))) if h}
        plan = [
            (
                raw.cells[column].append,
                position.get(mapping.source_name(column)),
                mapping.values.get(column),
            )
            for column in DOSSIER_COLUMNS
        ]
        lines = raw.lines
        for row in reader:
            if not row:
                continue
            lines.append(reader.line_num)
            width = len(row)
            for append, index, coded in plan:
                text = row[index].strip() if index is not None and index < width else ""
                append(coded.get(text, text) if coded is not None else text)
    return raw, []


def _read_json_lines(path: Path, mapping: ColumnMapping) -> tuple[RawExport, list[RowProblem]]:
    raw = RawExport()
    problems: list[RowProblem] = []
    for line, record in _records(path):
        if isinstance(record, str):
            problems.append(RowProblem(str(path), line, "", record))
            continue
        raw.lines.append(line)
        for column, text in mapping.translate(record).items():
            raw.cells[column].append(text)
    return raw, problems


def _lookups(engine: Engine) -> Lookups:
    with engine.connect() as conn:
        procedures = {
            code: (value, UNITS.index(unit) if unit in UNITS else 0)
            for code, value, unit in conn.execute(
                select(Procedure.code, Procedure.limit_value, Procedure.limit_unit)
            )
        }
        agencies = set(conn.scalars(select(Agency.code)))
        apologies = {
            dossier_id: (at, new_due, reschedules)
            for dossier_id, at, new_due, reschedules in conn.execute(
                select(
                    Dossier.id, Dossier.apology_at, Dossier.apology_new_due, Dossier.reschedules
                ).where(Dossier.apology_at.is_not(None))
            )
        }
    return Lookups(procedures, agencies, apologies)


@dataclass
class Parsed:
    """The export's columns, parsed: text, `datetime64[s]` times, flags, counts."""

    text: dict[str, list[str]]
    times: dict[str, np.ndarray]
    flags: dict[str, list[bool | None]]
    supplement_requests: np.ndarray
    regime_index: np.ndarray


def validate(
    raw: RawExport, lookups: Lookups, rules: OneStopRules, mapping: ColumnMapping
) -> tuple[Parsed, list[checks.Problem]]:
    """Run every column check; problems are `(row index, column, message)`."""
    cells = raw.cells
    problems: list[checks.Problem] = []
    problems += checks.check_required(cells["dossier_id"], "dossier_id")
    problems += checks.check_unique(cells["dossier_id"], "dossier_id")
    problems += checks.check_known(
        cells["procedure_code"],
        "procedure_code",
        lookups.procedures,
        "thủ tục không có trong danh mục",
    )
    problems += checks.check_known(
        cells["agency_code"], "agency_code", lookups.agencies, "cơ quan không có trong danh bạ"
    )
    problems += checks.check_choice(cells["channel"], "channel", CHANNELS)
    # Once parsed, a column's text is let go: a million rows of it weigh hundreds of MiB.
    times: dict[str, np.ndarray] = {}
    for column in TIME_COLUMNS:
        times[column], found = checks.parse_times(
            cells[column], column, mapping.time_format, required=column == "received_at"
        )
        problems += found
        cells[column] = []
    flags: dict[str, list[bool | None]] = {}
    for column in ("digitized", "e_result", "paid_online"):
        flags[column], found = checks.parse_flags(
            cells[column], column, blank_allowed=column == "paid_online"
        )
        problems += found
        cells[column] = []
    counts, found = checks.parse_counts(cells["supplement_requests"], "supplement_requests")
    cells["supplement_requests"] = []
    problems += found
    requests, found = checks.resolve_supplement_requests(counts, times["supplement_requested_at"])
    problems += found
    problems += checks.check_event_order(times)
    problems += checks.check_event_pairs(times)
    received = times["received_at"]
    years = received.astype("datetime64[Y]").astype(np.int64) + 1970
    outside = ~np.isnat(received) & ((years < FIRST_YEAR) | (years >= LAST_YEAR))
    problems += [
        (int(row), "received_at", f"ngoài phạm vi lịch hỗ trợ: {received[row].item():%d/%m/%Y}")
        for row in np.flatnonzero(outside)
    ]
    regime_index = rules.regime_index_many(received)
    problems += [
        (
            int(row),
            "received_at",
            f"không có quy định một cửa nào có hiệu lực vào ngày tiếp nhận "
            f"{received[row].item():%d/%m/%Y} ({rules.describe_coverage()})",
        )
        for row in np.flatnonzero((regime_index < 0) & ~np.isnat(received) & ~outside)
    ]
    parsed = Parsed(
        text={c: cells[c] for c in ("dossier_id", "procedure_code", "agency_code", "channel")}
        | {"handler": cells["handler"]},
        times=times,
        flags=flags,
        supplement_requests=requests,
        regime_index=regime_index,
    )
    return parsed, problems


def check_reschedules(
    parsed: Parsed, lookups: Lookups, rules: OneStopRules
) -> tuple[np.ndarray, list[checks.Problem]]:
    """How many times each dossier has been rescheduled (an apology with a new date); a
    new apology on a dossier already rescheduled the maximum number of times is refused,
    and so is an export that drops a recorded apology."""
    apology_at = parsed.times["apology_at"]
    new_due = parsed.times["apology_new_due"]
    counts = (~np.isnat(apology_at)).astype(np.int64)
    problems: list[checks.Problem] = []
    if not lookups.apologies:
        return counts, problems
    maxima = np.array([r.max_reschedules for r in rules.regimes])
    for row, dossier_id in enumerate(parsed.text["dossier_id"]):
        previous = lookups.apologies.get(dossier_id)
        if previous is None:
            continue
        at, due, done = previous
        if np.isnat(apology_at[row]):
            problems.append(
                (row, "apology_at", "hồ sơ đã có phiếu xin lỗi; tệp mới không được xóa nó")
            )
            continue
        if (apology_at[row].item(), new_due[row].item()) == (at, due):
            counts[row] = done
            continue
        allowed = int(maxima[parsed.regime_index[row]]) if parsed.regime_index[row] >= 0 else 1
        if done + 1 > allowed:
            regime = (
                rules.regimes[parsed.regime_index[row]] if parsed.regime_index[row] >= 0 else None
            )
            source = f" ({regime.facts['apology'].cite()})" if regime else ""
            problems.append(
                (
                    row,
                    "apology_at",
                    f"hồ sơ đã được xin lỗi và hẹn lại ngày {due:%d/%m/%Y %H:%M}; chỉ được hẹn lại "
                    f"{allowed} lần{source}",
                )
            )
        counts[row] = done + 1
    return counts, problems


@dataclass
class Derived:
    first_due: np.ndarray
    legal_due: np.ndarray
    due: np.ndarray
    due_766: np.ndarray
    apology_timely: list[bool | None]
    states: np.ndarray


def derive(parsed: Parsed, lookups: Lookups, cal: WorkCalendar, rules: OneStopRules) -> Derived:
    """The due dates under each dossier's regime, the portal's appointment, whether each
    apology was timely, and each dossier's state."""
    times = parsed.times
    codes = parsed.text["procedure_code"]
    values = np.array([lookups.procedures[c][0] for c in codes], dtype=np.float64)
    units = np.array([lookups.procedures[c][1] for c in codes], dtype=np.int64)
    received, supplied = times["received_at"], times["supplement_received_at"]
    nat = np.full(received.shape, np.datetime64("NaT"), dtype="datetime64[s]")
    first = legal_due_many(cal, rules, received, nat, values, units, parsed.regime_index)
    legal = first.copy()
    restarted = ~np.isnat(supplied)
    if restarted.any():
        legal[restarted] = legal_due_many(
            cal,
            rules,
            received[restarted],
            supplied[restarted],
            values[restarted],
            units[restarted],
            parsed.regime_index[restarted],
        )
    new_due = times["apology_new_due"]
    due = np.where(np.isnat(new_due), legal, new_due)
    due_766 = due_766_many(
        rules.indicator,
        times["appointment_at"],
        first,
        times["supplement_requested_at"],
        supplied,
        new_due,
    )
    apology_at = times["apology_at"]
    apologised = ~np.isnat(apology_at)
    timely: list[bool | None] = [None] * len(received)
    if apologised.any():
        facts = ClockFacts(
            first_due=first[apologised],
            legal_due=legal[apologised],
            requested=times["supplement_requested_at"][apologised],
            supplied=supplied[apologised],
            requests=parsed.supplement_requests[apologised],
            completed=times["completed_at"][apologised],
            closed=times["closed_at"][apologised],
            appointment=times["appointment_at"][apologised],
            due_766=due_766[apologised],
        )
        apology_due = due_at(facts, apology_at[apologised], ArrayOps)
        deadline = apology_deadline_many(cal, rules, parsed.regime_index[apologised], apology_due)
        on_time = (apology_at[apologised] < deadline).tolist()
        for row, value in zip(np.flatnonzero(apologised), on_time, strict=True):
            timely[int(row)] = bool(value)
    states = states_many(
        times["supplement_requested_at"],
        supplied,
        times["completed_at"],
        times["closed_at"],
        apology_at,
    )
    return Derived(first, legal, due, due_766, timely, states)


def import_dossiers(
    engine: Engine,
    path: str | Path,
    cal: WorkCalendar,
    rules: OneStopRules,
    now: datetime | None = None,
    columns: ColumnMapping | None = None,
) -> ImportReport:
    """Validate a whole export, compute every due date under the regime of each dossier's
    receipt, then upsert it at once."""
    path = _open(path)
    mapping = columns or IDENTITY
    lookups = _lookups(engine)
    gc.disable()  # a million rows of small objects: the cyclic collector only slows it
    try:
        raw, problems = read_export(path, mapping)
        if problems:
            raise ImportRefused(str(path), problems)
        parsed, found = validate(raw, lookups, rules, mapping)
        if not found:
            reschedules, found = check_reschedules(parsed, lookups, rules)
    finally:
        gc.enable()
    if found:
        raise ImportRefused(str(path), _row_problems(path, raw, mapping, found))
    if not len(raw):
        return ImportReport(str(path), 0, 0, 0)
    derived = derive(parsed, lookups, cal, rules)
    stamp = (now or datetime.now(VN).replace(tzinfo=None)).replace(microsecond=0)
    rows = len(raw)
    columns_out: dict[str, list] = {
        "id": parsed.text["dossier_id"],
        "procedure_code": parsed.text["procedure_code"],
        "agency_code": parsed.text["agency_code"],
        "channel": parsed.text["channel"],
        "digitized": parsed.flags["digitized"],
        "e_result": parsed.flags["e_result"],
        "paid_online": parsed.flags["paid_online"],
        "handler": [h or None for h in parsed.text["handler"]],
        "supplement_requests": parsed.supplement_requests.tolist(),
        "regime": [rules.regimes[i].code for i in parsed.regime_index.tolist()],
        "apology_timely": derived.apology_timely,
        "reschedules": reschedules.tolist(),
        "state": derived.states.tolist(),
        "imported_at": [_fmt(stamp)] * rows,
    }
    for column in TIME_COLUMNS:
        columns_out[column] = _as_text(parsed.times[column])
    for column in ("first_due", "legal_due", "due", "due_766"):
        columns_out[column] = _as_text(getattr(derived, column))
    del parsed, derived, raw  # the columns below hold all that is left to write
    return _write(engine, path, columns_out)


def _row_problems(
    path: Path, raw: RawExport, mapping: ColumnMapping, found: list[checks.Problem]
) -> list[RowProblem]:
    order = {c: i for i, c in enumerate(DOSSIER_COLUMNS)}
    found = sorted(found, key=lambda p: (p[0], order.get(p[1], len(order))))

    def shown(column: str) -> str:
        name = mapping.source_name(column)
        return column if name == column else f"{name} ({column})"

    return [RowProblem(str(path), raw.lines[row], shown(col), msg) for row, col, msg in found]


def _fmt(value: datetime) -> str:
    """The text SQLAlchemy itself writes for a SQLite DATETIME (so comparisons agree)."""
    return value.isoformat(sep=" ") + ".000000"


def _as_text(values: np.ndarray) -> list[str | None]:
    """`datetime64` values as the text `_fmt` writes (None for NaT). Each distinct instant
    is formatted once and its text shared: due dates fall on few distinct instants, so a
    million rows cost a million pointers, not a million strings."""
    distinct, inverse = np.unique(values.astype("datetime64[s]"), return_inverse=True)
    iso = np.datetime_as_string(distinct, unit="s")
    texts: list[str | None] = np.char.add(np.char.replace(iso, "T", " "), ".000000").tolist()
    for index in np.flatnonzero(np.isnat(distinct)).tolist():
        texts[index] = None
    return [texts[i] for i in inverse.ravel().tolist()]


def _write(engine: Engine, path: Path, columns: dict[str, list]) -> ImportReport:
    """Upsert the columns; rows are zipped on the fly, never held as a list of tuples."""
    table = [columns.pop(c) for c in DB_COLUMNS]
    count = len(table[0])
    updates = ", ".join(f"{c} = excluded.{c}" for c in DB_COLUMNS if c != "id")
    names = ", ".join(DB_COLUMNS)
    with engine.begin() as conn:
        before = conn.scalar(select(func.count()).select_from(Dossier))
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "CREATE TEMP TABLE dossier_in (LIKE dossier INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            cursor = conn.connection.dbapi_connection.cursor()
            with cursor.copy(f"COPY dossier_in ({names}) FROM STDIN") as copy:
                for row in zip(*table, strict=True):
                    copy.write_row(row)
            conn.exec_driver_sql(
                f"INSERT INTO dossier ({names}) SELECT {names} FROM dossier_in "
                f"ON CONFLICT (id) DO UPDATE SET {updates}"
            )
        else:
            # In primary-key order the B-tree grows at its end instead of splitting pages
            # all over; and a bulk load builds the secondary indexes once, afterwards,
            # rather than row by row. Both keep a million-row import linear.
            order = sorted(range(count), key=table[0].__getitem__)
            if count > 1:
                pick = itemgetter(*order)
                table = [pick(column) for column in table]
            bulk = count >= max(BULK_ROWS, before)
            indexes = list(Dossier.__table__.indexes) if bulk else []  # type: ignore[attr-defined]
            for index in indexes:
                index.drop(conn)
            marks = ", ".join("?" for _ in DB_COLUMNS)
            cursor = conn.connection.dbapi_connection.cursor()
            cursor.executemany(
                f"INSERT INTO dossier ({names}) VALUES ({marks}) "
                f"ON CONFLICT (id) DO UPDATE SET {updates}",
                zip(*table, strict=True),
            )
            for index in indexes:
                index.create(conn)
        after = conn.scalar(select(func.count()).select_from(Dossier))
    inserted = after - before
    return ImportReport(str(path), count, inserted, count - inserted)


def to_csv(rows: list[dict], columns=DOSSIER_COLUMNS) -> str:
    """Rows as an export CSV (used by the sample generator and the benchmark)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
