"""Timing phrases of plans other than the seed, family by family, each with where it was read.

The seed's own phrases are in test_phrases.py. Here every family the issue names (month/year
and bare years, year ranges, spelling and spacing variants, several days of each year,
open-ended starts, outside roadmaps) is checked three ways: the rule the parser reads, its
due dates, and `dunghan due` (the contract) printing the same.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from typer.testing import CliRunner

from deadlines.calendar import WorkCalendar
from deadlines.phrases import PhraseError, parse_timing
from deadlines.rules import (
    Annual,
    Combined,
    Continuous,
    Fixed,
    OnDemand,
    Period,
    Recurring,
    Reference,
    Starting,
    due_dates_for,
    rule_from_dict,
)
from flows.cli import app


def d(text: str) -> date:
    return date.fromisoformat(text)


def days(*texts: str) -> list[date]:
    return [d(t) for t in texts]


# Where each phrase was read. Public texts by their official names; the issue's own examples
# (which it quotes from other issuers' plans) are cited as such.
ISSUE = "Issue 12 (examples quoted from other issuers' plans)"
QD_384 = "QĐ 384/QĐ-UBND ngày 24/02/2025 của UBND tỉnh Nghệ An, Kế hoạch, mục I.1 và III.1.b"
QD_1944 = (
    "QĐ 1944/QĐ-TTg ngày 18/11/2021 của Thủ tướng Chính phủ (Chương trình thực hiện "
    "Kết luận 13-KL/TW), Điều 2 khoản 1"
)
CT_05 = (
    "Chỉ thị 05/CT-TTg ngày 23/02/2023 của Thủ tướng Chính phủ (tên Chỉ thị), dẫn trong "
    "Kế hoạch 395/KH-UBND ngày 20/10/2023 của UBND tỉnh Lào Cai"
)
CT_37_LAO_CAI = (
    "Chỉ thị 37-CT/TU ngày 05/5/2023 của Tỉnh ủy Lào Cai (tên Chỉ thị), dẫn trong Kế hoạch "
    "395/KH-UBND ngày 20/10/2023 của UBND tỉnh Lào Cai"
)
QD_1_HUE = "QĐ 1/QĐ-UBND ngày 01/01/2024 của UBND tỉnh Thừa Thiên Huế, mục I.1"
NQ_86 = "Nghị quyết 86/NQ-CP ngày 04/11/2025 của Chính phủ (nhiệm vụ những tháng cuối năm 2025)"
VPCP_2025 = (
    "Chỉ đạo của Chính phủ về sắp xếp tổ chức bộ máy, chính quyền địa phương 02 cấp (2025): "
    "'trong tháng 5 và tháng 6 năm 2025'"
)
CTHD_XIV = "Dự thảo Chương trình hành động thực hiện Nghị quyết Đại hội XIV của Đảng (10/2025)"
CV_2539_BRVT = (
    "Công văn 2539/UBND-SNV ngày 08/5/2012 của UBND tỉnh Bà Rịa - Vũng Tàu về xây dựng kế "
    "hoạch cải cách hành chính hằng năm và báo cáo cải cách hành chính"
)

QUARTER_ENDS_2025 = days("2025-03-31", "2025-06-30", "2025-09-30", "2025-12-31")

# (phrase, source, rule, due dates asked for 2025)
FAMILIES = [
    # -- month/year and bare years
    ("6/2025", ISSUE, Period(d("2025-06-01"), d("2025-06-30"), "tháng 6/2025"), ["2025-06-30"]),
    (
        "trong tháng 11, tháng 12 năm 2025",
        NQ_86,
        Period(d("2025-11-01"), d("2025-12-31"), "tháng 11–12/2025"),
        ["2025-12-31"],
    ),
    (
        "trong tháng 5 và tháng 6 năm 2025",
        VPCP_2025,
        Period(d("2025-05-01"), d("2025-06-30"), "tháng 5–6/2025"),
        ["2025-06-30"],
    ),
    ("2025", ISSUE, Period(d("2025-01-01"), d("2025-12-31"), "năm 2025"), ["2025-12-31"]),
    # -- ranges of years: due on the range's last working day
    (
        "2025 - 2026",
        ISSUE,
        Period(d("2025-01-01"), d("2026-12-31"), "năm 2025–2026"),
        ["2026-12-31"],
    ),
    (
        "giai đoạn 2022- 2025",
        QD_384,
        Period(d("2022-01-01"), d("2025-12-31"), "giai đoạn 2022–2025"),
        ["2025-12-31"],
    ),
    (
        "giai đoạn 2026 - 2030",
        CTHD_XIV,
        Period(d("2026-01-01"), d("2030-12-31"), "giai đoạn 2026–2030"),
        ["2030-12-31"],
    ),
    # -- spelling and spacing: "Quí", a dash before the year
    ("Quí IV-2025", ISSUE, Period(d("2025-10-01"), d("2025-12-31"), "Quý IV/2025"), ["2025-12-31"]),
    # -- several timings in one cell
    (
        "Thường xuyên, hằng năm",
        ISSUE,
        Combined((Continuous(), Recurring("yearly"))),
        ["2025-12-31"],
    ),
    (
        "định kỳ hằng quý, 6 tháng, năm",
        QD_1944,
        Combined((Recurring("quarterly"), Recurring("half_yearly"), Recurring("yearly"))),
        ["2025-03-31", "2025-06-30", "2025-09-30", "2025-12-31"],
    ),
    # -- several days of every year; 31/5/2025 is a Saturday, 15/11/2025 a Saturday
    (
        "trước ngày 01/6 và 15/11 hằng năm (hoặc đột xuất khi có yêu cầu)",
        ISSUE,
        Combined((Annual(6, 1, before=True), Annual(11, 15, before=True), OnDemand())),
        ["2025-05-30", "2025-11-14"],
    ),
    (
        "trước ngày 20/11 hàng năm",  # 19/11/2025 is a Wednesday
        CV_2539_BRVT,
        Annual(11, 20, before=True),
        ["2025-11-19"],
    ),
    (
        "trước ngày 25/11 hàng năm",  # 24/11/2025 is a Monday
        CV_2539_BRVT,
        Annual(11, 25, before=True),
        ["2025-11-24"],
    ),
    # -- a day of each quarter's last month: 4/3/2025 Tue, 4/6 Wed, 4/9 Thu, 4/12 Thu
    (
        "trước ngày 05 tháng cuối cùng của mỗi quý",
        CV_2539_BRVT,
        Recurring("quarterly", before_day=5),
        ["2025-03-04", "2025-06-04", "2025-09-04", "2025-12-04"],
    ),
    # -- open-ended starts: no due date, only a start
    ("từ năm 2025", ISSUE, Starting(d("2025-01-01"), "từ năm 2025"), []),
    ("từ tháng 6/2025", ISSUE, Starting(d("2025-06-01"), "từ tháng 6/2025"), []),
    (
        "năm 2023 và những năm tiếp theo",
        CT_05,
        Starting(d("2023-01-01"), "từ năm 2023"),
        [],
    ),
    ("năm 2023 và các năm tiếp theo", CT_37_LAO_CAI, Starting(d("2023-01-01"), "từ năm 2023"), []),
    # -- before a period begins: 30/6/2024 Sunday, 29/6 Saturday
    ("trước quý III/2024", QD_1_HUE, Fixed(d("2024-07-01"), before=True), ["2024-06-28"]),
    # -- duties following an outside roadmap
    (
        "Theo lộ trình của Bộ Công an",
        ISSUE,
        Reference("Theo lộ trình của Bộ Công an"),
        [],
    ),
]
IDS = [phrase for phrase, *_ in FAMILIES]


@pytest.mark.parametrize(("phrase", "source", "rule", "due"), FAMILIES, ids=IDS)
def test_each_family_gives_its_rule_and_due_dates(cal, phrase, source, rule, due):
    parsed = parse_timing(phrase, plan_year=2025)
    assert parsed == rule, source
    assert parsed.to_dict() == rule.to_dict()
    assert rule_from_dict(parsed.to_dict()) == parsed
    assert due_dates_for(parsed, cal, year=2025) == days(*due)


@pytest.mark.parametrize(("phrase", "source", "rule", "due"), FAMILIES, ids=IDS)
def test_dunghan_due_is_the_contract_for_each_family(phrase, source, rule, due):
    result = CliRunner().invoke(app, ["due", phrase, "--year", "2025"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"rule": rule.to_dict(), "due": due}


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [
        ("Quý IV - 2025", "Quý IV/2025"),
        ("quí 4/2025", "Quý IV/2025"),
        ("QUÍ IV NĂM 2025", "Quý IV/2025"),
        ("Quý 04/2025", "Quý IV/2025"),
        ("Quí II, III/2025", "Quý II, III/2025"),
        ("06/2025", "Tháng 6/2025"),
        ("Tháng 06 - 2025", "Tháng 6/2025"),
        ("Trong 6/2025", "Tháng 6/2025"),
        ("Năm 2025 - 2026", "2025 - 2026"),
        ("2025-2026", "2025 - 2026"),
        ("Năm 2025 đến năm 2026", "2025 - 2026"),
        ("thường xuyên; hàng năm", "Thường xuyên, hằng năm"),
        ("Thường xuyên và hằng năm", "Thường xuyên, hằng năm"),
        (
            "Trước ngày 1/6 và 15/11 hàng năm (hoặc đột xuất khi có yêu cầu)",
            "trước ngày 01/6 và 15/11 hằng năm (hoặc đột xuất khi có yêu cầu)",
        ),
        (
            "Hằng năm, trước ngày 01/6 và trước ngày 15/11 hoặc đột xuất khi có yêu cầu",
            "trước ngày 01/6 và 15/11 hằng năm (hoặc đột xuất khi có yêu cầu)",
        ),
        ("Từ năm 2025 trở đi", "từ năm 2025"),
        ("Kể từ tháng 06/2025", "từ tháng 6/2025"),
        ("Bắt đầu từ 6/2025", "từ tháng 6/2025"),
        ("Định kỳ hàng quý, 6 tháng và hằng năm", "định kỳ hằng quý, 6 tháng, năm"),
        ("Thực hiện theo lộ trình của Bộ Công an", "Theo lộ trình của Bộ Công an"),
    ],
)
def test_written_variants_read_the_same(variant, canonical):
    assert parse_timing(variant, plan_year=2025) == parse_timing(canonical, plan_year=2025)


@pytest.mark.parametrize(
    ("phrase", "rule"),
    [
        ("Tháng 12 hằng năm", Annual(12)),
        ("Hằng năm, chậm nhất ngày 15/12", Annual(12, 15, before=False)),
        ("Trước ngày 15/12 hằng năm", Annual(12, 15, before=True)),
        ("Ngày 20/12 hằng năm", Annual(12, 20, before=False)),
        (
            "Từ tháng 6 đến tháng 12/2025",
            Period(d("2025-06-01"), d("2025-12-31"), "từ tháng 6/2025 đến tháng 12/2025"),
        ),
        (
            "Từ Quý II/2025 đến hết Quý III/2025",
            Period(d("2025-04-01"), d("2025-09-30"), "từ Quý II/2025 đến Quý III/2025"),
        ),
        ("Từ Quý II/2025", Starting(d("2025-04-01"), "từ Quý II/2025")),
        ("Trước tháng 6/2025", Fixed(d("2025-06-01"), before=True)),
        ("Trước năm 2026", Fixed(d("2026-01-01"), before=True)),
        ("Hằng quý hoặc đột xuất khi có yêu cầu", Combined((Recurring("quarterly"), OnDemand()))),
        ("Theo lộ trình, hướng dẫn của Bộ", Reference("Theo lộ trình, hướng dẫn của Bộ")),
    ],
)
def test_more_forms_of_the_same_families(phrase, rule):
    assert parse_timing(phrase, plan_year=2025) == rule


def test_days_of_every_year_are_due_each_year(cal):
    rule = parse_timing("trước ngày 01/6 và 15/11 hằng năm", plan_year=2025)
    assert rule.due_dates(cal, year=2026) == days("2026-05-29", "2026-11-13")  # 31/5 Sun
    # "trước ngày 01/01" of next year is due on the last working day of this one.
    new_year = Annual(1, 1, before=True)
    assert new_year.occurrences(cal, year=2025) == [("2026-01-01", d("2025-12-31"))]
    # "Chậm nhất ngày 31/12" rolls forward into January when 31/12 is a day off.
    by_end = Annual(12, 31, before=False)
    assert by_end.occurrences(cal, year=2028) == []  # 31/12/2028 Sunday -> 2/1/2029
    assert by_end.occurrences(cal, year=2029)[0] == ("2028-12-31", d("2029-01-02"))


def test_annual_keys_do_not_depend_on_the_calendar(cal, tmp_path):
    province = tmp_path / "tinh.yaml"
    province.write_text(
        "overrides:\n  - {date: 2025-05-30, kind: off, name: Nghỉ, source: QĐ 1/QĐ-UBND}\n",
        encoding="utf-8",
    )
    other = WorkCalendar.vietnam(province)
    rule = parse_timing("trước ngày 01/6 và 15/11 hằng năm", plan_year=2025)
    before = dict(rule.occurrences(cal, year=2025))
    after = dict(rule.occurrences(other, year=2025))
    assert before.keys() == after.keys() == {"2025-06-01", "2025-11-15"}
    assert before["2025-06-01"] == d("2025-05-30")
    assert after["2025-06-01"] == d("2025-05-29")
    month = Annual(12)
    assert month.occurrences(cal, year=2025) == [("2025-12", d("2025-12-31"))]


def test_starting_and_references_have_no_due_date_and_explain_why(cal):
    start = parse_timing("từ tháng 6/2025", plan_year=2025)
    assert start.due_dates(cal, year=2025) == []
    assert "từ tháng 6/2025 trở đi" in start.describe(cal)
    roadmap = parse_timing("Theo lộ trình của Bộ Công an", plan_year=2025)
    assert "không tự tính được ngày hạn" in roadmap.describe(cal)


@pytest.mark.parametrize(
    ("phrase", "reason"),
    [
        ("2026 - 2025", "phải sau năm bắt đầu"),
        ("2025 - 2025", "phải sau năm bắt đầu"),
        ("2020 - 2045", "dài hơn 10 năm"),
        ("13/2025", "tháng 13 không tồn tại"),
        ("Quí V-2025", "quý V không tồn tại"),
        ("Trước ngày 29/2 hằng năm", "không có trong mọi năm"),
        ("Trước ngày 31/4 và 15/11 hằng năm", "không có trong mọi năm"),
        ("Tháng 13 hằng năm", "tháng 13 không tồn tại"),
        ("Từ Quý V/2025", "quý V không tồn tại"),
        ("Từ tháng 12 đến tháng 6/2025", "phải sau"),
    ],
)
def test_impossible_phrases_of_these_families_say_what_is_wrong(phrase, reason):
    with pytest.raises(PhraseError) as err:
        parse_timing(phrase, plan_year=2025)
    assert reason in str(err.value)
    assert err.value.reason is not None


@pytest.mark.parametrize(
    "phrase",
    [
        "Từ khi có yêu cầu",
        "Hằng năm (hoặc linh tinh)",
        "Hằng năm (theo yêu cầu",
        "6/2025/2026",
        "2025 – 2026 – 2027",
        "Trước quý",
        "Quí",
        "từ năm",
        "và những năm tiếp theo",
        "Thường xuyên, linh tinh",
        "Theo ý kiến chỉ đạo",
        "Theo lộ",
        # Công văn 2539/UBND-SNV (Bà Rịa - Vũng Tàu): "Báo cáo tháng gửi trước ngày 15 của
        # tháng" — alone, the phrase does not say which month: refused.
        "trước ngày 15 của tháng",
        "trước ngày 05 tháng cuối",
    ],
)
def test_unknown_phrases_near_these_families_are_refused_not_guessed(phrase):
    with pytest.raises(PhraseError) as err:
        parse_timing(phrase, plan_year=2025)
    assert err.value.reason is None
    assert str(err.value).startswith(f'Không hiểu cụm thời hạn: "{phrase}"')
