"""One plan obligation (nhiệm vụ) as its own flow: deployed once per obligation, scheduled
on the days its due dates and ladder steps fall, triggered by the events it waits for.

A run materialises the obligation's items, evaluates them against the escalation ladder,
records the steps reached, queues the notifications, announces the new escalations (and
any an earlier run recorded but could not announce) and publishes a table of the
obligation's items.
"""

from __future__ import annotations

from datetime import date

from prefect import flow
from prefect.runtime import flow_run

from deadlines.plan import Obligation as PlanObligation
from flows.engine import EngineContext
from flows.parameters import check_day, parse_day
from flows.reports.artifacts import publish_obligation_items
from flows.reports.review import obligation_items
from flows.steps import (
    REFUSALS,
    announce,
    database_step,
    opened_engine,
    refuse,
    sweep_deadlines,
)


def run_name() -> str:
    parameters = flow_run.parameters
    return f"{parameters['number']} — {parameters.get('date') or 'hôm nay'}"


@flow(
    name="obligation",
    flow_run_name=run_name,
    description="Một nhiệm vụ của kế hoạch: tạo việc, xét bậc đôn đốc, gửi thông báo, báo cáo.",
)
def obligation_flow(number: str, date: str | None = None, force: bool = False) -> dict:
    """Evaluate one obligation of the plan on `date` (YYYY-MM-DD, default today).

    On a day off nothing is evaluated unless `force` is set.
    """
    try:
        today = parse_day(date, "date")
        with opened_engine() as ctx:
            ob = ctx.obligation(number)
            check_day(ctx, today, "date")
            result = sweep_deadlines(ctx, today, force=force, numbers=[ob.number])
            announce(ctx)
            if result.skipped_reason:
                return {"skipped": result.skipped_reason}
            report_items(ctx, ob, today)
            return result.counts
    except REFUSALS as refused:
        return refuse(refused)


@database_step("report")
def report_items(ctx: EngineContext, ob: PlanObligation, today: date) -> str:
    """Publish the obligation's items (agency, due date, status, step reached)."""
    return publish_obligation_items(ctx, ob, obligation_items(ctx, ob.number, today), today)
