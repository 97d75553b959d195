"""The shipped 2025 plan of Nghệ An (QĐ 384/QĐ-UBND) and the plan loader's validation."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from deadlines.agencies import load_registry
from deadlines.datafile import DataFileError
from deadlines.plan import load_plan

# The decision's text, kept with the project (plans/sources/).
SEED = Path(__file__).parents[2] / "plans" / "sources" / "qd-384-2025-nghe-an.txt"

# Every appendix row of sections I–XI (the source has no II.5; II.1 is split in two),
# then the timed duties of the plan's body (sections III–IV of the plan text).
EXPECTED_NUMBERS = [
    "I.1", "I.2", "I.3", "I.4",
    "II.1a", "II.1b", "II.2", "II.3", "II.4", "II.6",
    "III.1", "III.2", "III.3", "III.4",
    "IV.1", "IV.2", "IV.3", "IV.4",
    "V.1", "V.2", "V.3", "V.4", "V.5", "V.6", "V.7", "V.8",
    "VI.1", "VI.2",
    "VII.1", "VII.2",
    "VIII.1", "VIII.2", "VIII.3",
    "IX.1", "IX.2", "IX.3",
    "X.1", "X.2",
    "XI.1",
    "B.III.1.a.1", "B.III.2.b.2", "B.III.2.b.4", "B.IV.1.d",
]  # fmt: skip


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def plan(registry):
    return load_plan(registry=registry)


# ------------------------------------------------------------------------ shipped plan


def test_metadata(plan):
    meta = plan.meta
    assert (meta.code, meta.decision, meta.signed, meta.year, meta.province) == (
        "nghe-an-2025-kstthc",
        "384/QĐ-UBND",
        date(2025, 2, 24),
        2025,
        "Nghệ An",
    )
    assert meta.source_file == "shared/seed/qd-384-2025-nghe-an.txt"


def test_default_arguments_load_the_shipped_plan_and_registry(plan):
    assert [o.number for o in load_plan().obligations] == [o.number for o in plan.obligations]


def test_every_obligation_of_the_seed_is_there_once(plan):
    assert [o.number for o in plan.obligations] == EXPECTED_NUMBERS
    appendix = [o for o in plan.obligations if o.part == "appendix"]
    assert len(appendix) == 39
    assert {o.section for o in appendix} == {
        "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI"
    }  # fmt: skip


def test_row_ii1_is_split_into_two_obligations_with_their_own_timing(plan):
    first, second = plan.obligation("II.1a"), plan.obligation("II.1b")
    assert first.row == second.row == "II.1"
    assert first.timing == "- Ngay sau khi văn bản QPPL được ban hành."
    assert second.timing == (
        "-  Sau 03 ngày làm việc  kể từ ngày nhận được Quyết định công bố TTHC của bộ trưởng "
        "các Bộ, ngành Trung ương"
    )
    assert first.content == "- Xây dựng dự thảo Quyết định công bố TTHC."
    assert first.output == second.output
    assert (first.rule.unit, second.rule.unit, second.rule.amount) == (
        "immediately",
        "working_days",
        3,
    )


def test_section_numbers_follow_the_source(plan):
    numbers = {o.number for o in plan.obligations}
    assert "II.5" not in numbers and "II.6" in numbers
    assert plan.obligation("II.6").section_title == "Công bố, công khai TTHC"


def test_every_obligation_has_a_lead_from_the_registry_that_answers_in_2025(plan, registry):
    for o in plan.obligations:
        assert o.lead, o.number
        assert all(registry.knows(code) for code in (*o.lead, *o.coordinating)), o.number
        for day in (date(2025, 3, 10), date(2025, 8, 1)):
            responsible = {a.code for c in o.lead for a in registry.resolve(c, on=day)}
            assert responsible, (o.number, day)


def test_titles_are_short_and_sources_cited(plan):
    for o in plan.obligations:
        assert 0 < len(o.title) <= 60, o.number
        assert o.source.startswith("QĐ 384/QĐ-UBND, "), o.number
        if o.part == "appendix":
            assert o.source.endswith(f"mục {o.row}"), o.number


def test_a_duty_of_the_merged_information_department_goes_to_science(plan, registry, cal):
    connect = plan.obligation("V.6")
    assert connect.lead == ("SO-TTTT",)
    (due,) = connect.rule.due_dates(cal, year=2025)
    assert due == date(2025, 9, 30)
    assert [a.code for a in registry.resolve("SO-TTTT", on=due)] == ["SO-KHCN"]


def test_rules_of_some_well_known_rows(plan, cal):
    assert plan.obligation("I.4").rule.due_dates(cal, year=2025) == [date(2025, 3, 4)]
    monthly = plan.obligation("X.2").rule.due_dates(cal, year=2025)
    assert len(monthly) == 12 and monthly[0] == date(2025, 1, 22)
    assert plan.obligation("II.6").rule.kind == "continuous"
    assert plan.obligation("III.2").rule.kind == "reference"
    assert plan.obligation("B.III.2.b.4").rule.to_dict() == {
        "kind": "recurring",
        "freq": "monthly",
        "before_day": None,
    }
    assert plan.obligation("B.III.2.b.2").timing == "ngay sau khi được Chính phủ phê duyệt"
    assert plan.obligation("B.III.2.b.2").rule.kind == "after_event"


def test_kpi_targets_of_section_v(plan):
    section_v = {
        t.code: (t.comparison, t.value)
        for t in plan.kpi_targets
        if t.source == "QĐ 384/QĐ-UBND, Phụ lục, mục V.1"
        or t.source == "QĐ 384/QĐ-UBND, Phụ lục, mục V.2"
        or t.source == "QĐ 384/QĐ-UBND, Phụ lục, mục V.3"
    }
    assert section_v == {
        "portal_sync_rate": (">=", 1.0),
        "personal_id_rate": (">=", 1.0),
        "late_apology_rate": (">=", 1.0),
        "online_submission_rate": (">=", 0.80),
        "online_payment_rate": (">", 0.65),
        "on_time_rate": (">=", 0.95),
        "digitization_rate": (">=", 1.0),
        "e_result_rate": (">=", 1.0),
        "data_reuse_rate": (">=", 0.60),
    }
    assert plan.kpi("on_time_rate").source == "QĐ 384/QĐ-UBND, Phụ lục, mục V.2"


def test_kpi_targets_of_row_ii4_and_their_comparison(plan):
    full_online = plan.kpi("full_online_service_rate")
    assert (full_online.comparison, full_online.value, full_online.obligation) == (">", 0.8, "II.4")
    assert plan.kpi("financial_obligation_online_rate").value == 0.65
    on_time = plan.kpi("on_time_rate")
    assert on_time.is_met(0.95) and not on_time.is_met(0.949)
    assert not plan.kpi("online_payment_rate").is_met(0.65)


def test_transcribed_text_is_verbatim_from_the_seed(plan):
    seed = SEED.read_text(encoding="utf-8")
    for o in plan.obligations:
        for field in ("content", "output", "timing", "lead_text", "coordinating_text"):
            value = getattr(o, field)
            assert value is None or value in seed, (o.number, field, value)
    for target in plan.kpi_targets:
        assert target.text in seed, target.code
    for section in plan.sections:
        assert section.title in seed, section.number
    assert plan.meta.title in seed


# -------------------------------------------------------------------------- validation

HEADER = """\
plan:
  code: thu
  title: Kế hoạch thử
  decision: 1/QĐ-UBND
  signed: 2025-01-02
  year: 2025
  province: Nghệ An
  source_file: thu.txt
sections:
  - {part: appendix, number: I, title: Mục một}
obligations:
"""  # the first obligation starts on line 12


def obligation(number: str, **fields: str) -> str:
    values = {
        "section": "I",
        "title": "Việc thử",
        "content": "Nội dung",
        "output": "Kết quả",
        "lead": "[VP-UBND]",
        "timing": "Trước ngày 05/3/2025",
        "source": "thử",
        **fields,
    }
    lines = [f"  - number: {number}"] + [f"    {k}: {v}" for k, v in values.items() if v]
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, registry) -> list:
    with pytest.raises(DataFileError) as info:
        load_plan(path, registry=registry)
    for problem in info.value.problems:
        assert problem.line > 0, problem
        assert str(problem).startswith(f"{path}, dòng {problem.line}: ")
    return info.value.problems


def test_a_minimal_plan_loads(tmp_path, registry):
    plan = load_plan(write(tmp_path, HEADER + obligation("I.1")), registry=registry)
    (only,) = plan.obligations
    assert (only.number, only.section_title, only.rule.kind) == ("I.1", "Mục một", "fixed")


def test_every_problem_is_reported_at_once_with_file_and_line(tmp_path, registry):
    text = (
        HEADER
        + obligation("I.1", lead="[SO-KHONG-CO]")  # lines 12-19
        + obligation("I.2", lead="")  # lines 20-26
        + obligation("I.1", timing="Khi nào rảnh")  # lines 27-34
        + "kpi_targets:\n"  # line 35
        + "  - {code: on_time_rate, label: Đúng hạn, comparison: '>=', value: 95, source: t}\n"
    )
    problems = problems_of(write(tmp_path, text), registry)
    by_line = {p.line: p.message for p in problems}
    assert "mã cơ quan hoặc nhóm không có trong danh bạ: 'SO-KHONG-CO'" in by_line[17]
    assert "nhiệm vụ I.2: thiếu cơ quan chủ trì ('lead')" in by_line[20]
    assert "số nhiệm vụ 'I.1' bị trùng (đã có ở dòng 12)" in by_line[27]
    assert "không hiểu thời hạn 'Khi nào rảnh'" in by_line[33]
    assert 'Không hiểu cụm thời hạn: "Khi nào rảnh"' in by_line[33]  # the parser's message
    assert "'value' phải từ 0 đến 1" in by_line[36]
    assert len(problems) == 5


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"lead": "[]"}, "'lead' không được để trống"),
        ({"lead": "[GRP-BO-NGANH-TW]"}, "phải có ít nhất một cơ quan hoặc nhóm của tỉnh"),
        ({"coordinating": "[GRP-KHONG-CO]"}, "không có trong danh bạ: 'GRP-KHONG-CO'"),
        ({"section": "II"}, "mục 'II' (appendix) không có trong 'sections'"),
        ({"title": "x" * 61}, "tiêu đề dài 61 ký tự, tối đa 60"),
        ({"output": ""}, "thiếu trường 'output'"),
        ({"timing": "Trước ngày 31/2/2025"}, 'Cụm thời hạn "Trước ngày 31/2/2025"'),
        ({"rule": "{kind: continuous}"}, "khác quy tắc đọc được từ thời hạn"),
        ({"owner": "VP-UBND"}, "trường không biết 'owner'"),
    ],
)
def test_one_bad_obligation(tmp_path, registry, fields, expected):
    problems = problems_of(write(tmp_path, HEADER + obligation("I.1", **fields)), registry)
    assert any(expected in p.message for p in problems), problems


def test_a_written_rule_equal_to_the_parsed_one_is_accepted(tmp_path, registry):
    rule = "{kind: fixed, day: 2025-03-05, before: true}"
    plan = load_plan(write(tmp_path, HEADER + obligation("I.1", rule=rule)), registry=registry)
    assert plan.obligation("I.1").rule.to_dict()["day"] == "2025-03-05"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("{code: a, label: A, comparison: '=>', value: 0.5, source: t}", "'comparison' phải là"),
        ("{code: a, label: A, comparison: '>', value: 1.0, source: t}", "không tỷ lệ nào"),
        ("{code: a, label: A, comparison: '>=', value: '80%', source: t}", "phải là số từ 0"),
        ("{code: a, label: A, comparison: '>=', value: 0.8, source: t, obligation: IX.9}",
         "nhiệm vụ 'IX.9' không có trong kế hoạch"),
        ("{code: On-Time, label: A, comparison: '>=', value: 0.8, source: t}", "mã chỉ tiêu"),
    ],
)  # fmt: skip
def test_bad_kpi_targets(tmp_path, registry, target, expected):
    text = HEADER + obligation("I.1") + f"kpi_targets:\n  - {target}\n"
    problems = problems_of(write(tmp_path, text), registry)
    assert any(expected in p.message and p.line >= 21 for p in problems), problems


def test_missing_metadata_is_reported(tmp_path, registry):
    text = HEADER.replace("  year: 2025\n", "").replace("  signed: 2025-01-02\n", "")
    messages = [p.message for p in problems_of(write(tmp_path, text + obligation("I.1")), registry)]
    assert any("'signed' phải là ngày" in m for m in messages)
    assert any("'year' phải là một năm" in m for m in messages)


# ---------------------------------------------------------- reorganisation and regimes


def test_the_766_duty_written_twice_is_owed_once(plan):
    body = plan.obligation("B.III.2.b.4")
    assert body.same_as == "V.7" and not plan.owes_items(body)
    assert plan.owes_items(plan.obligation("V.7"))


def test_occurrences_start_on_the_effective_date(plan, cal):
    x2 = plan.occurrences(plan.obligation("X.2"), cal)
    assert x2[0] == ("2025-03", date(2025, 3, 21))  # February's fell on 21/2, before 24/2
    assert all(
        due >= date(2025, 2, 24) for ob in plan.obligations for _, due in plan.occurrences(ob, cal)
    )


def test_the_reporting_regime_gives_data_periods_and_no_invented_sending_day(plan):
    quarterly = plan.reporting["quarterly"]
    assert quarterly.data_window(2025, 0) == (date(2024, 12, 15), date(2025, 3, 14))
    assert quarterly.data_window(2025, 2) == (date(2025, 6, 15), date(2025, 9, 14))
    assert plan.reporting["half_yearly"].data_window(2025, 1) == (
        date(2025, 6, 15),
        date(2025, 12, 14),
    )
    assert plan.reporting["monthly"].data_window(2025, 0) == (date(2024, 12, 15), date(2025, 1, 14))
    assert all(p.send_by is None and p.unconfirmed for p in plan.reporting.values())
    assert "Điều 12" in quarterly.source
    # Without a sending day, "Hàng quý" stays on the last working day, and says so.
    assert plan.default_due_days(plan.obligation("X.1")) == ["quarterly"]
    assert plan.default_due_days(plan.obligation("X.2")) == []


REGIME = """\
reporting:
  quarterly:
    data_from: 15
    data_to: 14
    send_by: 18
    send_source: Công văn thử
    source: Nghị định 09/2019/NĐ-CP, Điều 12 khoản 2
"""


def test_a_known_sending_day_is_what_hang_quy_means(tmp_path, registry, cal):
    text = HEADER.replace("obligations:\n", REGIME + "obligations:\n") + obligation(
        "I.1", timing="Hàng quý"
    )
    plan = load_plan(write(tmp_path, text), registry=registry)
    rule = plan.obligation("I.1").rule
    assert rule.to_dict() == {"kind": "recurring", "freq": "quarterly", "before_day": 19}
    assert [due for _, due in plan.occurrences(plan.obligation("I.1"), cal)] == [
        date(2025, 3, 18), date(2025, 6, 18), date(2025, 9, 18), date(2025, 12, 18),
    ]  # fmt: skip
    assert plan.default_due_days(plan.obligation("I.1")) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("quarterly:", "fortnightly:"), "chế độ báo cáo 'fortnightly': kỳ không biết"),
        (("send_by: 18", "send_by: 31"), "'send_by' phải là một ngày từ 1 đến 28"),
        (("send_by: 18", "send_by: 12"), "ngày gửi 12 phải sau ngày chốt số liệu 14"),
        (("    data_to: 14\n", ""), "cần cả 'data_from' và 'data_to'"),
        (("    send_source: Công văn thử\n", ""), "thiếu trường 'send_source'"),
        (("    source: Nghị", "    unconfirmed: [send_by]\n    source: Nghị"), "phải có 'note'"),
    ],
)
def test_a_bad_reporting_regime(tmp_path, registry, change, expected):
    text = HEADER.replace("obligations:\n", REGIME.replace(*change) + "obligations:\n")
    problems = problems_of(write(tmp_path, text + obligation("I.1")), registry)
    assert any(expected in p.message for p in problems), problems


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"same_as": "I.9"}, "'same_as' 'I.9' không có trong kế hoạch"),
        ({"same_as": "I.1"}, "'same_as' không được trỏ về chính nó"),
        ({"same_as": "I.2"}, "'same_as' I.2 nhưng thời hạn khác"),
        ({"same_as": "I.2", "timing": "Hàng tháng"}, "'same_as' I.2 nhưng cơ quan chủ trì khác"),
        ({"function": "y-te"}, "chức năng 'y-te' không có trong danh bạ"),
    ],
)
def test_same_as_and_function_are_checked(tmp_path, registry, fields, expected):
    other = obligation("I.2", timing="Hàng tháng", lead="[SO-TP]")
    problems = problems_of(write(tmp_path, HEADER + obligation("I.1", **fields) + other), registry)
    assert any(expected in p.message for p in problems), problems


def test_a_chain_of_same_as_is_refused(tmp_path, registry):
    text = (
        HEADER
        + obligation("I.1", same_as="I.2")
        + obligation("I.2", same_as="I.3")
        + obligation("I.3")
    )
    (problem,) = problems_of(write(tmp_path, text), registry)
    assert "'same_as' I.2 mà I.2 lại 'same_as' I.3; hãy trỏ thẳng về I.3" in problem.message
