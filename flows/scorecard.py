"""The monthly scorecard as a Prefect flow: measure the month → write the report → publish
the table → email it to the provincial office. What it computes and renders lives in
`flows.reports.scorecard`; the terminal command (`dunghan scorecard`) runs the same steps.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.engine import EngineContext
from flows.parameters import PLAN, Code, Text, accepted, today_in_vietnam
from flows.reports.artifacts import percent, reports_dir
from flows.reports.scorecard import (
    Scorecard,
    check_month,
    measure,
    queue_email,
    report_html,
    scorecard_key,
    scorecard_table,
    summary,
    write_report_file,
)
from flows.steps import REFUSALS, database_step, opened_engine, refuse
from models.db import session_scope

# ------------------------------------------------------------------------ the flow


@database_step("measure the month")
def measure_month(
    ctx: EngineContext, month: str, today: date, plan: str | None = None
) -> Scorecard:
    """The month's KPIs per agency, the year's on-time trend and the late list."""
    with session_scope(ctx.db) as session:
        card = measure(ctx, session, month, today, plan)
    get_run_logger().info(
        "Tháng %s: %d cơ quan, %d hồ sơ, đúng hạn %s.",
        card.label,
        len(card.agencies),
        card.dossiers,
        percent(card.on_time_rate),
    )
    return card


@task(name="write the HTML report", cache_policy=NO_CACHE)
def write_report(card: Scorecard, directory: Path) -> tuple[Path, str]:
    html = report_html(card)
    path = write_report_file(directory, card.month, html)
    get_run_logger().info("Đã ghi báo cáo %s.", path)
    return path, html


@task(name="publish the scorecard table", cache_policy=NO_CACHE)
def publish_table(card: Scorecard, path: Path) -> str:
    key = scorecard_key(card.month)
    create_table_artifact(
        table=scorecard_table(card),
        key=key,
        description=f"Bảng đánh giá giải quyết TTHC tháng {card.label}. {summary(card)} "
        f"Báo cáo HTML: {path}",
    )
    return key


@database_step("email the report to the provincial office")
def email_report(
    ctx: EngineContext, card: Scorecard, html: str, path: Path
) -> tuple[str | None, int]:
    with session_scope(ctx.db) as session:
        recipient, queued = queue_email(ctx, session, card, html, path)
    logger = get_run_logger()
    if recipient is None:
        logger.warning("Danh bạ không có địa chỉ email của Văn phòng UBND tỉnh: không gửi thư.")
    elif queued:
        logger.info("Đã đưa thư báo cáo tháng %s gửi %s vào hàng đợi.", card.label, recipient)
    else:
        logger.info("Thư báo cáo tháng %s đã có trong hàng đợi; không gửi lại.", card.label)
    return recipient, queued


def run_name() -> str:
    return f"bảng đánh giá {flow_run.parameters.get('month') or 'tháng trước'}"


@flow(
    name="monthly-scorecard",
    flow_run_name=run_name,
    description="Bảng đánh giá giải quyết TTHC hằng tháng: chỉ số theo cơ quan so với chỉ "
    "tiêu, danh sách chậm muộn (mục V.7), báo cáo HTML gửi Văn phòng UBND tỉnh.",
    validate_parameters=False,
)
def monthly_scorecard(
    month: Text("Tháng cần đánh giá, dạng YYYY-MM, ví dụ 2025-05; để trống là tháng trước.")
    | None = None,
    output_dir: Text("Thư mục ghi báo cáo HTML; để trống là var/reports.") | None = None,
    plan: Code(
        PLAN,
        "Kế hoạch có chỉ tiêu dùng để so (mã — tên); để trống là kế hoạch của tháng đó.",
        optional=True,
    ) = None,
):
    """The scorecard of `month` (YYYY-MM; default the previous month, in Vietnam): a table
    artifact `scorecard-YYYY-MM`, the HTML report in `output_dir` (default var/reports, or
    DUNGHAN_REPORTS_DIR) and its email to the provincial office. The targets are those of
    plan `plan` (its code; default the plan in force in the month). A rerun rewrites the
    report and the artifact and queues no second email."""
    today = today_in_vietnam()
    try:
        asked = accepted(monthly_scorecard, locals())
        wanted = check_month(asked.month, today)
        directory = Path(asked.output_dir) if asked.output_dir else reports_dir()
        with opened_engine() as ctx:
            card = measure_month(ctx, wanted, today, asked.plan)
            path, html = write_report(card, directory)
            key = publish_table(card, path)
            recipient, queued = email_report(ctx, card, html, path)
    except REFUSALS as refused:
        return refuse(refused)
    return {
        "month": wanted,
        "html": str(path),
        "artifact": key,
        "dossiers": card.dossiers,
        "on_time_rate": card.on_time_rate,
        "recipient": recipient,
        "emailed": queued,
    }
