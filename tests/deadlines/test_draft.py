"""Drafting a plan from its decision: the seed decision reproduces the shipped plan's rows, a
.docx decision built here is read cell by cell, and every unsure place is listed by row."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
import yaml
from docx import Document
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deadlines.agencies import load_registry
from deadlines.agency_match import load_other_names
from deadlines.datafile import DataFileError
from deadlines.decision import Decision, DecisionError, read_decision
from deadlines.draft import draft_plan, render_draft
from deadlines.plan import load_plan
from plans import PLANS_DIR

SEED = PLANS_DIR / "sources" / "qd-384-2025-nghe-an.txt"


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def names(registry):
    return load_other_names(registry=registry)


@pytest.fixture(scope="module")
def seed_draft(registry, names):
    return draft_plan(read_decision(SEED), registry, names)


def without_problems(text: str) -> str:
    """The draft as an admin leaves it once every listed problem is dealt with."""
    return re.sub(r"(?ms)^draft_problems:\n.*?^\n", "", text)


# ------------------------------------------------------------------------------ the seed


def test_the_seed_decision_is_shipped_with_the_project():
    text = SEED.read_text(encoding="utf-8")
    assert text.startswith(" Số: 384/QĐ-UBND")
    assert "Trước ngày 23 hàng tháng" in text


def test_drafting_the_seed_reproduces_the_shipped_appendix_rows(seed_draft):
    shipped = [o for o in load_plan().obligations if o.part == "appendix"]
    drafted = {o.number: o for o in seed_draft.obligations if o.part == "appendix"}
    assert sorted(drafted) == sorted(o.number for o in shipped)
    for o in shipped:
        got = drafted[o.number]
        assert got.content == o.content, o.number
        assert got.output == o.output, o.number
        assert got.lead == list(o.lead), o.number
        assert got.lead_text == o.lead_text, o.number
        assert got.coordinating == list(o.coordinating), o.number
        assert got.coordinating_text == o.coordinating_text, o.number
        assert got.timing == o.timing, o.number
        assert got.rule == o.rule.to_dict(), o.number
        assert (got.row or got.number) == o.row, o.number
        assert got.section == o.section, o.number
        assert got.source == o.source, o.number


def test_drafting_the_seed_reads_the_header_and_the_sections(seed_draft):
    shipped = load_plan()
    meta = seed_draft.meta
    assert meta["decision"] == shipped.meta.decision == "384/QĐ-UBND"
    assert meta["signed"] == shipped.meta.signed == date(2025, 2, 24)
    assert meta["effective"] == shipped.meta.effective  # "kể từ ngày ký ban hành"
    assert meta["issuer"] == shipped.meta.issuer
    assert meta["title"] == " ".join(shipped.meta.title.split())
    assert (meta["year"], meta["province"]) == (2025, "Nghệ An")
    assert meta["signer"] == "Bùi Thanh An (KT. Chủ tịch, Phó Chủ tịch)"
    assert meta["notes"] == [" ".join(n.split()) for n in shipped.meta.notes]
    appendix = [(s["number"], s["title"]) for s in seed_draft.sections if s["part"] == "appendix"]
    assert appendix == [
        (s.number, " ".join(s.title.split())) for s in shipped.sections if s.part == "appendix"
    ]


def test_drafting_the_seed_finds_the_timed_duties_of_the_body(seed_draft):
    shipped = {o.number: o for o in load_plan().obligations if o.part == "body"}
    drafted = {o.number: o for o in seed_draft.obligations if o.part == "body"}
    assert sorted(drafted) == sorted(shipped)
    for number in ("B.III.1.a.1", "B.III.2.b.2", "B.III.2.b.4"):
        got, want = drafted[number], shipped[number]
        assert (got.content, got.lead, got.timing) == (
            " ".join(want.content.split()),
            list(want.lead),
            want.timing,
        ), number
    # "Định kỳ" names no period: the clause naming the regulations is taken, and listed.
    periodic = drafted["B.IV.1.d"]
    assert periodic.lead == list(shipped["B.IV.1.d"].lead)
    assert periodic.timing.startswith(shipped["B.IV.1.d"].timing)
    assert periodic.rule["kind"] == "reference"


def test_the_seed_draft_lists_only_what_it_is_unsure_of(seed_draft):
    assert [(p.row, p.field) for p in seed_draft.problems] == [("B.IV.1.d", "timing")]
    assert any("từ 4 sang 6" in note for note in seed_draft.notes)  # the source has no II.5


def test_the_rendered_draft_is_refused_until_fixed_then_loads_as_written(seed_draft, tmp_path):
    text = render_draft(seed_draft)
    path = tmp_path / "draft.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataFileError) as err:
        load_plan(path)
    assert "bản nháp còn chỗ chưa sửa ở B.IV.1.d" in str(err.value)
    assert len(err.value.problems) == 1

    path.write_text(without_problems(text), encoding="utf-8")
    plan = load_plan(path)
    assert [o.number for o in plan.obligations] == [o.number for o in seed_draft.obligations]
    for o, drafted in zip(plan.obligations, seed_draft.obligations, strict=True):
        assert (o.content, o.timing, list(o.lead)) == (
            drafted.content,
            drafted.timing,
            drafted.lead,
        )
        assert len(o.title) <= 60
    assert plan.meta.signed == date(2025, 2, 24)
    # Every match is explained next to the codes, with its confidence.
    assert "# chủ trì: «Văn phòng UBND tỉnh» → VP-UBND (tên trong danh bạ, độ tin cậy 1.00)" in text


# ------------------------------------------------------------------- unsure places, by row


def seed_with(*replacements: tuple[str, str]) -> str:
    text = SEED.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def test_an_unknown_agency_a_guess_and_an_unknown_phrase_are_listed_by_row(
    registry, names, tmp_path
):
    decision = tmp_path / "qd.txt"
    i3 = "\n- Các Sở, ban, ngành cấp tỉnh;\n- UBND cấp huyện.\nTháng 02/2025\n4"
    decision.write_text(
        seed_with(
            # I.3: an agency the registry does not have
            ("Văn phòng UBND tỉnh" + i3, "Hội Nông dân tỉnh" + i3),
            # IV.3: a name that is only close to a group's
            ("Sở Tư pháp\nCơ quan được", "Các sở liên quan\nCơ quan được"),
            # X.2: a timing no grammar reads
            ("Trước ngày 23 hàng tháng", "Hàng tuần, vào thứ Sáu"),
        ),
        encoding="utf-8",
    )
    result = draft_plan(read_decision(decision), registry, names)
    problems = {(p.row, p.field): p for p in result.problems}
    assert set(problems) == {
        ("I.3", "lead"),
        ("IV.3", "lead"),
        ("X.2", "timing"),
        ("B.IV.1.d", "timing"),
    }
    assert "Hội Nông dân tỉnh" in problems[("I.3", "lead")].problem
    assert "GRP-LIEN-QUAN" in problems[("IV.3", "lead")].problem
    assert "độ tin cậy" in problems[("IV.3", "lead")].problem
    assert (
        'Không hiểu cụm thời hạn: "Hàng tuần, vào thứ Sáu"' in problems[("X.2", "timing")].problem
    )
    rows = {o.number: o for o in result.obligations}
    assert rows["I.3"].lead == ["?Hội Nông dân tỉnh"]
    assert rows["IV.3"].lead == ["GRP-LIEN-QUAN"]
    assert rows["X.2"].rule is None and rows["X.2"].timing == "Hàng tuần, vào thứ Sáu"

    # Deleting the listed problems without fixing the rows is not enough.
    path = tmp_path / "draft.yaml"
    path.write_text(without_problems(render_draft(result)), encoding="utf-8")
    with pytest.raises(DataFileError) as err:
        load_plan(path)
    message = str(err.value)
    assert "'?Hội Nông dân tỉnh'" in message
    assert "Hàng tuần, vào thứ Sáu" in message


def test_a_row_whose_cells_cannot_be_told_apart_is_listed(registry, names, tmp_path):
    # Row I.1 with two free-text bullets where content and output had one line each, and
    # nothing (agency, timing, ";") saying where one cell ends.
    decision = tmp_path / "qd.txt"
    decision.write_text(
        seed_with(
            (
                "Kế hoạch rà soát, đánh giá TTHC năm 2025.\nKế hoạch của UBND tỉnh\n",
                "- Kế hoạch rà soát TTHC năm 2025\n- Kế hoạch đánh giá TTHC năm 2025\n"
                "- Kế hoạch của UBND tỉnh\n",
            )
        ),
        encoding="utf-8",
    )
    result = draft_plan(read_decision(decision), registry, names)
    cells = [p for p in result.problems if p.field == "cells"]
    assert [p.row for p in cells] == ["I.1"]
    assert "ranh giới" in cells[0].problem


def test_a_row_too_long_to_cut_is_listed_not_cut(registry, names, tmp_path):
    many = "".join(f"- Việc thứ {i};\n" for i in range(40))
    decision = tmp_path / "qd.txt"
    decision.write_text(
        seed_with(("Kế hoạch rà soát, đánh giá TTHC năm 2025.\n", many)), encoding="utf-8"
    )
    result = draft_plan(read_decision(decision), registry, names)
    cells = [p for p in result.problems if p.field == "cells"]
    assert [p.row for p in cells] == ["I.1"] and "quá nhiều" in cells[0].problem
    assert next(o for o in result.obligations if o.number == "I.1").content.count("\n") == 44


def test_a_row_missing_a_cell_is_listed(registry, names, tmp_path):
    decision = tmp_path / "qd.txt"
    decision.write_text(
        seed_with(("Sở Nội vụ\nQuý II, III/2025", "Quý II, III/2025")), encoding="utf-8"
    )
    result = draft_plan(read_decision(decision), registry, names)
    assert ("VIII.2", "cells") in {(p.row, p.field) for p in result.problems}


# ------------------------------------------------------------------------------- .docx


def build_docx(path: Path) -> None:
    """A decision as provinces publish it: a letterhead table, the decision, the plan's body,
    and an appendix table with a two-row header, merged section rows and other issuers'
    timing phrases."""
    doc = Document()
    head = doc.add_table(rows=2, cols=2)
    head.cell(0, 0).text = "ỦY BAN NHÂN DÂN\nTỈNH NGHỆ AN"
    head.cell(0, 1).text = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\nĐộc lập - Tự do - Hạnh phúc"
    head.cell(1, 0).text = "Số: 12/QĐ-UBND"
    head.cell(1, 1).text = "Nghệ An, ngày 15 tháng 01 năm 2026"
    for text in [
        "QUYẾT ĐỊNH",
        "BAN HÀNH KẾ HOẠCH CẢI CÁCH HÀNH CHÍNH TỈNH NGHỆ AN NĂM 2026",
        "ỦY BAN NHÂN DÂN TỈNH NGHỆ AN",
        "Căn cứ Luật Tổ chức chính quyền địa phương ngày 16/6/2025;",
        "QUYẾT ĐỊNH:",
        "Điều 1. Ban hành kèm theo Quyết định này Kế hoạch cải cách hành chính tỉnh Nghệ An "
        "năm 2026.",
        "Điều 2. Quyết định này có hiệu lực thi hành kể từ ngày 20/01/2026.",
        "TM. ỦY BAN NHÂN DÂN",
        "CHỦ TỊCH",
        "Nguyễn Văn A",
        "KẾ HOẠCH",
        "CẢI CÁCH HÀNH CHÍNH TỈNH NGHỆ AN NĂM 2026",
        "I. MỤC ĐÍCH, YÊU CẦU",
        "1. Hằng năm đánh giá chỉ số cải cách hành chính.",
        "II. NHIỆM VỤ",
        "1. Cải cách thể chế",
        "a) Sở Tư pháp",
        "- Thường xuyên theo dõi thi hành pháp luật về thủ tục hành chính;",
        "- Tham mưu văn bản quy phạm pháp luật của tỉnh.",
        "PHỤ LỤC",
        "NHIỆM VỤ CẢI CÁCH HÀNH CHÍNH NĂM 2026",
    ]:
        doc.add_paragraph(text)
    table = doc.add_table(rows=2, cols=6)
    header = ["STT", "Nội dung nhiệm vụ", "Sản phẩm", "Thời gian hoàn thành", "Phân công", ""]
    for col, text in enumerate(header):
        table.cell(0, col).text = text
    table.cell(0, 4).merge(table.cell(0, 5)).text = "Phân công thực hiện"
    for col in (0, 1, 2, 3):
        table.cell(0, col).merge(table.cell(1, col))
    table.cell(1, 4).text = "Cơ quan chủ trì"
    table.cell(1, 5).text = "Cơ quan phối hợp"

    def section(number: str, title: str) -> None:
        row = table.add_row()
        row.cells[0].text = number
        row.cells[1].merge(row.cells[5]).text = title

    def task(*cells: str) -> None:
        row = table.add_row()
        for col, text in enumerate(cells):
            row.cells[col].text = text

    section("I", "Cải cách thể chế")
    task(
        "1",
        "Rà soát văn bản quy phạm pháp luật",
        "Báo cáo kết quả rà soát",
        "Quí IV-2026",
        "Sở Tư pháp",
        "- Văn phòng UBND tỉnh;\n- Các sở, ban, ngành liên quan.",
    )
    task(
        "2",
        "Báo cáo công tác cải cách hành chính",
        "Báo cáo của UBND tỉnh",
        "trước ngày 01/6 và 15/11 hằng năm (hoặc đột xuất khi có yêu cầu)",
        "Sở Nội vụ",
        "Các Sở: Tư pháp, Tài chính",
    )
    section("II", "Chuyển đổi số")
    task(
        "1",
        "Kết nối cơ sở dữ liệu dân cư",
        "Cơ sở dữ liệu được kết nối",
        "Theo lộ trình của Bộ Công an",
        "Công an tỉnh",
        "Hội Nông dân tỉnh",
    )
    task("2", "Số hóa hồ sơ", "Hồ sơ được số hóa", "2026 - 2027", "UBND cấp xã", "")
    task("3", "Duy trì hệ thống", "Hệ thống vận hành", "Từ tháng 6/2026", "Văn phòng UBND tỉnh", "")
    doc.save(str(path))


def test_a_docx_decision_is_read_cell_by_cell(registry, names, tmp_path):
    path = tmp_path / "qd-12-2026.docx"
    build_docx(path)
    result = draft_plan(read_decision(path), registry, names)
    meta = result.meta
    assert meta["decision"] == "12/QĐ-UBND"
    assert meta["signed"] == date(2026, 1, 15)
    assert meta["effective"] == date(2026, 1, 20)
    assert meta["title"] == "Kế hoạch cải cách hành chính tỉnh Nghệ An năm 2026"
    assert meta["issuer"] == "Ủy ban nhân dân tỉnh Nghệ An"
    assert (meta["year"], meta["province"]) == (2026, "Nghệ An")
    assert meta["signer"] == "Nguyễn Văn A (Chủ tịch)"
    assert [(s["number"], s["title"]) for s in result.sections if s["part"] == "appendix"] == [
        ("I", "Cải cách thể chế"),
        ("II", "Chuyển đổi số"),
    ]
    rows = {o.number: o for o in result.obligations}
    assert list(rows) == ["I.1", "I.2", "II.1", "II.2", "II.3", "B.II.1.a.1"]
    first = rows["I.1"]
    assert (first.content, first.output, first.timing) == (
        "Rà soát văn bản quy phạm pháp luật",
        "Báo cáo kết quả rà soát",
        "Quí IV-2026",
    )
    assert first.lead == ["SO-TP"]
    assert first.coordinating == ["VP-UBND", "GRP-LIEN-QUAN"]
    assert first.coordinating_text == "- Văn phòng UBND tỉnh;\n- Các sở, ban, ngành liên quan."
    assert first.rule == {
        "kind": "period",
        "start": "2026-10-01",
        "end": "2026-12-31",
        "label": "Quý IV/2026",
    }
    assert rows["I.2"].coordinating == ["SO-TP", "SO-TC"]
    assert [part["kind"] for part in rows["I.2"].rule["parts"]] == [
        "annual",
        "annual",
        "on_demand",
    ]
    assert rows["II.1"].rule["kind"] == "reference"
    assert rows["II.1"].coordinating == ["?Hội Nông dân tỉnh"]
    assert rows["II.2"].rule["end"] == "2027-12-31" and rows["II.2"].coordinating == []
    assert rows["II.3"].rule == {
        "kind": "starting",
        "start": "2026-06-01",
        "label": "từ tháng 6/2026",
    }
    body = rows["B.II.1.a.1"]
    assert (body.lead, body.timing, body.rule["kind"]) == (["SO-TP"], "Thường xuyên", "continuous")
    # The only unsure place: the agency the registry does not know. Cells are not guessed.
    assert [(p.row, p.field) for p in result.problems] == [("II.1", "coordinating")]

    draft_file = tmp_path / "draft.yaml"
    draft_file.write_text(render_draft(result), encoding="utf-8")
    with pytest.raises(DataFileError):
        load_plan(draft_file)
    fixed = (
        without_problems(render_draft(result))
        .replace("[?Hội Nông dân tỉnh]", "[]")
        .replace('["?Hội Nông dân tỉnh"]', "[]")
    )
    draft_file.write_text(fixed, encoding="utf-8")
    plan = load_plan(draft_file)
    assert plan.meta.year == 2026 and len(plan.obligations) == 6


# -------------------------------------------------------------------------- bad decisions


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("qd.pdf", b"%PDF-1.4", "chỉ đọc được văn bản .txt (UTF-8) và .docx"),
        ("qd.txt", "Quyết định số 1".encode("utf-16"), "không phải văn bản UTF-8"),
        ("qd.docx", b"not a zip", "không đọc được tệp .docx"),
    ],
)
def test_an_unreadable_decision_says_why(tmp_path, name, content, needle):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DecisionError, match=re.escape(needle)):
        read_decision(path)


def test_a_missing_decision_or_one_without_appendix(registry, names, tmp_path):
    with pytest.raises(DecisionError, match="không tìm thấy tệp"):
        read_decision(tmp_path / "none.txt")
    path = tmp_path / "qd.txt"
    path.write_text("Số: 1/QĐ-UBND\nHà Nội, ngày 1 tháng 1 năm 2026\nĐiều 1. …\n", encoding="utf-8")
    with pytest.raises(DecisionError, match="không tìm thấy phụ lục"):
        draft_plan(read_decision(path), registry, names)


def test_the_rendered_yaml_keeps_every_verbatim_text(seed_draft):
    data = yaml.safe_load(render_draft(seed_draft))
    by_number = {o["number"]: o for o in data["obligations"]}
    for o in seed_draft.obligations:
        got = by_number[o.number]
        assert (got["content"], got["timing"], got.get("lead_text")) == (
            o.content,
            o.timing,
            o.lead_text,
        )


# ---------------------------------------------------------------------------------- fuzz

SEED_LINES = SEED.read_text(encoding="utf-8").split("\n")
REGISTRY = load_registry()
NAMES = load_other_names(registry=REGISTRY)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_mangled_decision_gives_a_draft_or_a_clear_refusal(data):
    """Lines of the seed deleted, repeated, swapped or replaced by noise: the drafter writes
    a draft whose YAML loads, or refuses with a DecisionError; it never crashes."""
    lines = list(SEED_LINES)
    for _ in range(data.draw(st.integers(0, 12))):
        at = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["delete", "repeat", "swap", "noise"]))
        if action == "delete" and len(lines) > 1:
            del lines[at]
        elif action == "repeat":
            lines.insert(at, lines[at])
        elif action == "swap":
            other = data.draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        else:
            lines[at] = data.draw(
                st.sampled_from(["", "- ", "IV", "7", "PHỤ LỤC", "STT", "[2] ghi chú", "Quí V"])
                | st.text(max_size=30)
            )
    decision = Decision("mangled.txt", tuple(lines))
    try:
        result = draft_plan(decision, REGISTRY, NAMES)
    except DecisionError as exc:
        assert str(exc)
        return
    data_out = yaml.safe_load(render_draft(result))
    assert len(data_out["obligations"]) == len(result.obligations)
