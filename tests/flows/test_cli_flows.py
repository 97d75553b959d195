"""`dunghan inspect`, `recompute`, `deployments write` and `serve` from a terminal: the
report, each change with its reason, the same deployments as prefect.yaml, and clear
errors with exit code 2 instead of tracebacks."""

from __future__ import annotations

import json
from datetime import date

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from flows.cli import app
from flows.engine import EngineContext, sweep
from flows.parameters import today_in_vietnam
from flows.serving import Registration
from models.db import session_scope
from models.tables import DeadlineItem

D = date.fromisoformat
DAY_OFF = (
    "overrides:\n  - {date: 2025-03-21, kind: off, name: Nghỉ theo quyết định của tỉnh, "
    "source: QĐ 99/QĐ-UBND}\n"
)


@pytest.fixture
def terminal(database_url, tmp_path, monkeypatch):
    """A CLI runner whose commands use a fresh database and the shipped calendar."""
    monkeypatch.setenv("DUNGHAN_DATABASE_URL", database_url)
    monkeypatch.setenv("DUNGHAN_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.delenv("DUNGHAN_CALENDAR_OVERRIDES", raising=False)
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(app, list(args))
        assert "Traceback" not in result.output
        return result

    return run


@pytest.fixture
def swept(database_url):
    ctx = EngineContext.open(database_url)
    sweep(ctx, D("2025-04-02"))
    yield ctx
    ctx.db.dispose()


def dues(ctx) -> list[tuple[int, date]]:
    with session_scope(ctx.db) as session:
        return session.execute(
            select(DeadlineItem.id, DeadlineItem.due).order_by(DeadlineItem.id)
        ).all()


def test_inspect_prints_the_report_and_writes_the_html(terminal, swept, tmp_path):
    result = terminal(
        "inspect", "--agency", "VP-UBND", "--section", "I", "--from", "2025-02-01",
        "--to", "2025-03-31", "--date", "2025-04-02",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Kiểm tra: Văn phòng Ủy ban nhân dân tỉnh Nghệ An (VP-UBND)"
    assert "mục I (Công tác chỉ đạo, điều hành)" in lines[1]
    assert any(line.split() == ["Quá", "hạn", "chưa", "hoàn", "thành", "3"] for line in lines)
    html = tmp_path / "reports" / "kiem-tra-vp-ubnd-i-2025-02-01-2025-03-31.html"
    assert lines[-1] == f"Báo cáo HTML: {html}"
    assert "I.3 Kế hoạch kiểm tra hoạt động KSTTHC năm 2025" in html.read_text(encoding="utf-8")


def test_the_report_escapes_what_it_shows(terminal, swept, tmp_path):
    with session_scope(swept.db) as session:
        item = session.scalars(
            select(DeadlineItem).where(DeadlineItem.agency_code == "SO-TP").limit(1)
        ).one()
        item.status, item.completed_on = "done", item.due
        item.evidence = "<script>alert(1)</script>"
    terminal("inspect", "--agency", "SO-TP", "--from", "2025-01-01", "--to", "2025-12-31")
    (html,) = (tmp_path / "reports").glob("*.html")
    page = html.read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "tình hình tính đến" in page and f"{today_in_vietnam():%-d/%-m/%Y}" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--agency", "SO-ABC", "--from", "2025-01-01", "--to", "2025-12-31"), "Mã cơ quan"),
        (("--agency", "SO-TP", "--from", "2025-13-01", "--to", "2025-12-31"), "--from không"),
        (("--agency", "SO-TP", "--from", "2025-06-01", "--to", "2025-01-31"), "Khoảng ngày"),
        (
            ("--agency", "SO-TP", "--from", "2025-01-01", "--to", "2025-12-31", "--section", "Q"),
            "Không có mục 'Q'",
        ),
    ],
)
def test_inspect_refuses_bad_options_with_a_message(terminal, args, message):
    result = terminal("inspect", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_recompute_prints_each_change_with_its_reason_once(terminal, swept, tmp_path, monkeypatch):
    before = dues(swept)
    overrides = tmp_path / "tinh.yaml"
    overrides.write_text(DAY_OFF, encoding="utf-8")
    monkeypatch.setenv("DUNGHAN_CALENDAR_OVERRIDES", str(overrides))

    preview = terminal("recompute", "--date", "2025-03-10", "--dry-run")
    assert preview.exit_code == 0, preview.output
    assert "Chạy thử: chưa ghi thay đổi nào." in preview.output
    assert dues(swept) == before

    result = terminal("recompute", "--date", "2025-03-10")
    lines = result.output.splitlines()
    moved = [line for line in lines if line.startswith("  Việc ") and "→" in line]
    assert moved and all(line.endswith("21/03/2025 → 20/03/2025") for line in moved)
    reasons = [line for line in lines if line.strip().startswith("Lý do:")]
    assert len(reasons) == len(moved)
    assert all("ngày nghỉ — Nghỉ theo quyết định của tỉnh" in line for line in reasons)
    assert lines[0].startswith(f"Tính lại hạn ngày 10/03/2025: đã xét {len(before)} việc")
    assert f"{len(moved)} việc đổi hạn" in lines[0]
    after = dues(swept)
    assert sum(1 for old, new in zip(before, after, strict=True) if old != new) == len(moved)

    again = terminal("recompute", "--date", "2025-03-10")
    assert "0 việc đổi hạn, 0 việc không còn kỳ tương ứng" in again.output
    assert dues(swept) == after


def test_deployments_write_generates_what_serve_serves(terminal, tmp_path, monkeypatch):
    output = tmp_path / "prefect.yaml"
    result = terminal("deployments", "write", "--output", str(output))
    assert result.exit_code == 0, result.output
    specs = yaml.safe_load(output.read_text(encoding="utf-8"))["deployments"]
    scheduled = sum(1 for d in specs if d["schedules"])
    triggered = sum(1 for d in specs if d.get("triggers"))
    assert result.output.strip() == (
        f"Đã ghi {output}: {len(specs)} deployment ({scheduled} có lịch chạy, "
        f"{triggered} chạy khi ghi nhận sự kiện)."
    )
    assert triggered == 5 and scheduled > 15
    written = [d["name"] for d in specs]

    served = []

    async def serve(deployments, *, limit, first_run, announce):
        served.extend(deployments)
        announce(Registration({}, written=len(deployments), kept=0, seconds=0.0))

    monkeypatch.setattr("flows.serving.serve", serve)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    result = terminal("serve", "--keep-stale")
    assert result.exit_code == 0, result.output
    assert [d.name for d in served] == written
    assert f"Sẵn sàng: {len(written)} deployment đã đăng ký" in result.output


def test_serve_refuses_without_a_prefect_api(terminal, monkeypatch):
    monkeypatch.setattr("flows.serving.serve", lambda *_, **__: pytest.fail("served"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_PROFILES_PATH", "/nonexistent/profiles.toml")
    result = terminal("serve")
    assert result.exit_code == 2
    assert "Chưa cấu hình Prefect API" in result.output


def test_items_json_can_be_scripted(terminal, database_url):
    ctx = EngineContext.open(database_url)
    sweep(ctx, D("2025-07-01"))
    ctx.db.dispose()
    result = terminal("items", "--json", "--agency", "XA-17935", "--date", "2025-07-01")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    # Nam Đàn's commune inherited the district's overdue June report and owes its own
    # reports from July: every row says which, with its period and due date.
    june = [r for r in rows if r["number"] == "X.2" and r["period"] == "2025-06"]
    assert len(june) == 1
    assert june[0] | {"id": 0} == {
        "id": 0,
        "plan": "nghe-an-2025-kstthc",
        "number": "X.2",
        "title": "Báo cáo công tác cải cách TTHC hằng tháng",
        "agency": "XA-17935",
        "agency_name": "UBND xã Nam Đàn",
        "original_agency": "HUYEN-NAM-DAN",
        "period": "2025-06",
        "due": "2025-06-20",
        "status": "open",
        "overdue": True,
        "working_days_left": -7,  # 23/6 to 1/7
        "completed_on": None,
        "evidence": None,
    }
    july = next(r for r in rows if r["number"] == "X.2" and r["period"] == "2025-07")
    assert (july["due"], july["original_agency"], july["overdue"]) == ("2025-07-22", None, False)
    assert [r["due"] for r in rows] == sorted(r["due"] for r in rows)
    overdue = terminal("items", "--json", "--status", "overdue", "--date", "2025-07-01")
    assert all(r["overdue"] for r in json.loads(overdue.output))


def test_event_record_with_a_function_sends_the_item_to_the_functions_holder(terminal):
    code = "nhan-duoc-quyet-dinh-cong-bo-tthc-cua-bo-truong-cac-bo-nganh-trung-uong"
    result = terminal(
        "event", "record", "--event", code, "--agency", "SO-LDTBXH", "--on", "2025-03-10",
        "--document", "9/QĐ-BLĐTBXH", "--function", "bao-tro-xa-hoi",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Sở Y tế tỉnh Nghệ An, hạn 13/03/2025" in result.output
    bad = terminal(
        "event", "record", "--event", code, "--agency", "SO-YT", "--on", "2025-03-10",
        "--function", "y-te",
    )  # fmt: skip
    assert bad.exit_code == 2 and "Lĩnh vực không hợp lệ: 'y-te'" in bad.output
