"""Writing checked dossier rows, chunk by chunk, in one transaction per import.

SQLite: the rows go straight into `dossier` (an upsert by id) inside one write
transaction that is rolled back unless the whole file is good. Each chunk is one blob of
fixed-width records (`models.sqlite_pack`) that one INSERT … SELECT reads back, without
the GIL. A temporary trigger watches the upsert: a row updated twice (an id repeated in
the file) or an apology changed or removed aborts the write, and the importer reads the
file again to name every bad line. A bulk load (at least `BULK_ROWS` rows and as many as
the table holds) builds the secondary indexes once, afterwards, instead of row by row.

PostgreSQL: the rows are COPYed in the binary format (`models.pg_binary`) into a
temporary staging table; the file's checks that need the database run there in SQL;
only then is the table changed, by one upsert — or, for a bulk load, by replacing the
matching rows and rebuilding the keys, indexes and foreign keys once (per-row
foreign-key triggers cost more than the load itself). A first load (a bulk file into an
empty table) skips the staging table: COPYed straight into the table, its keys dropped
and built at the end; a repeated id fails the primary key, and the second reading names
the lines.

Either way, another connection sees the old table until the commit, and a refused file
changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import Engine

from deadlines import dossier_checks as checks
from deadlines.dossier import OneStopRules
from deadlines.export_columns import FLAG_COLUMNS, TIME_COLUMNS
from models import pg_binary
from models.sqlite_pack import Kind, Packed, pack

# From this many rows (and at least as many as the table holds) an import is a bulk load.
BULK_ROWS = 10_000
DB_COLUMNS = (
    "id",
    "procedure_code",
    "agency_code",
    "channel",
    *TIME_COLUMNS,
    *FLAG_COLUMNS,
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
DERIVED_TIMES = ("first_due", "legal_due", "due", "due_766")
SHARED_TEXT = ("procedure_code", "agency_code", "channel", "regime", "state")
SEQUENCE = "temp.dossier_import_rows"  # row numbers for the packed chunks
LISTED = 2000  # database problems fetched per kind (the importer lists fewer)
# SQLite sorts an index's keys fastest in small runs (measured: 2x faster than with the
# 64 MiB cache the table's upserts want).
SORT_CACHE_KIB = 512
# Helper threads SQLite may sort an index's keys with (the connection's default: none).
SORT_THREADS = min(4, os.cpu_count() or 1)
WRITE_CACHE_KIB = 16 * 1024


@dataclass
class Rows:
    """One checked chunk: every row's line, which rows passed every check (`ok`), and its
    stored columns by kind."""

    lines: np.ndarray
    ok: np.ndarray
    text: dict[str, pa.Array]  # "" for blank
    times: dict[str, np.ndarray]  # datetime64[s], NaT for blank or bad
    flags: dict[str, np.ndarray]  # int8: 1, 0, -1 for blank or bad
    ints: dict[str, np.ndarray]  # int64
    regime_index: np.ndarray | None = None


@dataclass
class Outcome:
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    problems: list[tuple[int, str, str]] = field(default_factory=list)  # line, column, message
    unlisted: int = 0  # database problems found but not fetched
    needs_check_pass: bool = False


def open_writer(engine: Engine, rules: OneStopRules, stamp: datetime, expected_rows: int):
    if engine.dialect.name == "postgresql":
        return PostgresWriter(engine, rules, stamp, expected_rows)
    return SQLiteWriter(engine, rules, stamp, expected_rows)


def open_checker(engine: Engine, rules: OneStopRules):
    if engine.dialect.name == "postgresql":
        return PostgresWriter(engine, rules, None, 0)  # stages every row, writes nothing
    return SQLiteChecker(engine, rules)


def _allowed(rules: OneStopRules, regime: str) -> str:
    """SQL: how many times a dossier of the regime code `regime` may be rescheduled."""
    cases = " ".join(f"WHEN '{r.code}' THEN {int(r.max_reschedules)}" for r in rules.regimes)
    return f"(CASE {regime} {cases} ELSE 1 END)"


def _reschedules(same: str) -> str:
    """SQL for the upsert: an apology repeated keeps the count, a new one adds one."""
    return (
        "CASE WHEN dossier.apology_at IS NULL THEN excluded.reschedules "
        f"WHEN dossier.apology_at {same} excluded.apology_at "
        f"AND dossier.apology_new_due {same} excluded.apology_new_due "
        "THEN dossier.reschedules ELSE dossier.reschedules + 1 END"
    )


def sqlite_text(values: np.ndarray) -> list[str | None]:
    """Local times as the text SQLAlchemy writes for a SQLite DATETIME (None for NaT).
    Each distinct instant is formatted once and its text shared (due dates fall on few
    instants)."""
    stamps = pa.array(values.astype("datetime64[s]"), type=pa.timestamp("s"), from_pandas=True)
    encoded = pc.dictionary_encode(stamps)
    texts = pc.binary_replace_slice(pc.cast(encoded.dictionary, pa.string()), 19, 19, ".000000")
    objects = np.array([*texts.to_pylist(), None], dtype=object)
    return objects[encoded.indices.fill_null(len(objects) - 1).to_numpy()].tolist()


def _shared(values: pa.Array) -> list:
    """A low-cardinality column as Python values, one object per distinct value."""
    encoded = pc.dictionary_encode(values)
    objects = np.array([*encoded.dictionary.to_pylist(), None], dtype=object)
    return objects[encoded.indices.to_numpy(zero_copy_only=False)].tolist()


def _blank_to_null(values: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def _good(rows: Rows) -> Rows:
    return rows if rows.ok.all() else _take(rows, np.flatnonzero(rows.ok))


def _take(rows: Rows, keep: np.ndarray) -> Rows:
    """The rows at the positions `keep`, in that order."""
    taken = pa.array(keep)
    return Rows(
        rows.lines[keep],
        rows.ok[keep],
        {name: values.take(taken) for name, values in rows.text.items()},
        {name: values[keep] for name, values in rows.times.items()},
        {name: values[keep] for name, values in rows.flags.items()},
        {name: values[keep] for name, values in rows.ints.items()},
    )


def _apology_problems(rules: OneStopRules, found) -> list[tuple[int, str, str]]:
    problems = []
    for line, removed, previous_due, code in found:
        if removed:
            problems.append((int(line), "apology_at", checks.APOLOGY_REMOVED))
            continue
        if isinstance(previous_due, str):
            previous_due = datetime.fromisoformat(previous_due)
        regime = next((r for r in rules.regimes if r.code == code), None)
        allowed = regime.max_reschedules if regime else 1
        source = f" ({regime.facts['apology'].cite()})" if regime else ""
        message = checks.apology_changed_message(previous_due, allowed, source)
        problems.append((int(line), "apology_at", message))
    return problems


def _changed_apologies(rules: OneStopRules, stage: str, distinct: str) -> str:
    """SQL: the staged rows that drop a recorded apology, or change it once too often."""
    return (
        f"SELECT s.line, s.apology_at IS NULL, d.apology_new_due, s.regime FROM {stage} AS s "
        f"JOIN dossier AS d ON d.id = s.id WHERE d.apology_at IS NOT NULL AND "
        f"(s.apology_at IS NULL OR ((s.apology_at {distinct} d.apology_at OR "
        f"s.apology_new_due {distinct} d.apology_new_due) "
        f"AND d.reschedules + 1 > {_allowed(rules, 's.regime')}))"
    )


def _database_checks(fetch, rules: OneStopRules, stage: str, distinct: str) -> tuple[list, int]:
    """The file's checks against itself and the table, over a staging table holding
    every row's line, id, regime and apology: ids repeated in the file, apologies
    dropped or rescheduled too often."""
    # A repeat within a chunk is the chunk's own check (dossier_checks.check_unique):
    # here, the first row of its chunk to repeat an id of an earlier chunk.
    repeated = (
        f"SELECT line, id FROM (SELECT line, id, min(line) OVER (PARTITION BY id) AS first, "
        f"min(line) OVER (PARTITION BY id, chunk) AS first_in_chunk FROM {stage} "
        "WHERE id <> '') AS s WHERE line > first AND line = first_in_chunk"
    )
    changed = _changed_apologies(rules, stage, distinct)
    problems: list[tuple[int, str, str]] = []
    unlisted = 0
    for query, make in (
        (
            repeated,
            lambda found: [
                (int(line), "dossier_id", checks.duplicate_message(i)) for line, i in found
            ],
        ),
        (changed, lambda found: _apology_problems(rules, found)),
    ):
        total = fetch(f"SELECT count(*) FROM ({query}) AS q")[0][0]
        problems += make(fetch(f"{query} ORDER BY 1 LIMIT {LISTED}"))
        unlisted += max(total - LISTED, 0)
    return problems, unlisted


# ------------------------------------------------------------------------ SQLite


class _SQLiteConnection:
    """A pooled connection set up for one import (its own transactions, no memory map
    so the process's memory is what it uses), and put back as it was."""

    SAVED = ("foreign_keys", "mmap_size", "cache_size", "threads")

    def __init__(self, engine: Engine):
        self.pooled = engine.raw_connection()
        self.db: sqlite3.Connection = self.pooled.driver_connection  # type: ignore[assignment]
        self.isolation = self.db.isolation_level
        self.db.isolation_level = None
        self.saved = {name: self.fetch(f"PRAGMA {name}")[0][0] for name in self.SAVED}
        self.db.execute("PRAGMA mmap_size=0")

    def fetch(self, sql: str, params=()) -> list[tuple]:
        return self.db.execute(sql, params).fetchall()

    closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            for name, value in self.saved.items():
                self.db.execute(f"PRAGMA {name}={int(value)}")
            self.db.isolation_level = self.isolation
        finally:
            self.pooled.close()


class SQLiteWriter:
    GUARD = "dunghan import:"

    def __init__(self, engine: Engine, rules: OneStopRules, stamp: datetime, expected_rows: int):
        self.stamp = stamp.isoformat(sep=" ") + ".000000"
        self.conn = _SQLiteConnection(engine)
        db = self.conn.db
        # The catalog and registry are read in this write transaction and every row is
        # checked against them, so the per-row foreign-key lookups can go.
        db.execute("PRAGMA foreign_keys=OFF")
        # The page cache of the write. Each chunk's ids arrive sorted, so its keys land on
        # a few pages of the primary key: 16 MiB write as fast as 32 (measured on a million
        # rows) and keep the import's peak well under its 300 MiB budget.
        db.execute(f"PRAGMA cache_size=-{WRITE_CACHE_KIB}")
        db.execute("BEGIN IMMEDIATE")
        self.fetch = self.conn.fetch
        before = self.fetch("SELECT count(*), coalesce(max(rowid), 0) FROM dossier")[0]
        self.indexes: list[str] = []
        if expected_rows >= max(BULK_ROWS, before[0]):
            self.indexes = [
                sql
                for name, sql in self.fetch(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                    "AND tbl_name = 'dossier' AND sql IS NOT NULL"
                )
            ]
            for (name,) in self.fetch(
                "SELECT name FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'dossier' AND sql IS NOT NULL"
            ):
                db.execute(f'DROP INDEX "{name}"')
        db.execute("CREATE TEMP TABLE dossier_import_touched (id TEXT PRIMARY KEY)")
        # A row this import inserted (rowid past the old end) updated again is an id the
        # file repeats; an old row updated twice too; and an apology, once given, stays.
        db.execute(
            f"""CREATE TEMP TRIGGER dossier_import_guard BEFORE UPDATE ON main.dossier
            BEGIN
              SELECT RAISE(ABORT, '{self.GUARD} repeated') WHERE old.rowid > {int(before[1])};
              SELECT RAISE(ABORT, '{self.GUARD} apology') WHERE old.apology_at IS NOT NULL
                AND (new.apology_at IS NULL
                     OR ((old.apology_at IS NOT new.apology_at
                          OR old.apology_new_due IS NOT new.apology_new_due)
                         AND old.reschedules + 1 > {_allowed(rules, "new.regime")}));
              INSERT INTO dossier_import_touched (id) VALUES (old.id);
            END"""
        )
        names = ", ".join(DB_COLUMNS)
        updates = ", ".join(
            f"{c} = {_reschedules('IS') if c == 'reschedules' else 'excluded.' + c}"
            for c in DB_COLUMNS
            if c != "id"
        )
        db.execute(f"CREATE TEMP TABLE {SEQUENCE} (i INTEGER PRIMARY KEY)")
        self.sequence = 0
        self.sql = (
            f"INSERT INTO dossier ({names}) {{select}} ON CONFLICT (id) DO UPDATE SET {updates}"
        )
        self.rows = 0
        self.writing = True
        self.tripped = False

    def stop_writing(self) -> None:
        self.writing = False

    def prepare(self, rows: Rows) -> Packed | None:
        """The good rows as one blob of records (in the reading thread)."""
        if not self.writing or not len(rows.lines):
            return None
        rows = _good(rows)
        # In id order, the chunk's keys go into the primary key's pages one after the
        # other instead of all over it (measured: 0.8 s less for a million).
        rows = _take(rows, pc.sort_indices(rows.text["id"]).to_numpy())
        columns = []
        for name in DB_COLUMNS:
            if name == "handler":
                columns.append((Kind.TEXT_OR_NULL, rows.text[name]))
            elif name in rows.text:
                columns.append((Kind.TEXT, rows.text[name]))
            elif name in rows.times:
                columns.append((Kind.TIME, rows.times[name]))
            elif name in rows.flags:
                columns.append((Kind.FLAG, rows.flags[name]))
            elif name in rows.ints:
                columns.append((Kind.INTEGER, rows.ints[name]))
            elif name == "imported_at":
                columns.append((Kind.CONSTANT, self.stamp))
        return pack(columns)

    def write(self, packed: Packed | None) -> None:
        if not self.writing or packed is None:
            return
        db = self.conn.db
        if packed.rows > self.sequence:
            db.execute(
                "WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?) "
                f"INSERT INTO {SEQUENCE} (i) SELECT i FROM n",
                (self.sequence, packed.rows),
            )
            self.sequence = packed.rows
        try:
            db.execute(self.sql.format(select=packed.select(SEQUENCE)), packed.params)
        except sqlite3.IntegrityError as exc:
            if self.GUARD not in str(exc) and "dossier_import_touched" not in str(exc):
                raise
            self.tripped = True
            self.writing = False
            return
        self.rows += packed.rows

    def finish(self, *, refused: bool) -> Outcome:
        if refused or self.tripped:
            self.abort()
            return Outcome(needs_check_pass=True)
        db = self.conn.db
        if self.indexes:
            db.execute(f"PRAGMA cache_size=-{SORT_CACHE_KIB}")
            db.execute(f"PRAGMA threads={SORT_THREADS}")
            for sql in self.indexes:
                db.execute(sql)
        updated = self.fetch("SELECT count(*) FROM temp.dossier_import_touched")[0][0]
        self._drop_temporary()
        db.execute("COMMIT")
        self.conn.close()
        return Outcome(self.rows, self.rows - updated, updated)

    def _drop_temporary(self) -> None:
        self.conn.db.execute("DROP TRIGGER IF EXISTS temp.dossier_import_guard")
        self.conn.db.execute("DROP TABLE IF EXISTS temp.dossier_import_touched")
        self.conn.db.execute(f"DROP TABLE IF EXISTS {SEQUENCE}")

    def abort(self) -> None:
        if self.conn.closed:
            return
        if self.conn.db.in_transaction:
            self.conn.db.execute("ROLLBACK")
        self._drop_temporary()
        self.conn.close()


class SQLiteChecker:
    """The second reading of a refused file: every row's line, id and apology into a
    temporary table, then the checks against the file itself and the table in SQL."""

    def __init__(self, engine: Engine, rules: OneStopRules):
        self.rules = rules
        self.conn = _SQLiteConnection(engine)
        self.fetch = self.conn.fetch
        self.conn.db.execute(
            "CREATE TEMP TABLE dossier_import_seen (line INTEGER, chunk INTEGER, "
            "id TEXT, regime TEXT, apology_at TEXT, apology_new_due TEXT)"
        )
        self.chunk = 0

    def stop_writing(self) -> None:
        pass

    def prepare(self, rows: Rows) -> Rows:
        return rows

    def write(self, rows: Rows) -> None:
        self.chunk += 1
        self.conn.db.executemany(
            "INSERT INTO temp.dossier_import_seen VALUES (?, ?, ?, ?, ?, ?)",
            zip(
                rows.lines.tolist(),
                [self.chunk] * len(rows.lines),
                rows.text["id"].to_pylist(),
                _shared(rows.text["regime"]),
                sqlite_text(rows.times["apology_at"]),
                sqlite_text(rows.times["apology_new_due"]),
                strict=True,
            ),
        )

    def finish(self, *, refused: bool) -> Outcome:
        problems, unlisted = _database_checks(
            self.fetch, self.rules, "temp.dossier_import_seen", "IS NOT"
        )
        return Outcome(problems=problems, unlisted=unlisted)

    def abort(self) -> None:
        if self.conn.closed:
            return
        self.conn.db.execute("DROP TABLE IF EXISTS temp.dossier_import_seen")
        self.conn.close()


# -------------------------------------------------------------------- PostgreSQL

STAGE = "dossier_import_stage"
_STAGE_TYPES = {
    "line": "bigint",
    "chunk": "integer",
    "ok": "boolean",
    **{c: "text" for c in ("id", "handler", *SHARED_TEXT)},
    **{c: "timestamp" for c in (*TIME_COLUMNS, *DERIVED_TIMES)},
    **{c: "boolean" for c in (*FLAG_COLUMNS, "apology_timely")},
    **{c: "integer" for c in ("supplement_requests", "reschedules")},
}
STAGED = ("line", "chunk", "ok", *(c for c in DB_COLUMNS if c != "imported_at"))


class PostgresWriter:
    """Stages every row (COPY into a temporary table), checks in SQL, then upserts. A
    first load — a bulk file into an empty table — is COPYed straight into the table
    instead, its keys, indexes and foreign keys dropped first and built once at the end;
    the table stays locked (ACCESS EXCLUSIVE) until the commit. A stamp of None only
    stages, for the second reading of a refused file."""

    def __init__(
        self, engine: Engine, rules: OneStopRules, stamp: datetime | None, expected_rows: int
    ):
        self.rules = rules
        self.stamp = stamp
        self.pooled = engine.raw_connection()
        self.db = self.pooled.driver_connection
        self.cursor = self.db.cursor()
        self.copy = None
        self.rows = 0
        self.chunks = 0
        self.writing = True
        self.keys: tuple[list, list] | None = None
        if stamp is not None and expected_rows >= BULK_ROWS and self._first_load():
            # The primary key stays: the server keeps it up during the COPY, while it
            # would otherwise wait for the next rows (measured: 1 s less for a million).
            self.keys = self._drop_keys(primary=False)
            self.target, self.columns = "dossier", DB_COLUMNS
        else:
            self.cursor.execute(
                f"CREATE TEMP TABLE {STAGE} ("
                + ", ".join(f"{c} {_STAGE_TYPES[c]}" for c in STAGED)
                + ") ON COMMIT DROP"
            )
            self.target, self.columns = STAGE, STAGED
        self.columns, self.types = pg_binary.copy_columns(self.fetch, self.target, self.columns)

    @property
    def direct(self) -> bool:
        return self.keys is not None

    def _first_load(self) -> bool:
        """The table is empty, and locked until the commit so that it stays so."""
        if self.fetch("SELECT EXISTS (SELECT 1 FROM dossier)")[0][0]:
            return False
        self.cursor.execute("LOCK TABLE dossier IN ACCESS EXCLUSIVE MODE")
        return not self.fetch("SELECT EXISTS (SELECT 1 FROM dossier)")[0][0]

    def _drop_keys(self, primary: bool = True) -> tuple[list, list]:
        """Drops the table's foreign keys, indexes and (if `primary`) primary key; their
        definitions, to be built again."""
        kinds = "('p', 'f')" if primary else "('f')"
        constraints = self.fetch(
            "SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint "
            f"WHERE conrelid = 'dossier'::regclass AND contype IN {kinds} ORDER BY contype DESC"
        )
        indexes = self.fetch(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indrelid = 'dossier'::regclass AND NOT indisprimary"
        )
        for name, _, _ in sorted(constraints, key=lambda c: c[2]):  # foreign keys first
            self.cursor.execute(f'ALTER TABLE dossier DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            self.cursor.execute(f"DROP INDEX {name}")
        return constraints, indexes

    def _build_keys(self, keys: tuple[list, list]) -> None:
        """The primary key, the indexes, then the foreign keys."""
        constraints, indexes = keys
        self.cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for name, definition, kind in constraints:
            if kind == "p":
                self.cursor.execute(f'ALTER TABLE dossier ADD CONSTRAINT "{name}" {definition}')
        for _, index in indexes:
            self.cursor.execute(index)
        for name, definition, kind in constraints:
            if kind == "f":
                self.cursor.execute(f'ALTER TABLE dossier ADD CONSTRAINT "{name}" {definition}')

    def fetch(self, sql: str, params=None) -> list[tuple]:
        return self.cursor.execute(sql, params).fetchall()

    def stop_writing(self) -> None:
        # Staged, every row stays: the database checks name their lines.
        self.writing = not self.direct

    def prepare(self, rows: Rows) -> tuple[pa.Buffer, int] | None:
        """The chunk's rows in binary COPY format (in the reading thread): every row with
        its line into the staging table, or the good rows into the table itself."""
        if not self.writing or not len(rows.lines):
            return None
        if self.direct:
            rows = _good(rows)
        self.chunks += 1
        values = []
        for name in self.columns:
            if name == "line":
                values.append(rows.lines)
            elif name == "chunk":
                values.append(np.full(len(rows.lines), self.chunks))
            elif name == "ok":
                values.append(rows.ok)
            elif name == "imported_at":
                values.append(np.full(len(rows.lines), np.datetime64(self.stamp, "s")))
            elif name in rows.times:
                values.append(rows.times[name])
            elif name in rows.flags:
                values.append(rows.flags[name])
            elif name in rows.ints:
                values.append(rows.ints[name])
            elif name == "handler":
                values.append(_blank_to_null(rows.text["handler"]))
            else:
                values.append(rows.text[name])
        return pg_binary.encode(self.types, values), int(rows.ok.sum())

    def write(self, prepared: tuple[pa.Buffer, int] | None) -> None:
        if prepared is None or not self.writing:
            return
        import psycopg.errors

        try:
            if self.copy is None:
                self.copying = self.cursor.copy(
                    f"COPY {self.target} ({', '.join(self.columns)}) FROM STDIN (FORMAT binary)"
                )
                self.copy = self.copying.__enter__()
                self.copy.write(pg_binary.HEADER)
            data, good = prepared
            self.copy.write(memoryview(data))
        except psycopg.errors.UniqueViolation:
            self._repeated()
            return
        self.rows += good

    repeated = False

    def _repeated(self) -> None:
        """A first load's COPY refused by the primary key: an id the file repeats."""
        self.repeated, self.writing, self.copy = True, False, None

    def finish(self, *, refused: bool) -> Outcome:
        if self.copy is not None:
            import psycopg.errors

            try:
                self.copy.write(pg_binary.TRAILER)
                self.copying.__exit__(None, None, None)
                self.copy = None
            except psycopg.errors.UniqueViolation:
                self._repeated()
        if self.direct:
            return self._finish_direct(refused or self.repeated)
        problems, unlisted = [], 0
        if not refused:
            problems, unlisted = self._apology_checks()
        if refused or problems:
            problems, unlisted = _database_checks(self.fetch, self.rules, STAGE, "IS DISTINCT FROM")
            self.abort()
            return Outcome(problems=problems, unlisted=unlisted)
        import psycopg.errors

        self.cursor.execute("SAVEPOINT dossier_import_publish")
        try:
            updated = self._publish()
        except (psycopg.errors.CardinalityViolation, psycopg.errors.UniqueViolation):
            # An id repeated in the file: the upsert or the primary key refused it.
            self.cursor.execute("ROLLBACK TO SAVEPOINT dossier_import_publish")
            problems, unlisted = _database_checks(self.fetch, self.rules, STAGE, "IS DISTINCT FROM")
            self.abort()
            return Outcome(problems=problems, unlisted=unlisted)
        self.db.commit()
        self._close()
        return Outcome(self.rows, self.rows - updated, updated)

    def _finish_direct(self, refused: bool) -> Outcome:
        """A first load: the indexes and foreign keys built again, or — a refused file,
        an id repeated (the primary key refused it) — everything rolled back and the file
        read a second time to name its lines."""
        import psycopg.errors

        if not refused:
            try:
                self._build_keys(self.keys)
            except psycopg.errors.UniqueViolation:  # pragma: no cover - the COPY saw it first
                refused = True
        if refused:
            self.abort()
            return Outcome(needs_check_pass=True)
        self.db.commit()
        self._close()
        return Outcome(self.rows, self.rows, 0)

    def _apology_checks(self) -> tuple[list, int]:
        query = _changed_apologies(self.rules, STAGE, "IS DISTINCT FROM")
        return _apology_problems(self.rules, self.fetch(f"{query} ORDER BY 1 LIMIT {LISTED}")), 0

    def _publish(self) -> int:
        names = ", ".join(DB_COLUMNS)
        staged = ", ".join(c for c in DB_COLUMNS if c != "imported_at")
        select = f"SELECT {staged}, %(stamp)s FROM {STAGE} WHERE ok"
        stamp = {"stamp": self.stamp}
        table_rows = self.fetch("SELECT count(*) FROM dossier")[0][0]
        if self.rows < max(BULK_ROWS, table_rows):
            updated = self.fetch(
                f"SELECT count(*) FROM {STAGE} AS s JOIN dossier AS d ON d.id = s.id WHERE s.ok"
            )[0][0]
            count = _reschedules("IS NOT DISTINCT FROM")
            updates = ", ".join(
                f"{c} = {count if c == 'reschedules' else 'excluded.' + c}"
                for c in DB_COLUMNS
                if c != "id"
            )
            self.cursor.execute(
                f"INSERT INTO dossier ({names}) {select} ON CONFLICT (id) DO UPDATE SET {updates}",
                stamp,
            )
            return updated
        # A bulk load: the keys, indexes and foreign keys are built once, afterwards.
        same = "IS NOT DISTINCT FROM"
        self.cursor.execute(
            f"UPDATE {STAGE} AS s SET reschedules = CASE WHEN s.apology_at {same} d.apology_at "
            f"AND s.apology_new_due {same} d.apology_new_due THEN d.reschedules "
            "ELSE d.reschedules + 1 END FROM dossier AS d "
            "WHERE s.ok AND d.id = s.id AND d.apology_at IS NOT NULL"
        )
        self.cursor.execute(
            f"DELETE FROM dossier AS d USING {STAGE} AS s WHERE s.ok AND d.id = s.id"
        )
        updated = self.cursor.rowcount
        keys = self._drop_keys()
        self.cursor.execute(f"INSERT INTO dossier ({names}) {select}", stamp)
        self._build_keys(keys)
        return updated

    closed = False

    def _close(self) -> None:
        self.closed = True
        self.pooled.close()

    def abort(self) -> None:
        if self.closed:
            return
        if self.copy is not None:
            with contextlib.suppress(Exception):
                self.copying.__exit__(RuntimeError, RuntimeError("import aborted"), None)
            self.copy = None
        self.db.rollback()
        self._close()
