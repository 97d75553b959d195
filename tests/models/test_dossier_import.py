"""Importing procedures and dossiers: all or nothing, every bad row by line and column,
upsert by id, one apology only; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flows.dossiers import dossier_alerts
from flows.engine import EngineContext
from models.db import session_scope
from models.dossier_import import ImportRefused, import_dossiers, import_procedures
from models.tables import Dossier, Notification, Procedure

SAMPLE = Path(__file__).resolve().parents[2] / "plans" / "sample-procedures.csv"
HEADER = (
    "dossier_id,procedure_code,agency_code,channel,received_at,completed_at,"
    "supplement_requested_at,supplement_received_at,apology_at,apology_new_due,"
    "digitized,e_result,paid_online,handler"
)
T = datetime.fromisoformat


@pytest.fixture
def ctx(database_url):
    context = EngineContext.open(database_url)
    import_procedures(context.db, SAMPLE)
    yield context
    context.db.dispose()


def write(tmp_path, *rows: str, name="export.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def load(ctx, path):
    return import_dossiers(ctx.db, path, ctx.cal, ctx.one_stop, now=datetime(2025, 6, 1))


def dossier(ctx, dossier_id) -> Dossier:
    with session_scope(ctx.db) as session:
        return session.get(Dossier, dossier_id)


def total(ctx) -> int:
    with session_scope(ctx.db) as session:
        return session.scalar(select(func.count()).select_from(Dossier))


def test_procedures_are_loaded_with_their_limits(ctx):
    with session_scope(ctx.db) as session:
        row = session.get(Procedure, "2.000815")
    assert (row.limit_value, row.limit_unit, row.level) == (8, "working_hours", "commune")


def test_import_computes_legal_due_dates_and_upserts(ctx, tmp_path):
    path = write(
        tmp_path,
        # 3 working days, received after hours on Friday 25/4/2025: due Mon 5/5 17:00.
        "A1,2.000720,XA-16681,online,2025-04-25T18:00:00,,,,,,1,1,,Nguyễn Văn An",
        # A supplement restarts the limit: complete on Thu 8/5 16:00, 5 days -> 15/5.
        "A2,1.002835,SO-XD,direct,2025-05-05T09:00:00,2025-05-14T10:00:00,"
        "2025-05-06T08:00:00,2025-05-08T16:00:00,,,1,0,1,",
        # An apology gives a new appointment; the legal due date stays.
        "A3,2.000720,XA-16681,postal,2025-05-05T09:00:00+07:00,,,,2025-05-07T08:00:00,"
        "2025-05-12T17:00:00,0,0,0,Trần Thị Bình",
    )
    report = load(ctx, path)
    assert (report.rows, report.inserted, report.updated) == (3, 3, 0)
    a1, a2, a3 = (dossier(ctx, i) for i in ("A1", "A2", "A3"))
    assert a1.legal_due == a1.due == T("2025-05-05 17:00")
    assert a2.legal_due == T("2025-05-15 17:00") and a2.paid_online is True
    assert a3.legal_due == T("2025-05-08 17:00") and a3.due == T("2025-05-12 17:00")
    assert a1.paid_online is None and a1.handler == "Nguyễn Văn An"
    # The updated export: A1 is now completed. Re-import updates in place.
    again = write(
        tmp_path,
        "A1,2.000720,XA-16681,online,2025-04-25T18:00:00,2025-05-02T09:00:00,,,,,1,1,,",
        name="export2.csv",
    )
    report = load(ctx, again)
    assert (report.inserted, report.updated) == (0, 1)
    assert dossier(ctx, "A1").completed_at == T("2025-05-02 09:00") and total(ctx) == 3


def test_json_lines_are_accepted(ctx, tmp_path):
    path = tmp_path / "export.jsonl"
    record = {
        "dossier_id": "J1",
        "procedure_code": "1.001193",
        "agency_code": "XA-16681",
        "channel": "online",
        "received_at": "2025-04-29T10:00:00",
        "completed_at": None,
        "digitized": 1,
        "e_result": 1,
        "paid_online": "",
    }
    path.write_text(json.dumps(record) + "\n\n", encoding="utf-8")
    assert load(ctx, path).inserted == 1
    assert dossier(ctx, "J1").legal_due == T("2025-05-05 17:00")


def test_a_bad_file_is_refused_whole_with_every_bad_row(ctx, tmp_path):
    path = write(
        tmp_path,
        "B1,2.000720,XA-16681,online,2025-04-25T09:00:00,,,,,,1,1,,",  # fine
        "B2,9.999999,XA-16681,online,2025-13-01T09:00:00,,,,,,1,1,,",  # 2 problems
        "B3,2.000720,NO-SUCH,fax,2025-04-25T09:00:00,2025-04-24T09:00:00,,,,,2,1,,",
        "B1,2.000720,XA-16681,online,2025-04-25T09:00:00,,,,,,1,1,,",  # duplicate id
        "B4,2.000720,XA-16681,online,2025-04-25T09:00:00,,,2025-04-26T09:00:00,,,1,1,,",
        "B5,2.000720,XA-16681,online,2025-04-25T09:00:00,,,,2025-04-28T09:00:00,,1,1,,",
    )
    with pytest.raises(ImportRefused) as refused:
        load(ctx, path)
    found = {(p.line, p.column) for p in refused.value.problems}
    assert {(3, "procedure_code"), (3, "received_at")} <= found
    assert {(4, "agency_code"), (4, "channel"), (4, "completed_at"), (4, "digitized")} <= found
    assert (5, "dossier_id") in found
    assert (6, "supplement_received_at") in found
    assert (7, "apology_new_due") in found
    assert (2, "") not in found and not any(p.line == 2 for p in refused.value.problems)
    message = str(refused.value)
    assert f"{path}, dòng 4, cột channel" in message and "không ghi dữ liệu nào" in message
    assert total(ctx) == 0  # nothing written, not even the good row


def test_missing_columns_and_files(ctx, tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("dossier_id,procedure_code\nX,1.001193\n", encoding="utf-8")
    with pytest.raises(ImportRefused, match="thiếu cột"):
        load(ctx, path)
    with pytest.raises(ImportRefused, match="không tìm thấy"):
        load(ctx, tmp_path / "nope.csv")


def test_a_second_apology_is_refused(ctx, tmp_path):
    first = write(
        tmp_path,
        "C1,2.000720,XA-16681,online,2025-05-05T09:00:00,,,,2025-05-07T08:00:00,"
        "2025-05-12T17:00:00,1,1,,",
    )
    load(ctx, first)
    same = write(
        tmp_path,
        "C1,2.000720,XA-16681,online,2025-05-05T09:00:00,2025-05-12T10:00:00,,,"
        "2025-05-07T08:00:00,2025-05-12T17:00:00,1,1,,",
        name="same.csv",
    )
    assert load(ctx, same).updated == 1  # the same apology again is fine
    second = write(
        tmp_path,
        "C1,2.000720,XA-16681,online,2025-05-05T09:00:00,,,,2025-05-12T08:00:00,"
        "2025-05-20T17:00:00,1,1,,",
        name="second.csv",
    )
    with pytest.raises(ImportRefused, match="chỉ được hẹn lại một lần"):
        load(ctx, second)
    assert dossier(ctx, "C1").due == T("2025-05-12 17:00")


def test_the_sweep_reminds_and_escalates_dossiers(ctx, tmp_path):
    path = write(
        tmp_path,
        # Due Tue 6/5/2025 17:00 (1 working day from Mon 5/5): reminded on Mon 5/5.
        "D1,1.001193,XA-16681,online,2025-05-05T08:00:00,,,,,,1,1,,",
        # Due the same day but apologised for: reminded (new date), not at risk.
        "D2,1.001193,XA-16681,online,2025-05-05T08:00:00,,,,2025-05-05T09:00:00,"
        "2025-05-06T17:00:00,1,1,,",
        # Already late without an apology (due Fri 2/5 -> received 29/4).
        "D3,1.001193,XA-16681,online,2025-04-28T08:00:00,,,,,,1,1,,",
    )
    load(ctx, path)
    with session_scope(ctx.db) as session:
        alerts = dossier_alerts(ctx, session, date(2025, 5, 5))
    assert alerts.reminders == {"XA-16681": 2}
    assert alerts.at_risk == {"XA-16681": 1}
    assert alerts.late_without_apology == {"XA-16681": 1}
    with session_scope(ctx.db) as session:
        sent = session.scalars(select(Notification)).all()
        again = dossier_alerts(ctx, session, date(2025, 5, 5))
    kinds = sorted(n.kind for n in sent)
    assert kinds == ["dossier_at_risk", "dossier_reminder"]
    assert again.notifications == 0  # a rerun queues nothing twice
    at_risk = next(n for n in sent if n.kind == "dossier_at_risk")
    assert "D1" in at_risk.body_text and "xin lỗi" in at_risk.body_text
