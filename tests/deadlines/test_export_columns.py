"""Column-mapping files: another system's column names and codes to dunghan's, refused
with the line and the column when a name is unknown."""

from __future__ import annotations

from pathlib import Path

import pytest

from deadlines.datafile import DataFileError
from deadlines.export_columns import ColumnMapping

DVCQG = Path(__file__).resolve().parents[2] / "plans" / "columns-dvcqg.yaml"


def mapping(tmp_path, text: str) -> ColumnMapping:
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return ColumnMapping.load(path)


def test_the_shipped_portal_mapping_cites_and_marks_what_is_unconfirmed():
    portal = ColumnMapping.load(DVCQG)
    assert portal.source_name("dossier_id") == "MaHoSo"
    assert portal.source_name("received_at") == "NgayTiepNhan"
    assert portal.source_name("appointment_at") == "NgayHenTra"
    assert portal.source_name("digitized") == "digitized"  # not in the sync
    assert portal.time_format == "%Y%m%d%H%M%S"
    assert portal.columns["dossier_id"].confirmed
    assert not portal.columns["agency_code"].confirmed
    assert "OpenCPS" in portal.columns["received_at"].source
    assert portal.supplements.list_name == "DanhSachHoSoBoSung"


def test_a_record_is_translated_with_its_codes_and_its_supplement_list():
    portal = ColumnMapping.load(DVCQG)
    record = {
        "MaHoSo": "000.00.01.H42-250701-0001",
        "MaTTHC": "1.001612",
        "DonViXuLy": "SO-TC",
        "KenhThucHien": 2,
        "NgayTiepNhan": "20250701090000",
        "NgayHenTra": "20250704170000",
        "NgayKetThucXuLy": None,
        "DanhSachHoSoBoSung": [
            {"NgayBoSung": "20250703100000", "NgayTiepNhanBoSung": "20250707090000"},
            {"NgayBoSung": "20250702100000", "NgayTiepNhanBoSung": "20250702150000"},
        ],
        "digitized": 1,
    }
    row = portal.translate(record)
    assert row["dossier_id"] == "000.00.01.H42-250701-0001"
    assert row["channel"] == "online"
    assert row["completed_at"] == "" and row["digitized"] == "1"
    # The last request (3/7) is the one the legal clock restarts after; two requests.
    assert (
        row["supplement_requested_at"],
        row["supplement_received_at"],
        row["supplement_requests"],
    ) == ("20250703100000", "20250707090000", "2")


def test_an_unknown_column_is_refused_with_its_line(tmp_path):
    with pytest.raises(DataFileError) as refused:
        mapping(
            tmp_path,
            "columns:\n  dossier_id: MaHoSo\n  recieved_at: NgayTiepNhan\n"
            "  channel: MaHoSo\nvalues:\n  channel: {'1': fax}\ntime_format: 3\n",
        )
    message = str(refused.value)
    assert f"{tmp_path / 'mapping.yaml'}, dòng 3: cột không biết 'recieved_at'" in message
    assert "dòng 4: cột tệp 'MaHoSo' đã được dùng cho 'dossier_id'" in message
    assert "mã '1' dịch thành 'fax'" in message
    assert "time_format 3 không đọc lại được ngày giờ" in message


def test_missing_source_columns_are_named_with_the_mapping_line(tmp_path):
    simple = mapping(tmp_path, "columns:\n  received_at: NgayTiepNhan\n  handler: CanBo\n")
    header = ["dossier_id", "procedure_code", "agency_code", "channel", "completed_at"]
    header += ["supplement_requested_at", "supplement_received_at", "apology_at"]
    header += ["apology_new_due", "digitized", "e_result", "paid_online"]
    missing = simple.missing_columns(header, ("received_at", "dossier_id"))
    assert missing == [
        f"thiếu cột 'NgayTiepNhan' (cột received_at của dunghan theo tệp ánh xạ "
        f"{tmp_path / 'mapping.yaml'}, dòng 2)",
        f"thiếu cột 'CanBo' (cột handler của dunghan theo tệp ánh xạ "
        f"{tmp_path / 'mapping.yaml'}, dòng 3)",
    ]
