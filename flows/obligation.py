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
from flows.parameters import (
    OBLIGATION,
    Code,
    Force,
    PlanCode,
    RunDay,
    accepted,
    check_day,
    code_of,
    today_in_vietnam,
)
from flows.reports.artifacts import publish_obligation_items
from flows.reports.review import ItemView, obligation_items
from flows.states import day_off, obligation_state
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
    plan = f" ({code_of(parameters['plan'])})" if parameters.get("plan") else ""
    return f"{code_of(parameters['number'])}{plan} — {parameters.get('date') or 'hôm nay'}"


ObligationNumber = Code(OBLIGATION, "Nhiệm vụ của kế hoạch (số — tên).")


@flow(
    name="obligation",
    flow_run_name=run_name,
    description="Một nhiệm vụ của kế hoạch: tạo việc, xét bậc đôn đốc, gửi thông báo, báo cáo. "
    "Kết thúc «Đúng hạn» hoặc «Quá hạn» (nêu các cơ quan có việc quá hạn).",
    validate_parameters=False,
)
def obligation_flow(
    number: ObligationNumber, date: RunDay = None, force: Force = False, plan: PlanCode = None
):
    """Evaluate obligation `number` of plan `plan` (needed only when several loaded plans
    have that number) on `date` (default today); the run ends Đúng hạn, or Quá hạn naming
    the agencies whose items are overdue.

    On a day off nothing is evaluated unless `force` is set.
    """
    try:
        asked = accepted(obligation_flow, locals())
        today = asked.date or today_in_vietnam()
        with opened_engine() as ctx:
            ref = ctx.ref(asked.number, asked.plan)
            ob = ctx.obligation(ref.number, ref.plan)
            check_day(ctx, today, "date")
            result = sweep_deadlines(
                ctx, today, force=asked.force, numbers=[ob.number], plan=ref.plan
            )
            announce(ctx)
            if result.skipped_reason:
                return day_off(result.skipped_reason)
            views = report_items(ctx, ref.plan, ob, today)
            return obligation_state(ob.number, views, today, result.counts)
    except REFUSALS as refused:
        return refuse(refused)


@database_step("report")
def report_items(ctx: EngineContext, plan: str, ob: PlanObligation, today: date) -> list[ItemView]:
    """Publish the obligation's items (agency, due date, status, step reached)."""
    views = obligation_items(ctx, ob.number, today, plan)
    publish_obligation_items(ctx, ob, views, today, plan)
    return views
