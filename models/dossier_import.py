"""Importing the one-stop system's exports: procedures and dossiers.

An import is one transaction per file, all or nothing: a file with any bad row is refused
whole, with every bad row listed by line and column, and the database is left as it was.
A good file is upserted by id, so re-importing an updated export updates the dossiers in
place.

Dossiers stream through in chunks of about ten thousand rows (`models.export_reader`):
each chunk's columns are checked with array operations (`deadlines.dossier_checks`), its
due dates, clocks and states computed on arrays (`deadlines.dossier`), and its rows
written at once (`models.dossier_write`: straight into the table on SQLite, COPY into a
staging table on PostgreSQL). Memory is a few chunks whatever the file's size; no Python
object is made per row except the values a chunk hands to SQLite.

Dossier export columns (CSV with a header row, or JSON lines with the same keys; another
system's names through a column-mapping file, `deadlines.export_columns`):
`dossier_id, procedure_code, agency_code, channel (online|direct|postal), received_at
(ISO 8601, local time), completed_at, supplement_requested_at (the last request),
supplement_received_at (the complete dossier after it), apology_at, apology_new_due,
digitized (0/1), e_result (0/1), paid_online (0/1/blank)`, and optionally `handler`,
`supplement_requests` (how many requests; blank: 1 when a request is dated), `closed_at`
(returned or closed without a result) and `appointment_at` (the receipt slip's date).
Times with an offset are converted to Vietnam time; seconds are the finest unit kept.
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
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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
    FLAG_COLUMNS,
    IDENTITY,
    OPTIONAL_COLUMNS,
    TIME_COLUMNS,
    ColumnMapping,
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
REQUIRED_COLUMNS = tuple(c for c in DOSSIER_COLUMNS if c not in OPTIONAL_COLUMNS)
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

    def __init__(self, path: str, mapping: ColumnMapping = IDENTITY):
        self.path = path
        self.mapping = mapping
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

    def shown(self, column: str) -> str:
        """A column as the file names it: 'NgayTiepNhan (received_at)' under a mapping."""
        name = self.mapping.source_name(column) if column else column
        return column if name == column else f"{name} ({column})"

    def listed(self) -> list[RowProblem]:
        self._kept.sort()
        return [
            RowProblem(self.path, line, self.shown(column), message)
            for line, _, column, message in self._kept[:MAX_LISTED]
        ]


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


def translate(chunk: Chunk, mapping: ColumnMapping) -> Chunk:
    """A chunk read under the file's own column names, in dunghan's columns: renamed, and
    coded values (e.g. channel "2") translated, column by column."""
    if mapping is IDENTITY:
        return chunk
    cells = {}
    for column in DOSSIER_COLUMNS:
        values = chunk.cells[mapping.source_name(column)]
        coded = mapping.values.get(column)
        if coded:
            codes = pa.array(list(coded), pa.string())
            at = pc.index_in(values, value_set=codes)
            meaning = pa.array(list(coded.values()), pa.string())
            values = pc.if_else(pc.is_valid(at), meaning.take(pc.fill_null(at, 0)), values)
        cells[column] = values
    return Chunk(chunk.lines, cells, chunk.problems)


def check_chunk(
    chunk: Chunk, lookups: Lookups, rules: OneStopRules, mapping: ColumnMapping
) -> tuple[Rows, list[checks.Problem]]:
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
            cells[column], column, mapping.time_format, required=column == "received_at"
        )
        problems += found
    flags: dict[str, np.ndarray] = {}
    for column in FLAG_COLUMNS:
        flags[column], found = checks.flag_codes(
            cells[column], column, blank_allowed=column == "paid_online"
        )
        problems += found
    counts, found = checks.parse_counts(cells["supplement_requests"], "supplement_requests")
    problems += found
    requests, found = checks.resolve_supplement_requests(counts, times["supplement_requested_at"])
    problems += found
    problems += checks.check_event_order(times)
    problems += checks.check_event_pairs(times)
    received = times["received_at"]
    problems += checks.check_years(received, "received_at", FIRST_YEAR, LAST_YEAR)
    years = received.astype("datetime64[Y]").astype(np.int64) + 1970
    outside = ~np.isnat(received) & ((years < FIRST_YEAR) | (years >= LAST_YEAR))
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
    ok = np.ones(len(chunk), dtype=bool)
    if problems:
        ok[[row for row, _, _ in problems]] = False
    codes = np.array([r.code for r in rules.regimes] + [""], dtype=object)
    text = {
        "id": cells["dossier_id"],
        **{c: cells[c] for c in ("procedure_code", "agency_code", "channel", "handler")},
        "regime": pa.array(codes[regime_index].tolist(), pa.string()),
    }
    ints = {
        "supplement_requests": requests,
        "reschedules": (~np.isnat(times["apology_at"])).astype(np.int64),
    }
    rows = Rows(chunk.lines, ok, text, times, flags, ints)
    rows.regime_index = regime_index
    return rows, problems


def derive(rows: Rows, lookups: Lookups, cal: WorkCalendar, rules: OneStopRules) -> None:
    """For every good row (NaT, null for the others): the due dates under its regime,
    the portal's appointment, whether its apology was timely, and its state."""
    n = len(rows.lines)
    times = rows.times
    for name in ("first_due", "legal_due", "due", "due_766"):
        times[name] = np.full(n, NAT, dtype="datetime64[s]")
    rows.flags["apology_timely"] = np.full(n, -1, dtype=np.int8)
    state = np.full(n, "", dtype=object)
    good = np.flatnonzero(rows.ok)
    if len(good):
        at = pc.index_in(
            rows.text["procedure_code"].take(pa.array(good)), value_set=lookups.procedure_codes
        ).to_numpy(zero_copy_only=False)
        values, units = lookups.limit_values[at], lookups.limit_units[at]
        regime = rows.regime_index[good]
        mine = {name: times[name][good] for name in TIME_COLUMNS}
        received, supplied = mine["received_at"], mine["supplement_received_at"]
        nat = np.full(received.shape, NAT, dtype="datetime64[s]")
        first = legal_due_many(cal, rules, received, nat, values, units, regime)
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
                regime[restarted],
            )
        new_due = mine["apology_new_due"]
        due = np.where(np.isnat(new_due), legal, new_due)
        due_766 = due_766_many(
            rules.indicator,
            mine["appointment_at"],
            first,
            mine["supplement_requested_at"],
            supplied,
            new_due,
        )
        apology_at = mine["apology_at"]
        apologised = ~np.isnat(apology_at)
        if apologised.any():
            facts = ClockFacts(
                first_due=first[apologised],
                legal_due=legal[apologised],
                requested=mine["supplement_requested_at"][apologised],
                supplied=supplied[apologised],
                requests=rows.ints["supplement_requests"][good][apologised],
                completed=mine["completed_at"][apologised],
                closed=mine["closed_at"][apologised],
                appointment=mine["appointment_at"][apologised],
                due_766=due_766[apologised],
            )
            apology_due = due_at(facts, apology_at[apologised], ArrayOps)
            deadline = apology_deadline_many(cal, rules, regime[apologised], apology_due)
            timely = rows.flags["apology_timely"]
            timely[good[apologised]] = (apology_at[apologised] < deadline).astype(np.int8)
        for name, value in (
            ("first_due", first),
            ("legal_due", legal),
            ("due", due),
            ("due_766", due_766),
        ):
            times[name][good] = value
        state[good] = states_many(
            mine["supplement_requested_at"],
            supplied,
            mine["completed_at"],
            mine["closed_at"],
            apology_at,
        )
    rows.text["state"] = pa.array(state.tolist(), pa.string())


def import_dossiers(
    engine: Engine,
    path: str | Path,
    cal: WorkCalendar,
    rules: OneStopRules,
    now: datetime | None = None,
    columns: ColumnMapping | None = None,
    *,
    reader: str = "arrow",
) -> ImportReport:
    """Stream an export in chunks: check every row, compute its due dates under the
    regime of its receipt and write it into one transaction that is only committed if
    the whole file is good. A file with any bad row is refused whole, every bad row named
    by line and column (up to `MAX_LISTED`), and the database is left as it was."""
    path = _open(path)
    mapping = columns or IDENTITY
    if not is_json_lines(path):
        missing = mapping.missing_columns(csv_header(path).stripped, REQUIRED_COLUMNS)
        if mapping.supplements is not None:
            missing.append(
                f"danh sách yêu cầu bổ sung '{mapping.supplements.list_name}' (supplements "
                f"trong {mapping.path}) chỉ đọc được từ tệp JSON lines"
            )
        if missing:
            raise ImportRefused(str(path), [RowProblem(str(path), 1, "", "; ".join(missing))])
    stamp = (now or datetime.now(VN).replace(tzinfo=None)).replace(microsecond=0)
    for attempt in (reader, "stdlib"):
        try:
            return _import(engine, path, cal, rules, stamp, attempt, mapping)
        except ReadAgain:
            continue
    raise AssertionError("the standard library's reader always reads")  # pragma: no cover


def _import(engine, path, cal, rules, stamp, reader, mapping) -> ImportReport:
    found = Problems(str(path), mapping)
    writer = open_writer(engine, rules, stamp, expected_rows(path))
    try:
        lookups = _lookups(writer.fetch)
        # Reading, checking and preparing the next chunks (mostly Arrow and numpy, which
        # release the GIL) overlap the database's writing of this one.
        for rows, problems, line_problems, payload in _background(
            _prepared(path, reader, mapping, lookups, cal, rules, writer)
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
        # The writer only learnt that something is wrong (a repeated id, an apology
        # changed); a second reading names every bad line, writing nothing.
        found = Problems(str(path), mapping)
        checker = open_checker(engine, rules)
        try:
            for rows, problems, line_problems, payload in _prepared(
                path, reader, mapping, lookups, cal, rules, checker
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


def _prepared(path, reader, mapping, lookups, cal, rules, writer):
    if is_json_lines(path):
        chunks = read_chunks(path, DOSSIER_COLUMNS, translate=mapping.translate)
    else:
        names = tuple(dict.fromkeys(mapping.source_name(c) for c in DOSSIER_COLUMNS))
        chunks = (translate(c, mapping) for c in read_chunks(path, names, reader=reader))
    for chunk in chunks:
        rows, problems = check_chunk(chunk, lookups, rules, mapping)
        derive(rows, lookups, cal, rules)
        yield rows, problems, chunk.problems, writer.prepare(rows)


_DONE = object()


def _background(items: Iterator, depth: int = 1) -> Iterator:
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
