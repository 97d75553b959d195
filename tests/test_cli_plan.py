"""`dunghan agencies` and `dunghan plan check` as a user runs them: the console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DUNGHAN = str(Path(sys.executable).with_name("dunghan"))  # the console script of this venv
PLANS = Path(__file__).parents[1] / "plans"
SHIPPED_PLAN = PLANS / "nghe-an-2025.yaml"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([DUNGHAN, *args], capture_output=True, text=True, timeout=60)


# --------------------------------------------------------------------------- agencies


def test_agencies_json_lists_every_agency_with_its_dates_and_successor():
    result = run("agencies", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert isinstance(rows, list) and len(rows) > 150
    keys = {"code", "name", "kind", "groups", "active_from", "active_to", "successor"}
    assert all(keys <= row.keys() for row in rows)
    by_code = {row["code"]: row for row in rows}
    assert by_code["SO-TTTT"]["successor"] == "SO-KHCN"
    assert by_code["SO-TTTT"]["active_to"] == "2025-02-28"
    assert by_code["SO-TTTT"]["successor_from"] == "2025-03-01"
    assert sum(row["kind"] in ("commune", "ward") for row in rows) == 130


def test_agencies_filtered_by_date_and_kind():
    result = run("agencies", "--json", "--on", "2025-03-10", "--kind", "department")
    assert result.returncode == 0, result.stderr
    found = {row["code"] for row in json.loads(result.stdout)}
    assert "SO-KHCN" in found and "SO-NNMT" in found
    assert "SO-TTTT" not in found and "VP-UBND" not in found


def test_agencies_table_is_readable_vietnamese():
    result = run("agencies", "--on", "2025-02-01", "--kind", "department")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Danh bạ cơ quan") and "hoạt động ngày 01/02/2025" in lines[0]
    assert lines[1].split()[:3] == ["Mã", "Tên", "Loại"]
    tttt = next(line for line in lines if line.startswith("SO-TTTT "))
    assert "Sở Thông tin và Truyền thông tỉnh Nghệ An" in tttt
    assert "SO-KHCN (từ 01/03/2025)" in tttt


def test_agencies_with_a_bad_date_says_so_without_traceback():
    result = run("agencies", "--on", "2025-13-01")
    assert result.returncode == 2
    assert "Ngày --on không hợp lệ: '2025-13-01'" in result.stderr
    assert "Traceback" not in result.stderr


def test_agencies_with_a_broken_registry_lists_every_problem(tmp_path):
    registry = tmp_path / "agencies.yaml"
    registry.write_text(
        "agencies:\n"
        "  - {code: SO-A, name: A, kind: department, email: sai, source: t}\n"
        "  - {code: SO-B, name: B, kind: sở, email: b@example.gov.vn, source: t}\n",
        encoding="utf-8",
    )
    result = run("agencies", "--registry", str(registry))
    assert result.returncode == 1
    assert f"{registry}, dòng 2: cơ quan SO-A: địa chỉ email không hợp lệ 'sai'" in result.stderr
    assert f"{registry}, dòng 3: cơ quan SO-B: loại 'sở' không hợp lệ" in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------- plan check


def test_plan_check_prints_each_obligation_with_its_rule_and_due_dates():
    result = run("plan", "check", str(SHIPPED_PLAN))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Quyết định số 384/QĐ-UBND ngày 24/02/2025" in out
    assert "43 nhiệm vụ" in out
    monthly = next(line for line in out.splitlines() if line.startswith("X.2 "))
    assert "Báo cáo công tác cải cách TTHC hằng tháng" in monthly
    assert "recurring" in monthly and "22/01/2025" in monthly and "22/12/2025" in monthly
    first = next(line for line in out.splitlines() if line.startswith("I.4 "))
    assert "fixed" in first and "04/03/2025" in first
    ongoing = next(line for line in out.splitlines() if line.startswith("II.6 "))
    assert "continuous" in ongoing


def test_plan_check_of_a_bad_file_lists_all_errors_on_stderr(tmp_path):
    bad = tmp_path / "ke-hoach.yaml"
    text = SHIPPED_PLAN.read_text(encoding="utf-8")
    text = text.replace("    timing: Quý II/2025\n", "    timing: Quý V/2025\n", 1)
    text = text.replace("    lead: [SO-TTTT]\n", "    lead: [SO-THONG-TIN]\n", 1)
    bad.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    timing_line = lines.index("    timing: Quý V/2025") + 1
    lead_line = lines.index("    lead: [SO-THONG-TIN]") + 1

    result = run("plan", "check", str(bad))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Tệp kế hoạch không hợp lệ (2 lỗi)" in result.stderr
    assert f"{bad}, dòng {timing_line}: nhiệm vụ V.5: không hiểu thời hạn" in result.stderr
    assert f"{bad}, dòng {lead_line}: nhiệm vụ V.6: mã cơ quan hoặc nhóm" in result.stderr
    assert "Traceback" not in result.stderr


def test_plan_check_of_a_missing_file(tmp_path):
    result = run("plan", "check", str(tmp_path / "khong-co.yaml"))
    assert result.returncode == 1
    assert "không tìm thấy tệp" in result.stderr
    assert "Traceback" not in result.stderr


SEED_DECISION = PLANS / "sources" / "qd-384-2025-nghe-an.txt"


def test_plan_draft_writes_the_draft_and_lists_what_to_fix_by_row(tmp_path):
    out = tmp_path / "plan.yaml"
    result = run("plan", "draft", str(SEED_DECISION), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "384/QĐ-UBND (Nghệ An, năm 2025)" in result.stdout
    assert "43 nhiệm vụ (39 ở phụ lục, 4 ở thân kế hoạch)" in result.stdout
    assert "1 chỗ cần sửa" in result.stdout
    assert "B.IV.1.d  timing:" in result.stdout
    assert f"dunghan plan check {out}" in result.stdout
    assert out.read_text(encoding="utf-8").count("  - number:") == 43
    # plan check refuses the draft until its problems are dealt with
    check = run("plan", "check", str(out))
    assert check.returncode == 1
    assert "bản nháp còn chỗ chưa sửa ở B.IV.1.d" in check.stderr
    assert "Traceback" not in check.stderr


def test_plan_draft_does_not_overwrite_without_force(tmp_path):
    out = tmp_path / "plan.yaml"
    out.write_text("đã sửa tay\n", encoding="utf-8")
    refused = run("plan", "draft", str(SEED_DECISION), "-o", str(out))
    assert refused.returncode == 1
    assert "--force" in refused.stderr
    assert out.read_text(encoding="utf-8") == "đã sửa tay\n"
    forced = run("plan", "draft", str(SEED_DECISION), "-o", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert out.read_text(encoding="utf-8").startswith("# BẢN NHÁP")


def test_plan_draft_of_a_bad_decision_writes_nothing(tmp_path):
    bad = tmp_path / "qd.txt"
    bad.write_text("Số: 1/QĐ-UBND\nkhông có phụ lục\n", encoding="utf-8")
    out = tmp_path / "plan.yaml"
    result = run("plan", "draft", str(bad), "-o", str(out))
    assert result.returncode == 1
    assert "Không soạn được bản nháp" in result.stderr and "phụ lục" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_plan_draft_without_output_prints_the_yaml(tmp_path):
    result = run("plan", "draft", str(SEED_DECISION))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# BẢN NHÁP")
    assert "1 chỗ cần sửa" in result.stderr
