"""One plan obligation (nhiệm vụ) as its own flow: deployed once per obligation, scheduled
on the days its due dates and ladder steps fall, triggered by the events it waits for.

A run materialises the obligation's items, evaluates them against the escalation ladder,
records the steps reached, queues the notifications, announces the new escalations and
publishes a table of the obligation's items.
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
    announce_escalations,
    database_step,
    opened_engine,
    refuse,
    sweep_deadlines,
)


def run_name() -> str:
    parameters = flow_run.parameters
    plan = f" ({parameters['plan']})" if parameters.get("plan") else ""
    return f"{parameters['number']}{plan} — {parameters.get('date') or 'hôm nay'}"


@flow(
    name="obligation",
    flow_run_name=run_name,
    description="Một nhiệm vụ của kế hoạch: tạo việc, xét bậc đôn đốc, gửi thông báo, báo cáo.",
)
def obligation_flow(
    number: str, date: str | None = None, force: bool = False, plan: str | None = None
) -> dict:
    """Evaluate obligation `number` of plan `plan` (its code; needed only when several
    loaded plans have that number) on `date` (YYYY-MM-DD, default today).

    On a day off nothing is evaluated unless `force` is set.
    """
    try:
        today = parse_day(date, "date")
        with opened_engine() as ctx:
            ref = ctx.ref(number, plan)
            ob = ctx.obligation(ref.number, ref.plan)
            check_day(ctx, today, "date")
            result = sweep_deadlines(ctx, today, force=force, numbers=[ob.number], plan=ref.plan)
            if result.skipped_reason:
                return {"skipped": result.skipped_reason}
            announce_escalations(ctx, today, result.escalations)
            report_items(ctx, ref.plan, ob, today)
            return result.counts
    except REFUSALS as refused:
        return refuse(refused)


@database_step("report")
def report_items(ctx: EngineContext, plan: str, ob: PlanObligation, today: date) -> str:
    """Publish the obligation's items (agency, due date, status, step reached)."""
    views = obligation_items(ctx, ob.number, today, plan)
    return publish_obligation_items(ctx, ob, views, today, plan)
