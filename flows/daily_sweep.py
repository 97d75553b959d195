"""The daily sweep (quét hạn hằng ngày): every obligation at once, the catch-all when an
obligation's own run was missed; it ends by delivering the day's mail.

07:30 in Vietnam, Monday to Saturday (some Saturdays are worked days); on a day off it
records why and does nothing unless forced.
"""

from __future__ import annotations

from collections.abc import Sequence

from prefect import flow
from prefect.runtime import flow_run

from flows.engine import EngineContext, SweepResult
from flows.parameters import check_agencies, check_day, parse_day
from flows.reports.artifacts import publish_sweep
from flows.reports.review import overdue_by_agency
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
)
def daily_sweep(
    date: str | None = None, force: bool = False, agencies: list[str] | None = None
) -> dict:
    """Sweep every obligation on `date` (YYYY-MM-DD, default today), for every agency or
    only the `agencies` given. On a day off nothing is evaluated unless `force` is set."""
    try:
        today = parse_day(date, "date")
        with opened_engine() as ctx:
            check_day(ctx, today, "date")
            agencies = check_agencies(ctx, agencies)
            result = sweep_deadlines(ctx, today, force=force, agencies=agencies)
            announce(ctx)
            if not result.skipped_reason:
                deliver_mail(ctx)
            report(ctx, result, agencies)
            return {"skipped": result.skipped_reason} if result.skipped_reason else result.counts
    except REFUSALS as refused:
        return refuse(refused)


@database_step("report")
def report(ctx: EngineContext, result: SweepResult, agencies: Sequence[str] | None) -> None:
    """A markdown summary and a table of overdue items per agency; on a day off, only
    the summary saying why (the last table of overdue items stays the latest)."""
    overdue = [] if result.skipped_reason else overdue_by_agency(ctx, result.run_date, agencies)
    publish_sweep(ctx, result, overdue, agencies)
