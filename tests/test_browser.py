"""What the operator sees, in a real browser: `dunghan serve --local` on a database where the
plan was played from 24/2 to 2/4/2025 with 3,000 sample dossiers, then headless Chromium
opens Prefect's UI: the dashboard, the plan's status with its progress bars, the overdue
table, a late obligation's run, the escalations in the Event Feed and the inspection
form's agency dropdown.

Needs Debian's `chromium` (`.ci/run` installs it); driven by Playwright's Python package
with that executable (no browser downloaded). Marked `browser`: `pytest -m "not browser"`
leaves it out. With DUNGHAN_SCREENSHOTS=docs/img the screenshots of docs/operators.md are
written there.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flows.engine import EngineContext
from flows.samples import generate_dossiers, read_procedures, write_csv
from flows.simulate import simulate
from models.dossier_import import import_dossiers, import_procedures
from models.tables import DeadlineItem, ItemStatus
from tests.flows.prefect_support import rows

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVE = (sys.executable, "-c", "from flows.cli import main; main()", "serve", "--local")
PLAYED_FROM = date(2025, 2, 24)  # the plan's first sweep
SWEPT = date(2025, 4, 2)
SAMPLE_PROCEDURES = ROOT / "plans" / "sample-procedures.csv"
READY_SECONDS = 300
WAIT_MS = 60_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`dunghan serve --local` on a database swept on 2/4/2025, once its plan-status run
    has finished; yields (UI address, database URL)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (as .ci/run does)")
    base = tmp_path_factory.mktemp("served")
    url = f"sqlite:///{base}/dunghan.db"
    ctx = EngineContext.open(url)
    try:
        dossiers = base / "dossiers.csv"
        write_csv(
            generate_dossiers(
                3_000,
                read_procedures(SAMPLE_PROCEDURES),
                ctx.registry,
                ctx.cal,
                ctx.one_stop,
                start=date(2025, 3, 3),
                end=SWEPT,
            ),
            dossiers,
        )
        import_procedures(ctx.db, SAMPLE_PROCEDURES)
        import_dossiers(ctx.db, dossiers, ctx.cal, ctx.one_stop)
        simulate(ctx, PLAYED_FROM, SWEPT)
    finally:
        ctx.db.dispose()
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(base / "prefect"),
        "DUNGHAN_DATABASE_URL": url,
        "DUNGHAN_REPORTS_DIR": str(base / "reports"),
        "DUNGHAN_OUTBOX_DIR": str(base / "outbox"),
        "DO_NOT_TRACK": "1",
    }
    env.pop("PREFECT_API_URL", None)
    log = (base / "serve.log").open("w+", encoding="utf-8")
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from flows.cli import main; main()",
            "serve",
            "--local",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    ui = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: "Sẵn sàng" in (base / "serve.log").read_text(), "serving", process)
        with api(ui):
            wait_for(lambda: status_run(ui) == "COMPLETED", "the plan-status run", process)
        yield ui, url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def wait_for(condition, what: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"`dunghan serve --local` stopped before {what} ({process.returncode})")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not ready after {READY_SECONDS} s")
        time.sleep(1)


def api(ui: str):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings(updates={PREFECT_API_URL: f"{ui}/api"})


def status_run(ui: str) -> str | None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["plan-status"]))
        )
    return runs[0].state.type.value if runs else None


@pytest.fixture(scope="module")
def page(served, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            args=FLAGS,
            headless=True,
            viewport={"width": 1440, "height": 900},
            locale="vi-VN",
            timezone_id="Asia/Ho_Chi_Minh",
        )
        browser.set_default_timeout(WAIT_MS)
        yield browser.new_page()
        browser.close()


def screenshot(page, name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    page.screenshot(path=path)
    assert path.stat().st_size > 10_000  # a page, not a blank
    if folder := os.environ.get("DUNGHAN_SCREENSHOTS"):
        shutil.copy(path, Path(folder) / name)


def latest(ui: str, key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with api(ui), get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    return max(found, key=lambda a: a.created)


def test_the_dashboard_counts_late_and_on_time_runs(served, page, tmp_path):
    ui, _ = served
    page.goto(f"{ui}/dashboard")
    page.get_by_text("Flow Runs").first.wait_for()
    page.get_by_text("obligation").first.wait_for()
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(2_000)  # the bars are drawn after the counts
    screenshot(page, "dashboard.png", tmp_path)


def test_the_overdue_table_shows_each_agency_s_overdue_items(served, page, tmp_path):
    ui, url = served
    artifact = latest(ui, "daily-sweep-overdue")
    page.goto(f"{ui}/artifacts/artifact/{artifact.id}")
    overdue = dict(
        rows(
            url,
            select(DeadlineItem.agency_code, func.count())
            .where(DeadlineItem.status == ItemStatus.OPEN, DeadlineItem.due < SWEPT)
            .group_by(DeadlineItem.agency_code),
        )
    )
    assert overdue, "the played weeks leave overdue items"
    code = max(overdue, key=lambda c: (overdue[c], c))  # the agency most behind
    page.get_by_role("row").filter(has_text=code).first.wait_for()
    (cells,) = [
        texts
        for row in page.get_by_role("row").filter(has_text=code).all()
        if (texts := row.get_by_role("cell").all_inner_texts())[1:2] == [code]
    ]
    assert cells[1:3] == [code, str(overdue[code])]
    assert cells[0].strip()  # the agency's name
    assert page.get_by_text("ngày 02/04/2025").first.is_visible()
    screenshot(page, "overdue-table.png", tmp_path)


def test_a_late_obligation_run_says_quá_hạn_and_names_the_agencies(served, page, tmp_path):
    ui, _ = served
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with api(ui), get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["X.2 — hạn 21/03/2025"]))
        )
    page.goto(f"{ui}/runs/flow-run/{run.id}")
    page.get_by_text("X.2 — hạn 21/03/2025").first.wait_for()
    page.get_by_text("Quá hạn", exact=True).first.wait_for()
    page.get_by_text("Details", exact=True).first.click()
    page.get_by_text("State Message").first.wait_for()
    message = page.get_by_text("Nhiệm vụ X.2, hạn 21/03/2025:").first
    message.wait_for()
    assert "việc không hoàn thành đúng hạn" in message.inner_text()
    screenshot(page, "late-obligation-run.png", tmp_path)


def test_the_inspection_form_offers_the_agencies_by_code_and_name(served, page, tmp_path):
    ui, _ = served
    from prefect.client.orchestration import get_client

    with api(ui), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("inspect/Kiểm tra")
    page.goto(f"{ui}/deployments/deployment/{deployment.id}/run")
    page.get_by_text("Cơ quan được kiểm tra (mã — tên).").wait_for()
    page.get_by_text("Xét các việc có hạn từ ngày này.").wait_for()
    agency = page.locator(".schema-form-property").filter(has_text="Cơ quan được kiểm tra")
    agency.locator("button").filter(has_not_text="⋮").last.click()
    page.keyboard.press("ArrowDown")  # opens the list of choices
    page.get_by_role("listbox").locator("input[type=search]").fill("Tư pháp")
    option = page.get_by_role("option").filter(has_text="SO-TP — Sở Tư pháp tỉnh Nghệ An")
    option.wait_for()
    option.hover()
    screenshot(page, "inspection-form.png", tmp_path)


def test_the_plan_status_run_shows_the_progress_against_the_targets(served, page, tmp_path):
    ui, _ = served
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with api(ui), get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["plan-status"]))
        )
    page.goto(f"{ui}/runs/flow-run/{run.id}?tab=Artifacts")
    page.get_by_text("Artifacts", exact=True).first.click()
    on_time = latest(ui, "plan-items-on-time")
    page.get_by_text(on_time.description).first.wait_for()
    page.wait_for_load_state("networkidle")
    # The artifacts' cards at the top of the window: the bars against the targets.
    page.get_by_text("Task runs", exact=True).first.evaluate("e => e.scrollIntoView()")
    page.wait_for_timeout(1_000)
    screenshot(page, "plan-status.png", tmp_path)


def test_the_event_feed_shows_the_plan_s_escalations(served, page, tmp_path):
    ui, url = served
    from models.tables import Escalation

    (reached,) = rows(url, select(func.count()).select_from(Escalation))[0]
    assert reached > 0
    page.goto(f"{ui}/events")
    first = page.get_by_text("dunghan.escalation.history").first
    first.wait_for()
    first.evaluate("e => e.closest('.event-timeline-item, li, article, div').scrollIntoView()")
    page.wait_for_timeout(1_000)
    screenshot(page, "event-feed.png", tmp_path)
