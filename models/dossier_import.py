"""Importing the one-stop system's exports: procedures and dossiers.

An import is one transaction per file, all or nothing: a file with any bad row is refused
whole, with every bad row listed by line and column, and the database is left as it was.
A good file is upserted by id, so re-importing an updated export updates the dossiers in
place.

Dossiers stream through in chunks of about ten thousand rows (`models.export_reader`):
each chunk's columns are checked with array operations (`deadlines.dossier_checks`), its
due dates computed on arrays, and its rows written at once (`models.dossier_write`:
straight into the table on SQLite, COPY into a staging table on PostgreSQL). Memory is a
few chunks whatever the file's size; no Python object is made per row except the values
a chunk hands to SQLite.

Dossier export columns (CSV with a header row, or JSON lines with the same keys):
`dossier_id, procedure_code, agency_code, channel (online|direct|postal), received_at
(ISO 8601, local time), completed_at, supplement_requested_at, supplement_received_at,
apology_at, apology_new_due, digitized (0/1), e_result (0/1), paid_online (0/1/blank),
handler` (optional). Times with an offset are converted to Vietnam time; seconds are
the finest unit kept.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from deadlines import dossier_checks as checks
from deadlines.calendar import FIRST_YEAR, LAST_YEAR, WorkCalendar
from deadlines.dossier import UNITS, OneStopRules, legal_due_many
from deadlines.export_columns import (
    CHANNELS,
    DOSSIER_COLUMNS,
    FLAG_COLUMNS,
    OPTIONAL_COLUMNS,
    TIME_COLUMNS,
)
from models.dossier_write import BULK_ROWS, DB_COLUMNS, Rows, open_checker, open_writer
from models.export_reader import Chunk, ReadAgain, csv_header, is_json_lines, read_chunks
from models.store import upsert
from models.tables import Procedure

__all__ = [
    "BULK_ROWS",
    "DB_COLUMNS",
    "DOSSIER_COLUMNS",
    "TIME_COLUMNS",
    "ImportRefused",
    "ImportReport",
    "RowProblem",
    "import_dossiers",
    "import_procedures",
]

VN = ZoneInfo("Asia/Ho_Chi_Minh")
NAT = np.datetime64("NaT", "s")
PROCEDURE_COLUMNS = ("procedure_code", "name", "limit_value", "limit_unit", "level")
# A refused file lists this many problems, first lines first, and counts the rest.
MAX_LISTED = 1000


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
    """The file was refused whole; `problems` lists its bad rows (the first
    `MAX_LISTED` of `total`)."""

    def __init__(self, path: str, problems: list[RowProblem], total: int | None = None):
        self.path, self.problems = path, problems
        self.total = len(problems) if total is None else total
        head = f"Tệp {path} bị từ chối ({self.total} lỗi); không ghi dữ liệu nào:"
        more = self.total - len(problems)
        tail = [f"… và {more} lỗi khác (sửa các lỗi trên rồi nhập lại)."] if more else []
        super().__init__("\n".join([head, *(str(p) for p in problems), *tail]))


_COLUMN_ORDER = {column: i for i, column in enumerate(DOSSIER_COLUMNS)}


class Problems:
    """The problems of one import: bounded (the first `MAX_LISTED` lines are kept), in
    line order and, within a line, in the order of the export's columns."""

    def __init__(self, path: str):
        self.path = path
        self.total = 0
        self._kept: list[tuple[int, int, str, str]] = []

    def _add(self, line: int, column: str, message: str) -> None:
        self.total += 1
        self._kept.append((line, _COLUMN_ORDER.get(column, -1), column, message))
        if len(self._kept) > 2 * MAX_LISTED:
            self._kept.sort()
            del self._kept[MAX_LISTED:]

    def add_lines(self, found: list[tuple[int, str]]) -> None:
        for line, message in found:
            self._add(line, "", message)

    def add_rows(self, lines: np.ndarray, found: list[checks.Problem]) -> None:
        for row, column, message in found:
            self._add(int(lines[row]), column, message)

    def add_database(self, found: list[tuple[int, str, str]], unlisted: int = 0) -> None:
        for line, column, message in found:
            self._add(line, column, message)
        self.total += unlisted

    def listed(self) -> list[RowProblem]:
        self._kept.sort()
        return [
            RowProblem(self.path, line, column, message)
            for line, _, column, message in self._kept[:MAX_LISTED]
        ]


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


@dataclass(frozen=True)
class Lookups:
    """What the database knows that a row is checked against, as Arrow value sets."""

    procedure_codes: pa.Array
    limit_values: np.ndarray  # float64, by position in procedure_codes
    limit_units: np.ndarray  # index into UNITS
    agency_codes: pa.Array


def _lookups(fetch) -> Lookups:
    """Read through the import's own connection, inside its transaction."""
    procedures = fetch("SELECT code, limit_value, limit_unit FROM procedure")
    agencies = [code for (code,) in fetch("SELECT code FROM agency")]
    return Lookups(
        pa.array([code for code, _, _ in procedures], pa.string()),
        np.array([value for _, value, _ in procedures], dtype=np.float64),
        np.array([UNITS.index(u) if u in UNITS else 0 for _, _, u in procedures], np.int64),
        pa.array(agencies, pa.string()),
    )


def check_chunk(chunk: Chunk, lookups: Lookups) -> tuple[Rows, list[checks.Problem]]:
    """Every column check of one chunk; the parsed rows and `(row, column, message)`."""
    cells = chunk.cells
    problems: list[checks.Problem] = []
    problems += checks.check_required(cells["dossier_id"], "dossier_id")
    problems += checks.check_unique(cells["dossier_id"], "dossier_id")
    problems += checks.check_known(
        cells["procedure_code"],
        "procedure_code",
        lookups.procedure_codes,
        "thủ tục không có trong danh mục",
    )
    problems += checks.check_known(
        cells["agency_code"], "agency_code", lookups.agency_codes, "cơ quan không có trong danh bạ"
    )
    problems += checks.check_choice(cells["channel"], "channel", CHANNELS)
    times: dict[str, np.ndarray] = {}
    for column in TIME_COLUMNS:
        times[column], found = checks.parse_times(
            cells[column], column, required=column == "received_at"
        )
        problems += found
    flags: dict[str, np.ndarray] = {}
    for column in FLAG_COLUMNS:
        flags[column], found = checks.parse_flags(
            cells[column], column, blank_allowed=column == "paid_online"
        )
        problems += found
    problems += checks.check_event_order(times)
    problems += checks.check_event_pairs(times)
    problems += checks.check_years(times["received_at"], "received_at", FIRST_YEAR, LAST_YEAR)
    ok = np.ones(len(chunk), dtype=bool)
    if problems:
        ok[[row for row, _, _ in problems]] = False
    return Rows(chunk.lines, ok, cells, times, flags), problems


def derive_dues(rows: Rows, lookups: Lookups, cal: WorkCalendar, rules: OneStopRules) -> None:
    """The legal due date of every good row (NaT for the others), and the citizen's due
    date: the apology's new date, if any."""
    legal = np.full(len(rows.lines), NAT, dtype="datetime64[s]")
    good = np.flatnonzero(rows.ok)
    if len(good):
        at = pc.index_in(
            rows.cells["procedure_code"].take(pa.array(good)), value_set=lookups.procedure_codes
        ).to_numpy(zero_copy_only=False)
        legal[good] = legal_due_many(
            cal,
            rules,
            rows.times["received_at"][good],
            rows.times["supplement_received_at"][good],
            lookups.limit_values[at],
            lookups.limit_units[at],
        )
    new_due = rows.times["apology_new_due"]
    rows.times["legal_due"] = legal
    rows.times["due"] = np.where(np.isnat(new_due), legal, new_due)


def import_dossiers(
    engine: Engine,
    path: str | Path,
    cal: WorkCalendar,
    rules: OneStopRules,
    now: datetime | None = None,
    *,
    reader: str = "arrow",
) -> ImportReport:
    """Stream an export in chunks: check every row, compute its due dates and write it
    into one transaction that is only committed if the whole file is good. A file with
    any bad row is refused whole, every bad row named by line and column (up to
    `MAX_LISTED`), and the database is left as it was."""
    path = _open(path)
    if not is_json_lines(path):
        header = csv_header(path)
        problems: list[RowProblem] = []
        if not _check_header(
            path,
            {"__header__": ",".join(header.stripped)},
            DOSSIER_COLUMNS,
            OPTIONAL_COLUMNS,
            problems,
        ):
            raise ImportRefused(str(path), problems)
    stamp = (now or datetime.now(VN).replace(tzinfo=None)).replace(microsecond=0)
    for attempt in (reader, "stdlib"):
        try:
            return _import(engine, path, cal, rules, stamp, attempt)
        except ReadAgain:
            continue
    raise AssertionError("the standard library's reader always reads")  # pragma: no cover


def _import(engine, path, cal, rules, stamp, reader) -> ImportReport:
    found = Problems(str(path))
    writer = open_writer(engine, stamp, expected_rows(path))
    try:
        lookups = _lookups(writer.fetch)
        # Reading, checking and preparing the next chunks (mostly Arrow and numpy, which
        # release the GIL) overlap the database's writing of this one.
        for rows, problems, line_problems, payload in _background(
            _prepared(path, reader, lookups, cal, rules, writer)
        ):
            found.add_lines(line_problems)
            found.add_rows(rows.lines, problems)
            if found.total:
                writer.stop_writing()
            writer.write(payload)
        outcome = writer.finish(refused=bool(found.total))
    except BaseException:
        writer.abort()
        raise
    if outcome.needs_check_pass:
        # The writer only learnt that something is wrong (a repeated id, a changed
        # apology); a second reading names every bad line, writing nothing.
        found = Problems(str(path))
        checker = open_checker(engine)
        try:
            for rows, problems, line_problems, payload in _prepared(
                path, reader, lookups, cal, rules, checker
            ):
                found.add_lines(line_problems)
                found.add_rows(rows.lines, problems)
                checker.write(payload)
            outcome = checker.finish(refused=True)
        finally:
            checker.abort()
    found.add_database(outcome.problems, outcome.unlisted)
    if found.total:
        raise ImportRefused(str(path), found.listed(), found.total)
    return ImportReport(str(path), outcome.rows, outcome.inserted, outcome.updated)


def _prepared(path, reader, lookups, cal, rules, writer):
    for chunk in read_chunks(path, DOSSIER_COLUMNS, reader=reader):
        rows, problems = check_chunk(chunk, lookups)
        derive_dues(rows, lookups, cal, rules)
        yield rows, problems, chunk.problems, writer.prepare(rows)


_DONE = object()


def _background(items: Iterator, depth: int = 2) -> Iterator:
    """`items`, produced in a thread at most `depth` ahead of the consumer; an error in
    the thread is raised in the consumer. Closing the generator stops the thread."""
    ahead: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        ahead.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ahead.put((_DONE, None))
        except BaseException as exc:  # handed to the consumer
            ahead.put((_DONE, exc))

    thread = threading.Thread(target=produce, name="dossier-import-reader", daemon=True)
    thread.start()
    try:
        while True:
            item, error = ahead.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                ahead.get(timeout=0.1)
        thread.join()


def expected_rows(path: Path) -> int:
    """About how many rows the file holds, from the length of its first lines."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    lines = head.count(b"\n") or 1
    return int(size / (len(head) / lines)) if head else 0


def to_csv(rows: list[dict], columns=DOSSIER_COLUMNS) -> str:
    """Rows as an export CSV (used by the sample generator and the benchmark)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
