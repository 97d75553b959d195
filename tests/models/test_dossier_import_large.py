"""Large exports: streamed in chunks, all or nothing across chunks, upserts, both readers;
on SQLite and PostgreSQL. The files are seeded sample exports of 30,000 rows (several of
Arrow's blocks and of the standard library reader's chunks, and above the bulk-load
threshold)."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from deadlines.agencies import load_registry
from flows.engine import EngineContext
from flows.samples import generate_dossiers, read_procedures, write_csv
from models.dossier_import import DOSSIER_COLUMNS, ImportRefused, import_dossiers
from models.dossier_import import import_procedures as load_procedures
from models.dossier_write import BULK_ROWS
from models.export_reader import CHUNK_ROWS
from models.tables import Dossier

SAMPLE = Path(__file__).resolve().parents[2] / "plans" / "sample-procedures.csv"
ROWS = 30_000
assert ROWS > BULK_ROWS and ROWS > 2 * CHUNK_ROWS


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> list[dict]:
    """The sample export's rows, as the CSV writer writes them."""
    from deadlines.calendar import WorkCalendar
    from deadlines.dossier import OneStopRules

    columns = generate_dossiers(
        ROWS,
        read_procedures(SAMPLE),
        load_registry(),
        WorkCalendar.vietnam(),
        OneStopRules.load(),
    )
    path = tmp_path_factory.mktemp("export") / "sample.csv"
    write_csv(columns, path)
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def ctx(database_url):
    context = EngineContext.open(database_url)
    load_procedures(context.db, SAMPLE)
    yield context
    context.db.dispose()


def write(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(DOSSIER_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def load(ctx, path, **options):
    return import_dossiers(ctx.db, path, ctx.cal, ctx.one_stop, now=datetime(2026, 1, 5), **options)


def completed(row: dict) -> dict:
    """The row as a later export shows it: done, unless it still waits for a supplement."""
    waiting = row["supplement_requested_at"] and not row["supplement_received_at"]
    if row["completed_at"] or row["closed_at"] or waiting:
        return dict(row)
    return dict(row, completed_at="2026-02-02T10:00:00")


def snapshot(ctx) -> tuple:
    """Enough of the table to see any change: rows, and a digest of every column."""
    with ctx.db.connect() as conn:
        rows = conn.scalar(select(func.count()).select_from(Dossier))
        digest = conn.execute(
            text(
                "SELECT count(completed_at), max(completed_at), min(legal_due), max(due), "
                "count(apology_at), max(imported_at), count(handler) FROM dossier"
            )
        ).one()
    return rows, tuple(digest)


@pytest.mark.parametrize("reader", ["arrow", "stdlib"])
def test_a_bad_last_row_refuses_a_large_file_and_changes_nothing(ctx, export, tmp_path, reader):
    first = load(ctx, write(tmp_path / "first.csv", export), reader=reader)
    assert (first.rows, first.inserted, first.updated) == (ROWS, ROWS, 0)
    before = snapshot(ctx)
    # The next export: every open dossier now completed, and its very last row bad.
    updated = [completed(row) for row in export]
    updated[-1] = dict(updated[-1], channel="fax")
    path = write(tmp_path / "second.csv", updated)
    with pytest.raises(ImportRefused) as refused:
        load(ctx, path, reader=reader)
    assert [(p.line, p.column) for p in refused.value.problems] == [(ROWS + 1, "channel")]
    assert f"{path}, dòng {ROWS + 1}, cột channel: 'fax' không hợp lệ" in str(refused.value)
    assert snapshot(ctx) == before


def test_a_bad_last_row_leaves_an_empty_table_empty(ctx, export, tmp_path):
    rows = [*export[:-1], dict(export[-1], received_at="2025-13-01T08:00:00")]
    with pytest.raises(ImportRefused) as refused:
        load(ctx, write(tmp_path / "export.csv", rows))
    assert [(p.line, p.column) for p in refused.value.problems] == [(ROWS + 1, "received_at")]
    assert snapshot(ctx)[0] == 0


def test_a_reimport_is_an_upsert_in_bulk_and_in_small_batches(ctx, export, tmp_path):
    load(ctx, write(tmp_path / "first.csv", export))
    open_ids = {row["dossier_id"] for row in export if not row["completed_at"]}
    assert open_ids
    again = [completed(row) for row in export]
    still_open = sum(not row["completed_at"] for row in again)
    assert still_open < sum(not row["completed_at"] for row in export)
    report = load(ctx, write(tmp_path / "again.csv", again))  # as many rows as the table
    assert (report.rows, report.inserted, report.updated) == (ROWS, 0, ROWS)
    with ctx.db.connect() as conn:
        assert conn.scalar(select(func.count()).where(Dossier.completed_at.is_(None))) == still_open
    # A small daily export: two changed dossiers and one new one.
    new = dict(export[0], dossier_id="HS-NEW-1")
    small = [dict(export[0], handler="Người Mới"), dict(export[1], handler=""), new]
    report = load(ctx, write(tmp_path / "small.csv", small))
    assert (report.rows, report.inserted, report.updated) == (3, 1, 2)
    with ctx.db.connect() as conn:
        handlers = dict(
            conn.execute(
                select(Dossier.id, Dossier.handler).where(
                    Dossier.id.in_([export[0]["dossier_id"], export[1]["dossier_id"], "HS-NEW-1"])
                )
            ).all()
        )
        total = conn.scalar(select(func.count()).select_from(Dossier))
    assert handlers == {
        export[0]["dossier_id"]: "Người Mới",
        export[1]["dossier_id"]: None,
        "HS-NEW-1": export[0]["handler"],
    }
    assert total == ROWS + 1


@pytest.mark.parametrize("reader", ["arrow", "stdlib"])
def test_an_id_repeated_in_another_chunk_is_named_by_its_line(ctx, export, tmp_path, reader):
    later = ROWS - 5  # far from the first row: another chunk of either reader
    rows = list(export)
    rows[later] = dict(rows[later], dossier_id=rows[3]["dossier_id"])
    with pytest.raises(ImportRefused) as refused:
        load(ctx, write(tmp_path / "export.csv", rows), reader=reader)
    assert [(p.line, p.column, p.message) for p in refused.value.problems] == [
        (later + 2, "dossier_id", f"hồ sơ '{rows[3]['dossier_id']}' xuất hiện hai lần trong tệp")
    ]
    assert snapshot(ctx)[0] == 0


def test_an_id_repeated_after_a_good_import_is_named_and_nothing_changes(ctx, export, tmp_path):
    load(ctx, write(tmp_path / "first.csv", export))
    before = snapshot(ctx)
    rows = [dict(row, handler="Đổi") for row in export]
    rows.append(dict(export[10], handler="Lặp"))
    with pytest.raises(ImportRefused) as refused:
        load(ctx, write(tmp_path / "again.csv", rows))
    assert [(p.line, p.column) for p in refused.value.problems] == [(ROWS + 2, "dossier_id")]
    assert snapshot(ctx) == before


def test_a_changed_apology_deep_in_a_large_file_is_refused(ctx, export, tmp_path):
    load(ctx, write(tmp_path / "first.csv", export))
    before = snapshot(ctx)
    apologised = [i for i, row in enumerate(export) if row["apology_at"]]
    last = apologised[-1]
    rows = list(export)
    rows[last] = dict(rows[last], apology_at="", apology_new_due="")
    with pytest.raises(ImportRefused) as refused:
        load(ctx, write(tmp_path / "again.csv", rows))
    assert [(p.line, p.column, p.message) for p in refused.value.problems] == [
        (last + 2, "apology_at", "hồ sơ đã có phiếu xin lỗi; tệp mới không được xóa nó")
    ]
    assert snapshot(ctx) == before


def test_a_quoted_line_break_keeps_the_line_numbers_people_count(ctx, export, tmp_path):
    """Arrow would number rows, not lines: the import reads such a file with the csv
    module, and names the line a spreadsheet shows."""
    rows = [dict(row) for row in export[:50]]
    rows[5]["handler"] = "Nguyễn Văn\nAn"  # written quoted, over two lines
    rows[40]["digitized"] = "2"
    with pytest.raises(ImportRefused) as refused:
        load(ctx, write(tmp_path / "export.csv", rows))
    assert [(p.line, p.column) for p in refused.value.problems] == [(43, "digitized")]
    rows[40]["digitized"] = "1"
    assert load(ctx, write(tmp_path / "fixed.csv", rows)).inserted == 50
    with ctx.db.connect() as conn:
        handler = conn.scalar(select(Dossier.handler).where(Dossier.id == rows[5]["dossier_id"]))
    assert handler == "Nguyễn Văn\nAn"


def test_blank_lines_keep_the_line_numbers_people_count(ctx, export, tmp_path):
    rows = [dict(row) for row in export[:20]]
    rows[5]["digitized"] = "9"  # line 7 of a plain file
    lines = write(tmp_path / "plain.csv", rows).read_text(encoding="utf-8").splitlines()
    path = tmp_path / "export.csv"
    path.write_text("\n".join([*lines[:3], "", *lines[3:]]) + "\n\n", encoding="utf-8")
    with pytest.raises(ImportRefused) as refused:
        load(ctx, path)
    assert [(p.line, p.column) for p in refused.value.problems] == [(8, "digitized")]
    rows[5]["digitized"] = "1"
    lines = write(tmp_path / "plain.csv", rows).read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines) + "\n\n\n", encoding="utf-8")  # blank lines at the end
    assert load(ctx, path).inserted == 20


def keys(ctx) -> dict:
    """The table's primary key, foreign keys and indexes, as the database describes them."""
    found = inspect(ctx.db)
    described = {
        "primary": found.get_pk_constraint("dossier"),
        "foreign": found.get_foreign_keys("dossier"),
        "indexes": sorted(found.get_indexes("dossier"), key=lambda index: index["name"]),
    }
    return json.loads(json.dumps(described, default=str, sort_keys=True))


def test_a_first_load_refused_or_done_keeps_every_key_and_index(ctx, export, tmp_path):
    """A bulk file into an empty table is written without its keys and indexes (COPYed
    straight into the table on PostgreSQL): they are all back afterwards, and enforced."""
    before = keys(ctx)
    assert before["primary"]["constrained_columns"] == ["id"] and len(before["indexes"]) == 3
    repeated = [*export, dict(export[7], handler="Lặp")]
    with pytest.raises(ImportRefused) as refused:
        load(ctx, write(tmp_path / "repeated.csv", repeated))
    assert [(p.line, p.column) for p in refused.value.problems] == [(ROWS + 2, "dossier_id")]
    assert keys(ctx) == before and snapshot(ctx)[0] == 0
    assert load(ctx, write(tmp_path / "first.csv", export)).inserted == ROWS
    assert keys(ctx) == before
    row = dict(export[0], dossier_id="HS-KHONG-CO-CQ")
    with ctx.db.connect() as conn, pytest.raises(IntegrityError):
        conn.execute(
            text(
                "INSERT INTO dossier (id, procedure_code, agency_code, channel, received_at, "
                "digitized, e_result, legal_due, due, imported_at) SELECT :id, procedure_code, "
                "'KHONG-CO', channel, received_at, digitized, e_result, legal_due, due, "
                "imported_at FROM dossier WHERE id = :first"
            ),
            {"id": row["dossier_id"], "first": export[0]["dossier_id"]},
        )
        conn.commit()


@pytest.mark.parametrize("reader", ["arrow", "stdlib"])
def test_every_repeat_of_an_id_is_named_once(ctx, export, tmp_path, reader):
    """A repeat in the same chunk (the chunk's own check) and one in a later chunk (the
    database's): each line once, and the count says two."""
    later = ROWS - 5
    rows = list(export)
    for position in (5, later):
        rows[position] = dict(rows[position], dossier_id=rows[3]["dossier_id"])
    with pytest.raises(ImportRefused) as refused:
        load(ctx, write(tmp_path / "export.csv", rows), reader=reader)
    assert [(p.line, p.column) for p in refused.value.problems] == [
        (7, "dossier_id"),
        (later + 2, "dossier_id"),
    ]
    assert refused.value.total == 2 and "(2 lỗi)" in str(refused.value)
