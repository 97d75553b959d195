"""`dunghan agencies` and `dunghan plan check` as a user runs them: the console script."""

from __future__ import annotations

import json
import re
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
    # The plan took effect on 24/2/2025: March's report is the first one owed.
    assert "recurring" in monthly and "21/03/2025" in monthly and "22/12/2025" in monthly
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


def test_plan_check_lists_no_date_before_the_plan_took_effect():
    result = run("plan", "check", "--json", str(SHIPPED_PLAN))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["effective"] == "2025-02-24"
    dates = [d for row in report["obligations"] for d in row["dates"]]
    assert dates and min(dates) >= "2025-02-24"
    text = run("plan", "check", str(SHIPPED_PLAN)).stdout
    found = re.findall(r"\b(\d{2})/(\d{2})/2025\b", text)
    early = [f"{d}/{m}" for d, m in found if (int(m), int(d)) < (2, 24)]
    assert early == [], early


def test_plan_check_shows_who_leads_before_and_after_the_district_level_ends():
    out = run("plan", "check", str(SHIPPED_PLAN)).stdout
    x2 = block_of(out, "X.2")
    assert "Chủ trì từ 24/02/2025: Các Sở, ban, ngành cấp tỉnh (20); UBND cấp huyện (20)" in x2
    assert "Chủ trì từ 01/03/2025: Các Sở, ban, ngành cấp tỉnh (14); UBND cấp huyện (20)" in x2
    assert (
        "Chủ trì từ 01/07/2025: Các Sở, ban, ngành cấp tỉnh (14); UBND cấp huyện → UBND cấp xã "
        "(130)" in x2
    )
    assert "Chưa xác nhận — kế thừa nhóm GRP-UBND-HUYEN → GRP-UBND-XA: successors" in x2
    # A function's move shows where the coordinators' share went.
    vii2 = block_of(out, "VII.2")
    assert (
        "Phối hợp từ 01/03/2025: Sở Nội vụ tỉnh Nghệ An; Sở Thông tin và Truyền thông tỉnh "
        "Nghệ An → Sở Văn hóa, Thể thao và Du lịch tỉnh Nghệ An" in vii2
    )
    # The duty written twice, and the rows still on the last-working-day default.
    assert "Cùng một nhiệm vụ với V.7: không tạo việc riêng." in block_of(out, "B.III.2.b.4")
    tail = out[out.index("Nhiệm vụ còn dùng mặc định") :]
    assert "  V.7 (hằng tháng)" in tail and "  X.1 (hằng quý)" in tail
    assert "X.2" not in tail  # its own phrase names its day
    assert "Số liệu kỳ quý: từ ngày 15 tháng trước kỳ đến ngày 14 tháng cuối kỳ" in block_of(
        out, "X.1"
    )


def test_plan_check_on_a_day_lists_who_owes_each_obligation():
    report = json.loads(
        run("plan", "check", "--json", "--on", "2025-08-01", str(SHIPPED_PLAN)).stdout
    )
    rows = {row["number"]: row for row in report["obligations"]}
    owners = rows["X.2"]["owners_on"]
    assert sum(code.startswith("XA-") for code in owners) == 130
    assert not any(code.startswith(("HUYEN-", "TP-", "TX-")) for code in owners)
    assert "SO-KHCN" in owners and "SO-TTTT" not in owners
    assert rows["V.6"]["owners_on"] == ["SO-KHCN"]
    first = rows["X.2"]["owners"]
    assert [change["from"] for change in first] == ["2025-02-24", "2025-03-01", "2025-07-01"]


def test_a_regimes_sending_day_moves_the_quarterly_report(tmp_path):
    # Once the province's reporting regime is known, "Hàng quý" means its sending day.
    text = SHIPPED_PLAN.read_text(encoding="utf-8")
    marker = "    source: Nghị định 09/2019/NĐ-CP ngày 24/01/2019 của Chính phủ, Điều 12 khoản 2\n"
    confirmed = text.replace(
        marker, marker + "    send_by: 18\n    send_source: Công văn 667/UBND-KSTT (ví dụ)\n"
    )
    plan = tmp_path / "ke-hoach.yaml"
    plan.write_text(confirmed, encoding="utf-8")
    report = json.loads(run("plan", "check", "--json", str(plan)).stdout)
    x1 = next(row for row in report["obligations"] if row["number"] == "X.1")
    assert x1["dates"] == ["2025-03-18", "2025-06-18", "2025-09-18", "2025-12-18"]
    assert x1["default_due"] == [] and "X.1" not in report["default_due"]
    # A sending day on or before the cut-off is refused, with the rule's source.
    early = plan.read_text(encoding="utf-8").replace("send_by: 18", "send_by: 14")
    plan.write_text(early, encoding="utf-8")
    result = run("plan", "check", str(plan))
    assert result.returncode == 1
    assert "ngày gửi 14 phải sau ngày chốt số liệu 14 (Nghị định 09/2019/NĐ-CP, Điều 8" in (
        result.stderr
    )


def test_same_as_must_name_the_same_duty(tmp_path):
    text = SHIPPED_PLAN.read_text(encoding="utf-8").replace("same_as: V.7", "same_as: X.2")
    plan = tmp_path / "ke-hoach.yaml"
    plan.write_text(text, encoding="utf-8")
    line = text.splitlines().index("    same_as: X.2") + 1
    result = run("plan", "check", str(plan))
    assert result.returncode == 1
    assert f"{plan}, dòng {line}: nhiệm vụ B.III.2.b.4: 'same_as' X.2 nhưng thời hạn khác" in (
        result.stderr
    )
    assert "cơ quan chủ trì khác (VP-UBND ≠ GRP-SO-NGANH, GRP-UBND-HUYEN)" in result.stderr


def test_agencies_on_a_day_say_what_each_one_leads():
    rows = json.loads(run("agencies", "--json", "--on", "2025-08-01").stdout)
    by_code = {row["code"]: row for row in rows}
    assert "HUYEN-NAM-DAN" not in by_code
    # A commune leads what the district level led (the reports, the self-inspection…).
    assert {"X.1", "X.2", "IX.2", "III.1"} <= set(by_code["XA-17935"]["obligations"])
    assert "V.6" in by_code["SO-KHCN"]["obligations"]
    assert "V.7" in by_code["VP-UBND"]["obligations"]
    assert "B.III.2.b.4" not in by_code["VP-UBND"]["obligations"]
    table = run("agencies", "--on", "2025-08-01", "--kind", "commune").stdout
    line = next(row for row in table.splitlines() if row.startswith("XA-17935 "))
    assert "IX.2, X.1, X.2" in line
    every = {row["code"]: row for row in json.loads(run("agencies", "--json").stdout)}
    assert len(every["HUYEN-NAM-DAN"]["successors"]) == 5
    assert every["HUYEN-NAM-DAN"]["successor"] is None
    assert every["SO-LDTBXH"]["functions"][0]["successors"] == ["SO-YT"]


def block_of(out: str, number: str) -> str:
    """The lines `plan check` prints for one obligation."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{number} "))
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i] and not lines[i].startswith(" ")),
        len(lines),
    )
    return "\n".join(lines[start:end])


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
