"""The ad hoc flows an administrator runs with parameters from the Prefect UI:
record an event, complete an item, inspect an agency (kiểm tra), recompute due dates.

Each checks its parameters first and refuses a bad one with a Vietnamese message; the
database work is one task with retries; what it did is published as an artifact.
"""

from __future__ import annotations

from datetime import date as Date

from prefect import flow, get_run_logger
from sqlalchemy import select

from flows import engine
from flows.engine import CompletionResult, EngineContext, EventResult
from flows.parameters import (
    AGENCY,
    EVENT,
    SECTION,
    Code,
    Day,
    Flag,
    Number,
    OptionalDay,
    ParameterError,
    PlanCode,
    RunDay,
    Text,
    accepted,
    check_day,
    check_range,
    today_in_vietnam,
)
from flows.reports.artifacts import (
    event_markdown,
    inspection_lines,
    publish_inspection,
    publish_recompute,
    publish_recorded_event,
    recompute_lines,
    reports_dir,
    write_inspection_html,
)
from flows.reports.review import ComplianceReport, RecomputeResult, compliance_report, recompute
from flows.steps import REFUSALS, announce, database_step, opened_engine, refuse
from models.db import session_scope
from models.tables import DeadlineItem, ItemStatus

# ------------------------------------------------------------------- record event


@flow(
    name="record-event",
    flow_run_name="sự kiện {event_code} — {agency}",
    description="Ghi nhận một sự kiện làm phát sinh hạn xử lý.",
    validate_parameters=False,
)
def record_event_flow(
    event_code: Code(EVENT, "Loại sự kiện (mã — mô tả), ví dụ nhận được quyết định công bố TTHC."),
    agency: Code(AGENCY, "Cơ quan nhận hoặc thực hiện sự kiện (mã — tên)."),
    date: OptionalDay("Ngày sự kiện xảy ra (ngày của văn bản); để trống là hôm nay.") = None,
    document: Text("Số, ký hiệu văn bản, ví dụ QĐ 1234/QĐ-BTP.") = "",
    description: Text("Mô tả ngắn, ví dụ: Quyết định công bố TTHC lĩnh vực hộ tịch.") = "",
):
    """Record that `event_code` happened to `agency` on `date` (default today), with its
    document number; create the items it starts and announce it (once, also when a
    rerun follows a run that died before announcing), so the obligations waiting for it
    run."""
    try:
        asked = accepted(record_event_flow, locals())
        occurred_on = asked.date or today_in_vietnam()
        event_code, document, description = asked.event_code, asked.document, asked.description
        with opened_engine() as ctx:
            check_event_code(ctx, event_code)
            agency = ctx.agency(asked.agency).code
            check_day(ctx, occurred_on, "date")
            result = store_event(ctx, event_code, agency, occurred_on, document, description)
            items = event_items(ctx, result.event_id)
            announce(ctx)
            publish_recorded_event(
                event_markdown(ctx, result, event_code, agency, occurred_on, items),
                f"Sự kiện {event_code} — {ctx.agency_name(agency)}, {occurred_on:%d/%m/%Y}",
            )
            return {
                "event_id": result.event_id,
                "already_recorded": result.already_recorded,
                "obligations": [list(ref) for ref in result.obligations],
                "created_items": result.created_items,
            }
    except REFUSALS as refused:
        return refuse(refused)


def check_event_code(ctx: EngineContext, event_code: str) -> None:
    known = engine.event_types(ctx)
    if event_code not in known:
        listing = "\n".join(f"  {code}: {desc}" for code, (desc, _) in sorted(known.items()))
        raise ParameterError(
            f"Loại sự kiện không hợp lệ: '{event_code}'. Các loại hợp lệ:\n{listing}"
        )


@database_step("store the event and create its items")
def store_event(
    ctx: EngineContext,
    event_code: str,
    agency: str,
    occurred_on: Date,
    document: str,
    description: str,
) -> EventResult:
    return engine.record_event(
        ctx, event_code, agency, occurred_on, document, description, actor="prefect", announce=True
    )


@database_step("read the event's items")
def event_items(ctx: EngineContext, event_id: int) -> list[tuple[int, str, Date]]:
    with session_scope(ctx.db) as session:
        rows = session.execute(
            select(DeadlineItem.id, DeadlineItem.agency_code, DeadlineItem.due)
            .where(DeadlineItem.event_id == event_id)
            .order_by(DeadlineItem.due, DeadlineItem.id)
        ).all()
    return [tuple(row) for row in rows]


# ------------------------------------------------------------------ complete item


@flow(
    name="complete-item",
    flow_run_name="hoàn thành việc {item_id}",
    description="Ghi nhận một việc đã hoàn thành, kèm bằng chứng.",
    validate_parameters=False,
)
def complete_item_flow(
    item_id: Number("Mã việc (cột «Việc» của bảng một nhiệm vụ, hoặc `dunghan items`).", minimum=1),
    date: OptionalDay("Ngày hoàn thành; để trống là hôm nay.") = None,
    evidence: Text(
        "Bằng chứng hoàn thành (bắt buộc): số văn bản, ví dụ Công văn 45/STP-VP.",
        required="cần ghi bằng chứng hoàn thành, ví dụ số văn bản",
    ) = "",
):
    """Mark item `item_id` done on `date` (default today) with its evidence (a document
    number); done after the due date is kept as done late."""
    try:
        asked = accepted(complete_item_flow, locals())
        item_id, done_on, evidence = asked.item_id, asked.date or today_in_vietnam(), asked.evidence
        with opened_engine() as ctx:
            check_day(ctx, done_on, "date")
            result = complete(ctx, item_id, done_on, evidence)
            late = "trễ hạn" if result.status == ItemStatus.DONE_LATE else "đúng hạn"
            get_run_logger().info(
                "%s: việc %d hoàn thành %s ngày %s (hạn %s).",
                "Đã ghi nhận" if result.changed else "Đã ghi nhận từ trước",
                result.item_id,
                late,
                f"{done_on:%d/%m/%Y}",
                f"{result.due:%d/%m/%Y}",
            )
            return {
                "item_id": result.item_id,
                "status": result.status,
                "due": result.due.isoformat(),
                "completed_on": result.completed_on.isoformat(),
                "changed": result.changed,
            }
    except REFUSALS as refused:
        return refuse(refused)


@database_step("record the completion")
def complete(ctx: EngineContext, item_id: int, done_on: Date, evidence: str) -> CompletionResult:
    return engine.complete_item(ctx, item_id, done_on, evidence, actor="prefect")


# ------------------------------------------------------------------------ inspect


@flow(
    name="inspect",
    flow_run_name="kiểm tra {agency}: {from_date} — {to_date}",
    description="Kiểm tra việc thực hiện kế hoạch của một cơ quan.",
    validate_parameters=False,
)
def inspect_flow(
    agency: Code(AGENCY, "Cơ quan được kiểm tra (mã — tên)."),
    from_date: Day("Xét các việc có hạn từ ngày này."),
    to_date: Day("… đến ngày này."),
    section: Code(
        SECTION,
        "Chỉ xét một mục của kế hoạch, ví dụ X hoặc B.III; để trống là toàn kế hoạch "
        "(khi có nhiều kế hoạch, mục cần kế hoạch).",
        optional=True,
    ) = None,
    date: OptionalDay("Tình hình tính đến ngày này; để trống là hôm nay.") = None,
    plan: PlanCode = None,
):
    """A compliance report for `agency` on the items due from `from_date` to `to_date` of
    plan `plan` (default every loaded plan), in its `section` (e.g. "X", "B.III"; default
    all), as of `date` (default today): a markdown artifact and an HTML file under
    var/reports/."""
    try:
        asked = accepted(inspect_flow, locals())
        start, end = asked.from_date, asked.to_date
        as_of = asked.date or today_in_vietnam()
        check_range(start, end)
        with opened_engine() as ctx:
            agency = ctx.agency(asked.agency).code
            report = inspect(ctx, agency, start, end, as_of, asked.section, asked.plan)
            path = write_inspection_html(report, reports_dir())
            publish_inspection(report, path)
            logger = get_run_logger()
            for line in inspection_lines(report):
                logger.info(line)
            return {"html": str(path), "total": report.total, **report.counts}
    except REFUSALS as refused:
        return refuse(refused)


@database_step("read the agency's items")
def inspect(
    ctx: EngineContext,
    agency: str,
    start: Date,
    end: Date,
    as_of: Date,
    section: str | None,
    plan: str | None = None,
) -> ComplianceReport:
    return compliance_report(ctx, agency, start, end, as_of, section, plan)


# ---------------------------------------------------------------------- recompute


@flow(
    name="recompute",
    flow_run_name="tính lại hạn",
    description="Tính lại hạn các việc đang mở sau khi đổi lịch hoặc quy tắc.",
    validate_parameters=False,
)
def recompute_flow(
    date: RunDay = None,
    dry_run: Flag("Chỉ báo cáo hạn cũ → hạn mới, không ghi thay đổi.") = False,
):
    """Recompute the due dates of open items from their obligation's current rule and
    the current calendar (after a calendar or rule change); report each change, old →
    new and why. With `dry_run`, report without changing anything."""
    try:
        asked = accepted(recompute_flow, locals())
        today = asked.date or today_in_vietnam()
        with opened_engine() as ctx:
            check_day(ctx, today, "date")
            result = recompute_dues(ctx, today, asked.dry_run)
            publish_recompute(result)
            logger = get_run_logger()
            for line in recompute_lines(result):
                logger.info(line)
            return {
                "checked": result.checked,
                "moved": len(result.moved),
                "orphans": len(result.orphans),
                "dry_run": result.dry_run,
            }
    except REFUSALS as refused:
        return refuse(refused)


@database_step("recompute the open items' due dates")
def recompute_dues(ctx: EngineContext, today: Date, dry_run: bool) -> RecomputeResult:
    return recompute(ctx, today, dry_run=dry_run, actor="prefect")
