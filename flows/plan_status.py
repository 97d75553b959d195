"""The plan's status in Prefect's UI (tình hình kế hoạch): what the store knows, published
as artifacts and runs, so the UI shows the plan from its first minute.

`dunghan serve` runs it once when it starts (the year `make run` played, or whatever
happened while nobody served), and operators may run it by hand. It publishes, as of the
last sweep: the plan's status (markdown and progress bars against the plan's targets) and
the overdue table; then the history: each month's scorecard table, and one run of the
`obligation` flow per due date that has passed (tagged `history`, named "X.2 — hạn
21/03/2025"), ending Đúng hạn or Quá hạn like a live run — the Runs page becomes the
year's compliance timeline; and one `dunghan.escalation.history` event per ladder step
reached that no flow announced (the Event Feed shows the year's escalations; automations
made for `dunghan.escalation.reached` are not set off by the past). Publishing again adds
no second run for a due date, no second scorecard for a month already published, and no
second event for a step.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterTags,
)
from prefect.states import Completed, Failed

from flows import announce as announcements
from flows.engine import EngineContext
from flows.obligation import obligation_flow
from flows.parameters import Flag, OptionalDay, accepted, label, today_in_vietnam
from flows.reports.artifacts import publish_plan_status, reports_dir
from flows.reports.scorecard import months_of_year_until, scorecard_key
from flows.reports.status import DueOutcome, due_outcomes, last_sweep_day, plan_status
from flows.scorecard import measure_month, publish_table, write_report
from flows.states import LATE, ON_TIME
from flows.steps import REFUSALS, announce, database_step, opened_engine, refuse
from models.db import session_scope

HISTORY_TAG = "history"
PAGE = 200


@flow(
    name="plan-status",
    flow_run_name="tình hình kế hoạch",
    description="Tình hình thực hiện kế hoạch tính đến lần quét gần nhất: việc đang mở, đến hạn "
    "trong tuần, quá hạn theo bậc đôn đốc và theo cơ quan, chỉ số so với chỉ tiêu; cùng lịch "
    "sử: bảng đánh giá từng tháng, mỗi hạn đã qua của mỗi nhiệm vụ thành một lần chạy "
    "«Đúng hạn»/«Quá hạn».",
    validate_parameters=False,
)
def plan_status_flow(
    date: OptionalDay("Tình hình tính đến ngày này; để trống là ngày quét gần nhất.") = None,
    history: Flag(
        "Đưa cả lịch sử lên giao diện: bảng đánh giá các tháng, mỗi hạn đã qua thành một "
        "lần chạy (không tạo lại lần chạy đã có)."
    ) = True,
):
    """Publish the plan's status as of `date` (default: the last sweep's day) and, with
    `history`, the months' scorecards and the passed due dates as runs."""
    try:
        asked = accepted(plan_status_flow, locals())
        with opened_engine() as ctx:
            as_of = asked.date or last_day(ctx)
            status = read_status(ctx, as_of)
            published = {"as_of": as_of.isoformat(), "overdue": status.overdue_items}
            if asked.history:
                published["scorecards"] = publish_scorecards(ctx, as_of)
                published["due_dates"] = publish_due_dates(due_outcomes(ctx, as_of))
                published["escalation_events"] = record_past_escalations(ctx)
                published["announced"] = announce(ctx).announced
            return Completed(
                message=f"Tình hình ngày {as_of:%d/%m/%Y}: {status.open_items} việc đang mở, "
                f"{status.overdue_items} việc quá hạn.",
                data=published,
            )
    except REFUSALS as refused:
        return refuse(refused)


def last_day(ctx: EngineContext) -> date:
    return last_sweep_day(ctx) or today_in_vietnam()


@database_step("record the past escalations for the Event Feed")
def record_past_escalations(ctx: EngineContext) -> int:
    with session_scope(ctx.db) as session:
        return announcements.record_past_escalations(ctx, session)


@database_step("publish the plan's status")
def read_status(ctx: EngineContext, as_of: date):
    status = plan_status(ctx, as_of)
    publish_plan_status(ctx, status, overdue_table=True)
    return status


def publish_scorecards(ctx: EngineContext, as_of: date) -> list[str]:
    """The scorecard table (and HTML report, no email) of each month of the plan year up
    to `as_of`'s that has dossiers and no table yet; `as_of`'s month is measured again."""
    directory = reports_dir()
    months = months_of_year_until(f"{as_of:%Y-%m}")
    done = published_keys([scorecard_key(m) for m in months[:-1]])
    published = []
    for month in months:
        if scorecard_key(month) in done:
            continue
        card = measure_month(ctx, month, as_of)
        if card.dossiers:
            path, _ = write_report(card, Path(directory))
            published.append(publish_table(card, path))
    return published


def published_keys(keys: list[str]) -> set[str]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)), limit=len(keys) + 1
        )
    return {a.key for a in found}


@task(name="publish the passed due dates as runs", cache_policy=NO_CACHE)
def publish_due_dates(outcomes: list[DueOutcome]) -> int:
    """One finished run of the `obligation` flow per due date, unless published before."""
    with get_client(sync_client=True) as client:
        published = published_names(client)
        new = [
            o
            for o in outcomes
            # A run published before runs were tagged by plan counts for any plan.
            if not {(run_name(o), plan_tag(o.plan)), (run_name(o), None)} & published
        ]
        for outcome in new:
            record_outcome(client, outcome)
    get_run_logger().info(
        "Đã đưa %d hạn đã qua lên giao diện (%d đã có từ trước).",
        len(new),
        len(outcomes) - len(new),
    )
    return len(new)


def run_name(outcome: DueOutcome) -> str:
    return f"{outcome.number} — hạn {outcome.due:%d/%m/%Y}"


def plan_tag(code: str) -> str:
    return f"plan:{code}"


def published_names(client) -> set[tuple[str, str | None]]:
    """The history runs already published: (name, plan tag), as two plans may both have
    an "X.2" due on the same day."""
    names: set[tuple[str, str | None]] = set()
    runs_filter = FlowRunFilter(tags=FlowRunFilterTags(all_=[HISTORY_TAG]))
    flow_filter = FlowFilter(name=FlowFilterName(any_=[obligation_flow.name]))
    offset = 0
    while page := client.read_flow_runs(
        flow_filter=flow_filter, flow_run_filter=runs_filter, limit=PAGE, offset=offset
    ):
        names.update(
            (run.name, next((t for t in run.tags if t.startswith("plan:")), None)) for run in page
        )
        offset += len(page)
    return names


def record_outcome(client, outcome: DueOutcome) -> None:
    """A finished run in the state a live run would have ended in on the due date. It is
    dated now (the run's name and `date` parameter carry the due date): the UI's pages
    show the last days by default, and the history must be seen without searching."""
    end = Failed if outcome.is_late else Completed
    client.create_flow_run(
        obligation_flow,
        name=run_name(outcome),
        parameters={
            "number": label(outcome.number, outcome.title),
            "date": str(outcome.due),
            "plan": label(outcome.plan, outcome.plan_label),
        },
        tags=[HISTORY_TAG, plan_tag(outcome.plan), f"section:{outcome.section}"],
        state=end(name=LATE if outcome.is_late else ON_TIME, message=outcome.message()),
    )
