"""The daily sweep (quét hạn hằng ngày): every obligation at once, the catch-all when an
obligation's own run was missed; it ends by delivering the day's mail.

07:30 in Vietnam, Monday to Saturday (some Saturdays are worked days); on a day off it
records why and does nothing unless forced.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from prefect import flow
from prefect.runtime import flow_run
from pydantic import Field

from flows.engine import EngineContext, SweepResult
from flows.parameters import (
    AgencyCode,
    Force,
    RunDay,
    accepted,
    check_agencies,
    check_day,
    today_in_vietnam,
)
from flows.reports.artifacts import publish_plan_status, publish_sweep
from flows.reports.review import overdue_by_agency
from flows.reports.status import plan_status
from flows.states import day_off
from flows.steps import (
    REFUSALS,
    announce,
    database_step,
    deliver_mail,
    opened_engine,
    refuse,
    sweep_deadlines,
)


def run_name() -> str:
    return f"quét hạn {flow_run.parameters.get('date') or 'hôm nay'}"


@flow(
    name="daily-sweep",
    flow_run_name=run_name,
    description="Quét hạn hằng ngày cho mọi nhiệm vụ: tạo việc, đôn đốc, thông báo, báo cáo.",
    validate_parameters=False,
)
def daily_sweep(
    date: RunDay = None,
    force: Force = False,
    agencies: Annotated[
        list[AgencyCode] | None,
        Field(description="Chỉ quét các cơ quan này; để trống là mọi cơ quan."),
    ] = None,
):
    """Sweep every obligation on `date` (default today), for every agency or only the
    `agencies` given. On a day off nothing is evaluated unless `force` is set."""
    try:
        asked = accepted(daily_sweep, locals())
        today = asked.date or today_in_vietnam()
        with opened_engine() as ctx:
            check_day(ctx, today, "date")
            agencies = check_agencies(ctx, asked.agencies)
            result = sweep_deadlines(ctx, today, force=asked.force, agencies=agencies)
            announce(ctx)
            if not result.skipped_reason:
                deliver_mail(ctx)
            report(ctx, result, agencies)
            return day_off(result.skipped_reason) if result.skipped_reason else result.counts
    except REFUSALS as refused:
        return refuse(refused)


@database_step("report")
def report(ctx: EngineContext, result: SweepResult, agencies: Sequence[str] | None) -> None:
    """A markdown summary and a table of overdue items per agency, and after a sweep of
    the whole province the plan's status; on a day off, only the summary saying why (the
    last table of overdue items stays the latest)."""
    overdue = [] if result.skipped_reason else overdue_by_agency(ctx, result.run_date, agencies)
    publish_sweep(ctx, result, overdue, agencies)
    if not result.skipped_reason and agencies is None:
        publish_plan_status(ctx, plan_status(ctx, result.run_date), overdue_table=False)
