"""Importing procedures and dossiers: all or nothing, every bad row by line and column,
upsert by id, one reschedule only (from the rules), the regime of the receipt date kept,
column mappings; on SQLite and PostgreSQL. A limit ends at 24:00 of its last day (Civil
Code Art. 148(6)), stored as 23:59:59."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from deadlines.datafile import DataFileError
from deadlines.export_columns import ColumnMapping
from deadlines.one_stop import RULES_FILE, OneStopRules
from flows.dossiers import dossier_alerts
from flows.engine import EngineContext
from models.db import session_scope
from models.dossier_import import ImportRefused, import_dossiers, import_procedures
from models.tables import Dossier, Notification, Procedure

SAMPLE = Path(__file__).resolve().parents[2] / "plans" / "sample-procedures.csv"
PORTAL_MAPPING = Path(__file__).resolve().parents[2] / "plans" / "columns-dvcqg.yaml"
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
        # 3 working days, received after hours on Friday 25/4/2025: due Mon 5/5 24:00.
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
    assert a1.legal_due == a1.due == T("2025-05-05 23:59:59")
    assert a2.legal_due == T("2025-05-15 23:59:59") and a2.paid_online is True
    assert a2.first_due == T("2025-05-12 23:59:59")  # counted from receipt: 6, 7, 8, 9, 12
    assert a3.legal_due == T("2025-05-08 23:59:59") and a3.due == T("2025-05-12 17:00")
    # 7/5 08:00 is before the due day 8/5: a timely apology.
    assert (a3.apology_timely, a3.state, a3.reschedules) == (True, "rescheduled", 1)
    assert (a1.regime, a2.state, a2.supplement_requests) == ("ND61", "completed", 1)
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
    assert dossier(ctx, "J1").legal_due == T("2025-05-05 23:59:59")


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
    with pytest.raises(ImportRefused, match=r"chỉ được hẹn lại 1 lần \(Nghị định 61/2018"):
        load(ctx, second)
    assert dossier(ctx, "C1").due == T("2025-05-12 17:00")


def test_the_sweep_reminds_and_escalates_dossiers(ctx, tmp_path):
    path = write(
        tmp_path,
        # Due Tue 6/5/2025 24:00 (1 working day from Mon 5/5): reminded on Mon 5/5.
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


# ----------------------------------------------------------- Decree 118 and its states

FULL_HEADER = HEADER + ",supplement_requests,closed_at,appointment_at"


def write_full(tmp_path, *rows: str, name="full.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([FULL_HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_an_apology_before_receipt_is_refused_naming_row_and_column(ctx, tmp_path):
    path = write_full(
        tmp_path,
        "E1,1.002835,SO-XD,online,2025-07-07T09:00:00,,,,,,1,1,,,,,",
        "E2,1.002835,SO-XD,online,2025-07-07T09:00:00,,,,2025-07-06T09:00:00,"
        "2025-07-20T17:00:00,1,1,,,,,",
    )
    with pytest.raises(ImportRefused) as refused:
        load(ctx, path)
    assert [str(p) for p in refused.value.problems] == [
        f"{path}, dòng 3, cột apology_at: xin lỗi trước khi tiếp nhận"
    ]
    assert total(ctx) == 0


def test_a_supplement_received_before_its_request_is_refused(ctx, tmp_path):
    path = write_full(
        tmp_path,
        "E3,1.002835,SO-XD,online,2025-07-07T09:00:00,,2025-07-09T10:00:00,"
        "2025-07-08T10:00:00,,,1,1,,,,,",
    )
    with pytest.raises(ImportRefused) as refused:
        load(ctx, path)
    assert [str(p) for p in refused.value.problems] == [
        f"{path}, dòng 2, cột supplement_received_at: nhận bổ sung trước khi yêu cầu"
    ]
    assert total(ctx) == 0


def test_an_unknown_column_in_a_mapping_file_imports_nothing(ctx, tmp_path):
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(
        "columns:\n  dossier_id: MaHoSo\n  ngay_tiep_nhan: NgayTiepNhan\n", encoding="utf-8"
    )
    with pytest.raises(DataFileError) as refused:
        ColumnMapping.load(mapping_file)
    assert str(refused.value).startswith(f"{mapping_file}, dòng 3: cột không biết 'ngay_tiep_nhan'")
    assert total(ctx) == 0


def test_states_closures_counts_and_appointments_are_stored(ctx, tmp_path):
    path = write_full(
        tmp_path,
        # Asked twice (accepted, flagged later); the restart counts from 7/7.
        "S1,1.001612,SO-TC,online,2025-07-01T09:00:00,2025-07-09T16:00:00,"
        "2025-07-03T10:00:00,2025-07-07T09:00:00,,,1,1,,Nguyễn Văn An,2,,",
        # Never completed by the citizen: closed on 1/8.
        "S2,1.002835,SO-XD,direct,2025-07-14T09:00:00,,2025-07-15T09:00:00,,,,1,1,,,,"
        "2025-08-01T10:00:00,",
        # Waiting for the citizen; the slip promised a day later than the law allows.
        "S3,1.002835,SO-XD,online,2025-07-09T10:00:00,,2025-07-10T10:00:00,,,,1,1,,,,,"
        "2025-07-17T17:00:00",
    )
    load(ctx, path)
    s1, s2, s3 = (dossier(ctx, i) for i in ("S1", "S2", "S3"))
    assert (s1.regime, s1.state, s1.supplement_requests) == ("ND118", "completed", 2)
    assert (s1.first_due, s1.legal_due) == (T("2025-07-04 23:59:59"), T("2025-07-10 23:59:59"))
    assert (s2.state, s2.closed_at) == ("closed", T("2025-08-01 10:00"))
    assert (s3.state, s3.appointment_at) == ("awaiting_supplement", T("2025-07-17 17:00"))
    assert s3.first_due == T("2025-07-16 23:59:59")  # 10, 11, 14, 15, 16 July
    # The portal's appointment: the slip's date (no wait added: none completed yet).
    assert s3.due_766 == T("2025-07-17 17:00")


def test_re_importing_never_recomputes_an_old_dossier_under_the_new_decree(ctx, tmp_path):
    row = "R1,1.002835,SO-XD,online,2025-06-30T09:00:00,,,,,,1,1,,,,,"
    load(ctx, write_full(tmp_path, row))
    before = dossier(ctx, "R1")
    assert (before.regime, before.legal_due) == ("ND61", T("2025-07-07 23:59:59"))
    done = "R1,1.002835,SO-XD,online,2025-06-30T09:00:00,2025-07-07T18:00:00,,,,,1,1,,,,,"
    report = import_dossiers(
        ctx.db,
        write_full(tmp_path, done, name="later.csv"),
        ctx.cal,
        ctx.one_stop,
        now=datetime(2025, 8, 1),
    )
    after = dossier(ctx, "R1")
    assert report.updated == 1
    assert (after.regime, after.legal_due, after.state) == (
        "ND61",
        T("2025-07-07 23:59:59"),
        "completed",
    )


def test_max_reschedules_comes_from_the_rules(ctx, tmp_path):
    first = write_full(
        tmp_path,
        "C2,1.002835,SO-XD,online,2025-07-07T09:00:00,,,,2025-07-10T10:00:00,"
        "2025-07-18T17:00:00,1,1,,,,,",
    )
    load(ctx, first)
    second = write_full(
        tmp_path,
        "C2,1.002835,SO-XD,online,2025-07-07T09:00:00,,,,2025-07-17T10:00:00,"
        "2025-07-25T17:00:00,1,1,,,,,",
        name="second.csv",
    )
    with pytest.raises(ImportRefused, match=r"chỉ được hẹn lại 1 lần \(Nghị định 118/2025"):
        load(ctx, second)
    text = RULES_FILE.read_text(encoding="utf-8").replace(
        "max_reschedules: 1", "max_reschedules: 2"
    )
    lenient = tmp_path / "one_stop.yaml"
    lenient.write_text(text, encoding="utf-8")
    rules = OneStopRules.load(lenient)
    import_dossiers(ctx.db, second, ctx.cal, rules, now=datetime(2025, 7, 20))
    c2 = dossier(ctx, "C2")
    assert (c2.reschedules, c2.due) == (2, T("2025-07-25 17:00"))


def test_the_portal_s_field_names_through_the_shipped_mapping(ctx, tmp_path):
    path = tmp_path / "dvcqg.jsonl"
    record = {
        "MaHoSo": "H42-250707-0001",
        "MaTTHC": "1.001612",
        "DonViXuLy": "SO-TC",
        "KenhThucHien": "2",
        "NgayTiepNhan": "20250707080000",
        "NgayHenTra": "20250710170000",
        "NgayKetThucXuLy": "20250717150000",
        "NguoiXuLy": "Nguyễn Văn An",
        "DanhSachHoSoBoSung": [
            {"NgayBoSung": "20250709160000", "NgayTiepNhanBoSung": "20250714090000"}
        ],
        "digitized": "1",
        "e_result": "1",
        "paid_online": "",
    }
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    portal = ColumnMapping.load(PORTAL_MAPPING)
    report = import_dossiers(ctx.db, path, ctx.cal, ctx.one_stop, columns=portal)
    assert report.inserted == 1
    d = dossier(ctx, "H42-250707-0001")
    assert (d.channel, d.handler, d.supplement_requests) == ("online", "Nguyễn Văn An", 1)
    assert d.legal_due == T("2025-07-17 23:59:59")  # restarted at 14/7: 15, 16, 17 July
    assert d.due_766 == T("2025-07-15 10:00")  # 10/7 17:00 + the 4 d 17 h the citizen took
    # A bad value is reported under the export's own column name.
    record["MaHoSo"], record["KenhThucHien"] = "H42-2", "9"
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(ImportRefused) as refused:
        import_dossiers(ctx.db, path, ctx.cal, ctx.one_stop, columns=portal)
    assert str(refused.value.problems[0]) == (
        f"{path}, dòng 1, cột KenhThucHien (channel): '9' không hợp lệ (chọn: online, direct, "
        "postal)"
    )


def test_a_csv_export_under_its_own_column_names(ctx, tmp_path):
    mapping_file = tmp_path / "mot-cua.yaml"
    mapping_file.write_text(
        "name: Phần mềm một cửa của tỉnh\n"
        "columns:\n"
        "  dossier_id: Mã hồ sơ\n"
        "  procedure_code: Mã TTHC\n"
        "  agency_code: Mã cơ quan\n"
        "  channel: Kênh\n"
        "  received_at: Ngày tiếp nhận\n"
        "  completed_at: Ngày hoàn thành\n"
        "  supplement_requested_at: Ngày yêu cầu bổ sung\n"
        "  supplement_received_at: Ngày nhận bổ sung\n"
        "  apology_at: Ngày xin lỗi\n"
        "  apology_new_due: Ngày hẹn lại\n"
        "  digitized: Số hóa\n"
        "  e_result: KQ điện tử\n"
        "  paid_online: TT trực tuyến\n"
        "  appointment_at: Ngày hẹn trả\n"
        "values:\n"
        "  channel: {Trực tuyến: online, Trực tiếp: direct, Bưu chính: postal}\n",
        encoding="utf-8",
    )
    mapping = ColumnMapping.load(mapping_file)
    header = (
        "Mã hồ sơ,Mã TTHC,Mã cơ quan,Kênh,Ngày tiếp nhận,Ngày hoàn thành,Ngày yêu cầu bổ sung,"
        "Ngày nhận bổ sung,Ngày xin lỗi,Ngày hẹn lại,Số hóa,KQ điện tử,TT trực tuyến,"
        "Ngày hẹn trả,Ghi chú"
    )
    path = tmp_path / "export.csv"
    path.write_text(
        f"{header}\n"
        "M1,1.002835,SO-XD,Trực tuyến,2025-07-07 09:00,,,,,,1,1,,2025-07-14 17:00,x\n"
        "\n"
        "M2,1.002835,SO-XD,Trực tiếp,2025-07-07 09:00,2025-07-10 09:00,,,,,0,1\n",
        encoding="utf-8",
    )
    report = import_dossiers(ctx.db, path, ctx.cal, ctx.one_stop, columns=mapping)
    assert (report.rows, report.inserted) == (2, 2)
    m1, m2 = dossier(ctx, "M1"), dossier(ctx, "M2")
    assert (m1.channel, m1.appointment_at, m1.handler) == ("online", T("2025-07-14 17:00"), None)
    assert (m2.channel, m2.paid_online, m2.appointment_at) == ("direct", None, None)
    # A mapped column missing from the file: named with the mapping's line.
    short = tmp_path / "short.csv"
    short.write_text(header.replace("Ngày tiếp nhận", "Ngay TN") + "\n", encoding="utf-8")
    with pytest.raises(ImportRefused) as refused:
        import_dossiers(ctx.db, short, ctx.cal, ctx.one_stop, columns=mapping)
    assert str(refused.value.problems[0]) == (
        f"{short}, dòng 1: thiếu cột 'Ngày tiếp nhận' (cột received_at của dunghan theo tệp "
        f"ánh xạ {mapping_file}, dòng 7)"
    )
    # The portal's supplement list needs JSON lines.
    portal = ColumnMapping.load(PORTAL_MAPPING)
    with pytest.raises(ImportRefused, match="chỉ đọc được từ tệp JSON lines"):
        import_dossiers(ctx.db, path, ctx.cal, ctx.one_stop, columns=portal)
