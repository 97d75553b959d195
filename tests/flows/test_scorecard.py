"""The monthly scorecard: on a real Prefect server (ephemeral) and a real database (SQLite,
and PostgreSQL when configured) over the hand-computed sample of `test_kpis`; and its pure
core (the month parameter, the charts, escaping) without Prefect.

May 2025 in the sample: 11 dossiers, 7 on time (63.6%); SO-YT 1/1, SO-TC 3/4, SO-TP 1/2,
SO-XD 2/4; late: TC-2 (Trần Thị Bình, apology), TP-2 (a handler named `<script>…`),
XD-1 (no handler recorded) and XD-3 (Lê Văn Cường, apology). April: SO-XD 1/2.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import date, time
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from flows.cli import app
from flows.engine import EngineContext
from flows.parameters import ParameterError
from flows.reports.scorecard import (
    NO_HANDLER,
    Scorecard,
    build_scorecard,
    check_month,
    on_time_chart,
    previous_month,
    report_days,
    report_html,
    scorecard_table,
    trend_chart,
    write_report_file,
)
from flows.scorecard import monthly_scorecard
from models.tables import Notification
from tests.flows.prefect_support import artifacts_of, count, latest_artifact, rows, table_of
from tests.flows.test_kpis import MAY_LATE, SCRIPT, load_sample

ESCAPED_SCRIPT = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
OFFICE = "vp-ubnd@example.gov.vn"
NAMES = {
    "SO-TC": "Sở Tài chính tỉnh Nghệ An",
    "SO-XD": "Sở Xây dựng tỉnh Nghệ An",
    "SO-TP": "Sở Tư pháp tỉnh Nghệ An",
    "SO-YT": "Sở Y tế tỉnh Nghệ An",
}


@pytest.fixture
def sample(dunghan_env, tmp_path) -> str:
    """The database of the flow runs, holding the hand-computed sample; its URL."""
    ctx = EngineContext.open(dunghan_env)
    try:
        load_sample(ctx, tmp_path)
    finally:
        ctx.db.dispose()
    return dunghan_env


def without_tags(page: str) -> str:
    """The report's text as a reader sees it."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page)).split())


# ------------------------------------------------------------------ the flow


@pytest.mark.usefixtures("prefect_api")
def test_the_flow_publishes_the_table_writes_the_report_and_emails_it_once(sample, tmp_path):
    state = monthly_scorecard(month="2025-05", return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    report = tmp_path / "reports" / "scorecard-2025-05.html"
    assert result == {
        "month": "2025-05",
        "html": str(report),
        "artifact": "scorecard-2025-05",
        "dossiers": 11,
        "on_time_rate": 0.6364,
        "recipient": OFFICE,
        "emailed": 1,
    }

    # The table artifact, read back from the server: best on-time rate first, each rate
    # as a percentage, and whether it reaches the plan's target.
    table = table_of(artifacts_of(state)["scorecard-2025-05"])
    assert [(r["Cơ quan"], r["Hồ sơ"], r["Đúng hạn"]) for r in table] == [
        (NAMES["SO-YT"], 1, "100,0%"),
        (NAMES["SO-TC"], 4, "75,0%"),
        (NAMES["SO-TP"], 2, "50,0%"),
        (NAMES["SO-XD"], 4, "50,0%"),
    ]
    assert [r["Đúng hạn: chỉ tiêu ≥ 95%"] for r in table] == ["Đạt", "Chưa đạt"] + ["Chưa đạt"] * 2
    finance = table[1]
    assert finance["Mã cơ quan"] == "SO-TC"
    assert (finance["TT trực tuyến"], finance["TT trực tuyến: chỉ tiêu > 65%"]) == (
        "66,7%",
        "Đạt",
    )
    assert (finance["Xin lỗi/trễ"], finance["Xin lỗi/trễ: chỉ tiêu ≥ 100%"]) == ("100,0%", "Đạt")
    health = table[0]
    assert (health["Xin lỗi/trễ"], health["Xin lỗi/trễ: chỉ tiêu ≥ 100%"]) == ("—", "—")

    # The HTML report: the numbers, the 95% line, the public list, everything escaped.
    html = report.read_text(encoding="utf-8")
    text = without_tags(html)
    assert "Bảng đánh giá giải quyết thủ tục hành chính tháng 5/2025" in text
    assert "toàn tỉnh có 11 hồ sơ" in text and "tỷ lệ đúng hạn 63,6%" in text
    assert "1/4 cơ quan đạt chỉ tiêu đúng hạn" in text
    assert "4 hồ sơ trễ hạn, trong đó 2 hồ sơ chưa có phiếu xin lỗi" in text
    # The 95% line of the bar chart: bars start at x=330 and 100% is 360 wide.
    assert re.search(r'<line class="target" x1="672.0" y1="20" x2="672.0"', html)
    assert "Chỉ tiêu ≥ 95%" in text
    # The trend: nothing from January to March, SO-XD's 50% in April, 63.6% in May.
    assert "Hồ sơ 0 0 0 2 11" in text and "Đúng hạn — — — 50,0% 63,6%" in text
    # The indicators with their targets, and the public list (plan item V.7).
    # The legal clock and the portal's (Decision 766) both against the 95% target.
    assert "Chỉ tiêu ≥ 95% ≥ 95% ≥ 80% ≥ 100% ≥ 100% > 65% ≥ 100%" in text
    assert f"{NAMES['SO-XD']} 2 1" in text  # late dossiers, of which without apology
    for name in ("Trần Thị Bình", "Lê Văn Cường", NO_HANDLER, ESCAPED_SCRIPT):
        assert name in html
    assert SCRIPT not in html and "<script" not in html
    # Self-contained: no script, no external stylesheet, image or link.
    assert not re.search(r"<(script|link|img|iframe)\b|\b(src|href)=", html)

    # The email to the provincial office, with the report as its HTML part.
    ((mail,),) = rows(sample, select(Notification))
    assert (mail.kind, mail.recipient, mail.status) == ("scorecard", OFFICE, "pending")
    assert mail.subject == "[Đúng hạn] Bảng đánh giá giải quyết TTHC tháng 5/2025: đúng hạn 63,6%"
    assert mail.body_html == html
    assert "Trần Thị Bình" in mail.body_text and str(report) in mail.body_text

    # A rerun rewrites the report and the artifact, and queues no second email.
    again = monthly_scorecard(month="2025-05", return_state=True)
    assert again.is_completed(), again.message
    assert again.result()["emailed"] == 0
    assert count(sample, Notification) == 1
    assert table_of(latest_artifact("scorecard-2025-05")) == table
    assert report.read_text(encoding="utf-8") == html
    assert sorted(p.name for p in report.parent.iterdir()) == [report.name]


@pytest.mark.usefixtures("prefect_api")
def test_without_a_month_the_flow_reports_on_the_previous_one(sample, monkeypatch, tmp_path):
    monkeypatch.setattr("flows.scorecard.today_in_vietnam", lambda: date(2025, 6, 4))
    state = monthly_scorecard(return_state=True)
    assert state.is_completed(), state.message
    assert state.result()["month"] == "2025-05"
    assert (tmp_path / "reports" / "scorecard-2025-05.html").is_file()


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize(
    ("month", "message"),
    [
        ("2025-13", "Tham số month không hợp lệ: '2025-13'. Cần tháng dạng YYYY-MM"),
        ("tháng 5", "Tham số month không hợp lệ: 'tháng 5'."),
        ("2999-01", "Tháng 1/2999 chưa kết thúc"),
    ],
)
def test_a_bad_month_fails_the_run_with_a_vietnamese_message(sample, tmp_path, month, message):
    state = monthly_scorecard(month=month, return_state=True)
    assert state.is_failed()
    assert message in state.message
    assert not (tmp_path / "reports").exists()
    assert count(sample, Notification) == 0


# ------------------------------------------------------------------ the CLI


def test_the_command_writes_the_report_and_queues_the_email_once(sample, tmp_path):
    runner = CliRunner()
    output = tmp_path / "out"
    first = runner.invoke(app, ["scorecard", "--month", "2025-05", "--output", str(output)])
    assert first.exit_code == 0, first.output
    assert f"Bảng đánh giá tháng 5/2025: {output / 'scorecard-2025-05.html'}" in first.output
    assert "tỷ lệ đúng hạn 63,6%" in first.output
    assert f"Đã đưa thư gửi {OFFICE} vào hàng đợi" in first.output
    second = runner.invoke(app, ["scorecard", "--month", "2025-05", "--output", str(output)])
    assert second.exit_code == 0, second.output
    assert "đã có trong hàng đợi; không gửi lại" in second.output
    assert count(sample, Notification) == 1


def test_the_command_refuses_a_bad_month(sample, tmp_path):
    result = CliRunner().invoke(app, ["scorecard", "--month", "2025-5-1"])
    assert result.exit_code == 2
    assert "Tham số month không hợp lệ: '2025-5-1'" in result.output
    assert count(sample, Notification) == 0


# -------------------------------------------------------------- the pure core


def test_the_previous_month_crosses_the_year():
    assert previous_month(date(2025, 6, 4)) == "2025-05"
    assert previous_month(date(2026, 1, 5)) == "2025-12"


def test_scheduled_runs_fall_on_the_third_working_day_of_the_next_month(cal):
    days = report_days(cal, 2025)
    assert len(days) == 12 and days[-1].year == 2026 and days[-1].month == 1
    assert all(
        cal.is_working_day(d) and cal.count_working_days(d.replace(day=1), d) == 3 for d in days
    )
    # After Tết (to 2/2), the 30/4–4/5 days off and the National Day (1–2/9):
    assert date(2025, 2, 5) in days and date(2025, 5, 7) in days and date(2025, 9, 5) in days


def test_the_deployment_runs_on_those_days_for_the_previous_month(tmp_path):
    from flows.deployments import build_deployments, load_reference

    ref = load_reference(f"sqlite:///{tmp_path}/dunghan.db")  # the shipped 2025 plan
    (deployment,) = [d for d in build_deployments(ref) if d.flow_name == "monthly-scorecard"]
    assert (deployment.name, deployment.parameters) == ("Bảng đánh giá hằng tháng", {})
    runs = sorted(t for s in deployment.schedules for t in s.schedule.to_rrule())
    vietnam = ZoneInfo("Asia/Ho_Chi_Minh")
    assert {t.astimezone(vietnam).time() for t in runs} == {time(7, 45)}
    assert [t.astimezone(vietnam).date() for t in runs] == report_days(ref.cal, 2025)


def test_the_month_parameter():
    today = date(2025, 6, 4)
    assert check_month(None, today) == check_month("  ", today) == "2025-05"
    assert check_month("2025-5", today) == "2025-05"
    assert check_month("2024-12", today) == "2024-12"
    with pytest.raises(ParameterError, match="Tháng 6/2025 chưa kết thúc"):
        check_month("2025-06", today)
    with pytest.raises(ParameterError, match="Cần tháng dạng YYYY-MM"):
        check_month("05/2025", today)


@pytest.fixture(scope="module")
def plan():
    from deadlines.plan import load_plan

    return load_plan()


def card_of(plan, rows_, trend=None, late=(), month="2025-05") -> Scorecard:
    return build_scorecard(
        month, plan, lambda code: f"Tên {code}", rows_, trend or {}, late, date(2025, 6, 4)
    )


def kpi_row(agency: str, dossiers: int, on_time: float, month: str = "2025-05") -> dict:
    return {
        "agency": agency,
        "month": month,
        "dossiers": dossiers,
        "on_time_rate": on_time,
        "online_rate": 0.9,
        "digitized_rate": 1.0,
        "e_result_rate": 1.0,
        "online_payment_rate": None,
        "apology_rate": None if on_time == 1.0 else 0.5,
        "on_time_rate_766": on_time,
    }


def test_the_target_line_comes_from_the_plan(plan):
    rows_ = [kpi_row("A", 10, 0.92)]
    assert on_time_chart(card_of(plan, rows_)).target_x == 330 + 0.95 * 360
    targets = tuple(
        dataclasses.replace(t, value=0.9) if t.code == "on_time_rate" else t
        for t in plan.kpi_targets
    )
    lenient = dataclasses.replace(plan, kpi_targets=targets)
    card = card_of(lenient, rows_)
    assert on_time_chart(card).target_x == 330 + 0.9 * 360
    html = report_html(card)
    assert "Chỉ tiêu ≥ 90%" in html and "≥ 95%" not in html
    assert scorecard_table(card)[0]["Đúng hạn: chỉ tiêu ≥ 90%"] == "Đạt"


def test_without_an_on_time_target_there_is_no_line(plan):
    plain = dataclasses.replace(
        plan, kpi_targets=tuple(t for t in plan.kpi_targets if t.code != "on_time_rate")
    )
    card = card_of(plain, [kpi_row("A", 10, 0.92)])
    assert on_time_chart(card).target_x is None and trend_chart(card).target_y is None
    html = report_html(card)
    assert 'class="target"' not in html
    assert "Đúng hạn: chỉ tiêu" not in " ".join(scorecard_table(card)[0])


def test_the_province_trend_weighs_agencies_by_dossiers(plan):
    trend = {
        "2025-01": [kpi_row("A", 30, 1.0, "2025-01"), kpi_row("B", 10, 0.6, "2025-01")],
        "2025-03": [kpi_row("A", 5, 0.8, "2025-03")],
    }
    card = card_of(plan, [kpi_row("A", 1, 1.0), kpi_row("B", 3, 0.0)], trend, month="2025-05")
    assert [(m.month, m.dossiers, m.on_time_rate) for m in card.trend] == [
        ("2025-01", 40, 0.9),
        ("2025-02", 0, None),
        ("2025-03", 5, 0.8),
        ("2025-04", 0, None),
        ("2025-05", 4, 0.25),
    ]
    chart = trend_chart(card)
    assert [p.y is None for p in chart.points] == [False, True, False, True, False]
    # A month without dossiers breaks the line: three single points, no segment.
    assert chart.lines == ()
    # The scale ends on a tick a little below the lowest month (25%).
    assert [t.label for t in chart.ticks] == ["100%", "80%", "60%", "40%", "20%"]
    assert chart.ticks[-1].position == chart.bottom


def test_every_name_is_escaped(plan):
    hostile = '<img src=x onerror="alert(1)">'
    card = card_of(
        plan,
        [kpi_row("A", 2, 0.5)],
        late=[("A", hostile, 1, 1)],
    )
    card = dataclasses.replace(
        card,
        agencies=tuple(dataclasses.replace(a, name=f"Sở <b>&</b> {a.code}") for a in card.agencies),
    )
    html = report_html(card)
    assert hostile not in html and "<b>" not in html and "<img" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert "Sở &lt;b&gt;&amp;&lt;/b&gt; A" in html


def test_a_month_without_dossiers(plan):
    card = card_of(plan, [])
    html = report_html(card)
    assert "Tháng 5/2025 không có hồ sơ nào" in html
    assert "Không có hồ sơ trễ hạn trong tháng 5/2025." in html
    assert scorecard_table(card) == []


def test_the_late_list_keeps_the_officials_and_sums_the_agencies(plan):
    card = card_of(plan, [kpi_row(code, 1, 0.0) for code in NAMES], late=MAY_LATE)
    assert [(a.code, a.late, a.without_apology) for a in card.late_agencies] == [
        ("SO-XD", 2, 1),
        ("SO-TC", 1, 0),
        ("SO-TP", 1, 1),
    ]
    assert [line.handler for line in card.late][2] == NO_HANDLER


def test_the_report_is_replaced_whole(tmp_path):
    path = write_report_file(tmp_path, "2025-05", "<p>cũ</p>")
    assert write_report_file(tmp_path, "2025-05", "<p>mới</p>") == path
    assert path.read_text(encoding="utf-8") == "<p>mới</p>"
    assert [p.name for p in tmp_path.iterdir()] == ["scorecard-2025-05.html"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_agencies_are_ranked_by_on_time_rate(plan):
    card = card_of(plan, [kpi_row("B", 3, 0.5), kpi_row("A", 2, 0.5), kpi_row("C", 1, 1.0)])
    assert [a.code for a in card.agencies] == ["C", "A", "B"]
    assert card.on_time_rate == round((1.5 + 1 + 1) / 6, 4)
    assert [bar.label for bar in on_time_chart(card).bars] == ["Tên C", "Tên A", "Tên B"]
    assert report_html(card).count("<rect") == 3
