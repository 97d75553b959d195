"""Importing the one-stop system's exports: procedures and dossiers.

An import is one transaction per file: every row is validated first, and a file with any
bad row is refused whole, with every bad row listed by line and column; nothing is
written. A valid file is upserted by id, so re-importing an updated export updates the
dossiers in place. Hot path: no ORM objects per row; columns go through numpy for the
due dates and into the database in bulk (COPY on PostgreSQL).

Dossier export columns (CSV with a header row, or JSON lines with the same keys):
`dossier_id, procedure_code, agency_code, channel (online|direct|postal), received_at
(ISO 8601, local time), completed_at, supplement_requested_at, supplement_received_at,
apology_at, apology_new_due, digitized (0/1), e_result (0/1), paid_online (0/1/blank),
handler` (optional). Times with an offset are converted to Vietnam time; seconds are
the finest unit kept.
"""

from __future__ import annotations

import csv
import gc
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from deadlines.calendar import FIRST_YEAR, LAST_YEAR, WorkCalendar
from deadlines.dossier import UNITS, OneStopRules, legal_due_many
from models.store import upsert
from models.tables import Agency, Dossier, Procedure

VN = ZoneInfo("Asia/Ho_Chi_Minh")
CHANNELS = ("online", "direct", "postal")
PROCEDURE_COLUMNS = ("procedure_code", "name", "limit_value", "limit_unit", "level")
DOSSIER_COLUMNS = (
    "dossier_id",
    "procedure_code",
    "agency_code",
    "channel",
    "received_at",
    "completed_at",
    "supplement_requested_at",
    "supplement_received_at",
    "apology_at",
    "apology_new_due",
    "digitized",
    "e_result",
    "paid_online",
    "handler",
)
OPTIONAL_COLUMNS = {"handler"}
# From this many rows (and at least as many as the table holds) an import is a bulk load.
BULK_ROWS = 10_000
TIME_COLUMNS = (
    "received_at",
    "completed_at",
    "supplement_requested_at",
    "supplement_received_at",
    "apology_at",
    "apology_new_due",
)
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
    "legal_due",
    "due",
    "imported_at",
)


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


def _records(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, record) pairs from a CSV with a header, or from JSON lines."""
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield number, {"__error__": f"JSON không hợp lệ: {exc.msg}"}
                    continue
                if not isinstance(record, dict):
                    yield number, {"__error__": "mỗi dòng phải là một đối tượng JSON"}
                    continue
                yield number, {k: "" if v is None else str(v) for k, v in record.items()}
        return
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        yield 1, {"__header__": ",".join(reader.fieldnames or [])}
        for record in reader:
            yield reader.line_num, {k: (v or "").strip() for k, v in record.items() if k}


def _open(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ImportRefused(str(path), [RowProblem(str(path), 0, "", "không tìm thấy tệp")])
    return path


def _local(text_value: str) -> datetime:
    value = datetime.fromisoformat(text_value)
    if value.tzinfo is not None:
        value = value.astimezone(VN).replace(tzinfo=None)
    return value.replace(microsecond=0) if value.microsecond else value


def _check_header(path: Path, record: dict, expected, optional, problems) -> bool:
    header = [h.strip() for h in record["__header__"].split(",") if h.strip()]
    missing = [c for c in expected if c not in header and c not in optional]
    if missing:
        problems.append(
            RowProblem(
                str(path), 1, "", f"thiếu cột: {', '.join(missing)} (cần: {', '.join(expected)})"
            )
        )
        return False
    return True


# --------------------------------------------------------------------- procedures


def import_procedures(engine: Engine, path: str | Path) -> ImportReport:
    """Load a procedures CSV (`procedure_code, name, limit_value, limit_unit, level`)."""
    path = _open(path)
    problems: list[RowProblem] = []
    rows: dict[str, dict] = {}
    for line, record in _records(path):
        if "__header__" in record:
            if not _check_header(path, record, PROCEDURE_COLUMNS, set(), problems):
                raise ImportRefused(str(path), problems)
            continue
        if "__error__" in record:
            problems.append(RowProblem(str(path), line, "", record["__error__"]))
            continue
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


def import_dossiers(
    engine: Engine,
    path: str | Path,
    cal: WorkCalendar,
    rules: OneStopRules,
    now: datetime | None = None,
) -> ImportReport:
    """Validate a whole export, compute every legal due date, then upsert it at once."""
    path = _open(path)
    with engine.connect() as conn:
        procedures = {
            code: (value, UNITS.index(unit) if unit in UNITS else 0)
            for code, value, unit in conn.execute(
                select(Procedure.code, Procedure.limit_value, Procedure.limit_unit)
            )
        }
        agencies = set(conn.scalars(select(Agency.code)))
        apologised = {
            dossier_id: (at, new_due)
            for dossier_id, at, new_due in conn.execute(
                select(Dossier.id, Dossier.apology_at, Dossier.apology_new_due).where(
                    Dossier.apology_at.is_not(None)
                )
            )
        }
    gc.disable()  # a million rows of small objects: the cyclic collector only slows it
    try:
        columns, problems = _parse_dossiers(path, procedures, agencies, apologised)
    finally:
        gc.enable()
    if problems:
        raise ImportRefused(str(path), problems)
    if not columns["id"]:
        return ImportReport(str(path), 0, 0, 0)
    received = np.array(columns["received_at"], dtype="datetime64[s]")
    supplement = np.array(
        [v or np.datetime64("NaT") for v in columns["supplement_received_at"]],
        dtype="datetime64[s]",
    )
    values = np.array([procedures[c][0] for c in columns["procedure_code"]], dtype=np.float64)
    units = np.array([procedures[c][1] for c in columns["procedure_code"]], dtype=np.int64)
    legal = legal_due_many(cal, rules, received, supplement, values, units)
    new_due = np.array(
        [v or np.datetime64("NaT") for v in columns["apology_new_due"]], dtype="datetime64[s]"
    )
    due = np.where(np.isnat(new_due), legal, new_due)
    columns["legal_due"] = _as_text(legal)
    columns["due"] = _as_text(due)
    stamp = (now or datetime.now(VN).replace(tzinfo=None)).replace(microsecond=0)
    columns["imported_at"] = [_fmt(stamp)] * len(columns["id"])
    for name in TIME_COLUMNS:
        columns[name] = [None if v is None else _fmt(v) for v in columns[name]]
    return _write(engine, path, columns)


def _parse_dossiers(path: Path, procedures, agencies, apologised):
    problems: list[RowProblem] = []
    columns: dict[str, list] = {
        name: [] for name in DB_COLUMNS if name not in ("legal_due", "due", "imported_at")
    }
    seen: set[str] = set()
    name = str(path)
    for line, record in _records(path):
        if "__header__" in record:
            if not _check_header(path, record, DOSSIER_COLUMNS, OPTIONAL_COLUMNS, problems):
                return columns, problems
            continue
        if "__error__" in record:
            problems.append(RowProblem(name, line, "", record["__error__"]))
            continue
        bad = len(problems)

        def problem(column: str, message: str, line=line) -> None:
            problems.append(RowProblem(name, line, column, message))

        dossier_id = record.get("dossier_id", "")
        if not dossier_id:
            problem("dossier_id", "trống")
        elif dossier_id in seen:
            problem("dossier_id", f"hồ sơ '{dossier_id}' xuất hiện hai lần trong tệp")
        seen.add(dossier_id)
        procedure = record.get("procedure_code", "")
        if procedure not in procedures:
            problem("procedure_code", f"thủ tục không có trong danh mục: {procedure!r}")
        agency = record.get("agency_code", "")
        if agency not in agencies:
            problem("agency_code", f"cơ quan không có trong danh bạ: {agency!r}")
        channel = record.get("channel", "")
        if channel not in CHANNELS:
            problem("channel", f"{channel!r} không hợp lệ (chọn: {', '.join(CHANNELS)})")
        times: dict[str, datetime | None] = {}
        for column in TIME_COLUMNS:
            raw = record.get(column, "")
            if not raw:
                times[column] = None
                if column == "received_at":
                    problem(column, "trống (bắt buộc)")
                continue
            try:
                times[column] = _local(raw)
            except ValueError:
                problem(column, f"ngày giờ không hợp lệ (cần ISO 8601): {raw!r}")
                times[column] = None
        flags = {}
        for column in ("digitized", "e_result", "paid_online"):
            raw = record.get(column, "")
            if raw == "" and column == "paid_online":
                flags[column] = None
            elif raw in ("0", "1"):
                flags[column] = raw == "1"
            else:
                blank = " hoặc để trống" if column == "paid_online" else ""
                problem(column, f"phải là 0 hoặc 1{blank}: {raw!r}")
        received = times.get("received_at")
        ordered = (
            ("completed_at", "received_at", "hoàn thành trước khi tiếp nhận"),
            ("supplement_requested_at", "received_at", "yêu cầu bổ sung trước khi tiếp nhận"),
            ("supplement_received_at", "supplement_requested_at", "nhận bổ sung trước khi yêu cầu"),
            ("completed_at", "supplement_received_at", "hoàn thành trước khi nhận đủ bổ sung"),
            ("apology_at", "received_at", "xin lỗi trước khi tiếp nhận"),
            ("apology_new_due", "apology_at", "ngày hẹn lại trước ngày xin lỗi"),
        )
        for later, earlier, message in ordered:
            if times.get(later) and times.get(earlier) and times[later] < times[earlier]:
                problem(later, message)
        if times.get("supplement_received_at") and not times.get("supplement_requested_at"):
            problem("supplement_received_at", "có ngày nhận bổ sung nhưng không có yêu cầu bổ sung")
        if bool(times.get("apology_at")) != bool(times.get("apology_new_due")):
            problem("apology_new_due", "phiếu xin lỗi cần cả apology_at và apology_new_due")
        previous = apologised.get(dossier_id)
        if (
            previous
            and times.get("apology_at")
            and (previous != (times["apology_at"], times["apology_new_due"]))
        ):
            problem(
                "apology_at",
                f"hồ sơ đã được xin lỗi và hẹn lại ngày {previous[1]:%d/%m/%Y %H:%M}; "
                "chỉ được hẹn lại một lần",
            )
        if previous and not times.get("apology_at"):
            problem("apology_at", "hồ sơ đã có phiếu xin lỗi; tệp mới không được xóa nó")
        if received is not None and not FIRST_YEAR <= received.year < LAST_YEAR:
            problem("received_at", f"ngoài phạm vi lịch hỗ trợ: {received:%d/%m/%Y}")
        if len(problems) > bad:
            continue
        columns["id"].append(dossier_id)
        columns["procedure_code"].append(procedure)
        columns["agency_code"].append(agency)
        columns["channel"].append(channel)
        for column in TIME_COLUMNS:
            columns[column].append(times[column])
        for column in ("digitized", "e_result", "paid_online"):
            columns[column].append(flags[column])
        columns["handler"].append(record.get("handler") or None)
    return columns, problems


def _fmt(value: datetime) -> str:
    """The text SQLAlchemy itself writes for a SQLite DATETIME (so comparisons agree)."""
    return value.isoformat(sep=" ") + ".000000"


def _as_text(values: np.ndarray) -> list[str]:
    text_values = np.datetime_as_string(values.astype("datetime64[s]"), unit="s")
    return [f"{v[:10]} {v[11:]}.000000" for v in text_values.tolist()]


def _write(engine: Engine, path: Path, columns: dict[str, list]) -> ImportReport:
    rows = list(zip(*(columns[c] for c in DB_COLUMNS), strict=True))
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
                for row in rows:
                    copy.write_row(row)
            conn.exec_driver_sql(
                f"INSERT INTO dossier ({names}) SELECT {names} FROM dossier_in "
                f"ON CONFLICT (id) DO UPDATE SET {updates}"
            )
        else:
            # In primary-key order the B-tree grows at its end instead of splitting pages
            # all over; and a bulk load builds the secondary indexes once, afterwards,
            # rather than row by row. Both keep a million-row import linear.
            rows.sort(key=lambda row: row[0])
            bulk = len(rows) >= max(BULK_ROWS, before)
            indexes = list(Dossier.__table__.indexes) if bulk else []  # type: ignore[attr-defined]
            for index in indexes:
                index.drop(conn)
            marks = ", ".join("?" for _ in DB_COLUMNS)
            cursor = conn.connection.dbapi_connection.cursor()
            cursor.executemany(
                f"INSERT INTO dossier ({names}) VALUES ({marks}) "
                f"ON CONFLICT (id) DO UPDATE SET {updates}",
                rows,
            )
            for index in indexes:
                index.create(conn)
        after = conn.scalar(select(func.count()).select_from(Dossier))
    inserted = after - before
    return ImportReport(str(path), len(rows), inserted, len(rows) - inserted)


def to_csv(rows: list[dict], columns=DOSSIER_COLUMNS) -> str:
    """Rows as an export CSV (used by the sample generator and the benchmark)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
