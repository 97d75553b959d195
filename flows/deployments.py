"""Every deployment dunghan runs, built from the loaded plan: one per obligation, the daily
sweep, and the ad hoc admin flows.

`dunghan serve` serves exactly `build_deployments(...)`; `dunghan deployments write` writes
the same list to prefect.yaml (`prefect_yaml`), so the two cannot drift apart.

An obligation's deployment runs at 07:45 in Vietnam on the days its due dates and ladder
steps fall in the plan year (after the 07:30 daily sweep), and, if it waits for an event
that starts a due date, whenever recording such an event emits `dunghan.event.recorded`.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path

import yaml
from prefect import Flow
from prefect import __version__ as prefect_version
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.schedules import CronSchedule, RRuleSchedule
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron, Schedule
from prefect.types.names import BANNED_CHARACTERS

from deadlines.agencies import load_registry
from deadlines.calendar import WorkCalendar
from deadlines.ladder import Ladder, load_ladder
from deadlines.plan import Obligation as PlanObligation
from deadlines.plan import Plan, load_plan, rule_parts
from flows.admin import complete_item_flow, inspect_flow, recompute_flow, record_event_flow
from flows.daily_sweep import daily_sweep
from flows.engine import LADDER_ENV, PLAN_ENV, REGISTRY_ENV
from flows.obligation import obligation_flow
from flows.outbox_flow import deliver_outbox
from flows.parameters import TIMEZONE
from flows.reports.review import obligation_dues, obligation_section
from flows.reports.scorecard import report_days
from flows.scorecard import monthly_scorecard
from flows.steps import EVENT_RECORDED

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORK_POOL = "dunghan"
PAGE = 200  # deployments read per request when looking for stale ones

OBLIGATION_RUN_AT = time(7, 45)
DAILY_SWEEP_CRON = "30 7 * * 1-6"  # Saturdays too: some are worked days (ngày làm bù)
# Every ten minutes: retries with backoff and ad hoc confirmations go out without waiting
# for the next daily sweep.
OUTBOX_CRON = "*/10 * * * *"

# Prefect caps an RRULE string at 6500 characters; 300 dates take about 4800.
DATES_PER_SCHEDULE = 300

# Deployment names may not contain these; "QĐ 766/QĐ-TTg" becomes "QĐ 766-QĐ-TTg".
NAME_REPLACEMENTS = {"/": "-", "&": "và", "%": " phần trăm", "<": "", ">": ""}
assert set(NAME_REPLACEMENTS) == set(BANNED_CHARACTERS)

DAILY_SWEEP_NAME = "Quét hạn hằng ngày"
SCORECARD_NAME = "Bảng đánh giá hằng tháng"
OUTBOX_NAME = "Gửi thư trong hàng đợi"
ADMIN_DEPLOYMENTS = (
    (record_event_flow, "Ghi nhận sự kiện"),
    (complete_item_flow, "Ghi nhận hoàn thành"),
    (inspect_flow, "Kiểm tra"),
    (recompute_flow, "Tính lại hạn"),
)
FLOWS: tuple[Flow, ...] = (
    obligation_flow,
    daily_sweep,
    monthly_scorecard,
    deliver_outbox,
    *(f for f, _ in ADMIN_DEPLOYMENTS),
)


@dataclass(frozen=True)
class Reference:
    """What the deployments are built from: the plan, the calendar, the ladder."""

    plan: Plan
    cal: WorkCalendar
    ladder: Ladder


def load_reference() -> Reference:
    """The configured plan, calendar and ladder: the files `EngineContext.open` loads
    (`DUNGHAN_PLAN_FILE`, `DUNGHAN_REGISTRY_FILE`, `DUNGHAN_LADDER_FILE`,
    `DUNGHAN_CALENDAR_OVERRIDES`, else the shipped ones), without opening the database."""
    registry = load_registry(os.environ.get(REGISTRY_ENV) or None)
    return Reference(
        plan=load_plan(os.environ.get(PLAN_ENV) or None, registry=registry),
        cal=WorkCalendar.from_settings(),
        ladder=load_ladder(os.environ.get(LADDER_ENV) or None),
    )


# --------------------------------------------------------------- one obligation


def deployment_name(ob: PlanObligation) -> str:
    """The plan number and short title: "X.2 Báo cáo công tác cải cách TTHC hằng tháng"."""
    name = f"{ob.number} {ob.title}"
    for banned, replacement in NAME_REPLACEMENTS.items():
        name = name.replace(banned, replacement)
    return " ".join(name.split())


def obligation_tags(ob: PlanObligation) -> list[str]:
    return [f"section:{obligation_section(ob)}", *dict.fromkeys(ob.lead)]


def schedule_days(ref: Reference, ob: PlanObligation) -> list[date]:
    """The days an obligation's run has something to do: each due date of the plan year
    and each day a ladder step falls for it (reminders before, escalations after)."""
    days: set[date] = set()
    for due in obligation_dues(ref.plan, ref.cal, ob):
        days.update(ref.ladder.step_date(ref.cal, due, step) for step in ref.ladder.steps)
    return sorted(days)


def rdate_schedules(days: Sequence[date]) -> list[Schedule]:
    """Runs at 07:45 (Vietnam) on exactly these days, as RRULE date lists."""
    clock = OBLIGATION_RUN_AT.strftime("T%H%M%S")
    return [
        Schedule(
            rrule="RDATE:"
            + ",".join(f"{d:%Y%m%d}{clock}" for d in days[i : i + DATES_PER_SCHEDULE]),
            timezone=TIMEZONE,
        )
        for i in range(0, len(days), DATES_PER_SCHEDULE)
    ]


def obligation_triggers(ob: PlanObligation) -> list[DeploymentEventTrigger]:
    """One trigger per event that starts a due date of this obligation."""
    parts = {
        part.event_code: part
        for part in rule_parts(ob.rule)
        if part.kind == "after_event" and part.unit != "unspecified"
    }
    return [
        DeploymentEventTrigger(
            name=f"{ob.number} — khi {part.event}",
            description=f"Chạy nhiệm vụ {ob.number} khi ghi nhận sự kiện: {part.event}.",
            enabled=True,
            expect={EVENT_RECORDED},
            match={"dunghan.event-code": code},
            parameters={"number": ob.number},
        )
        for code, part in sorted(parts.items())
    ]


def obligation_description(ref: Reference, ob: PlanObligation) -> str:
    lead = " ".join((ob.lead_text or ", ".join(ob.lead)).split())
    return (
        f"{ob.content}\n\nThời hạn trong kế hoạch: «{ob.timing}». {ob.rule.describe(ref.cal)}.\n"
        f"Chủ trì: {lead}. Nguồn: {ob.source}."
    )


def obligation_deployment(ref: Reference, ob: PlanObligation) -> RunnerDeployment:
    return obligation_flow.to_deployment(
        name=deployment_name(ob),
        description=obligation_description(ref, ob),
        parameters={"number": ob.number},
        tags=obligation_tags(ob),
        schedules=rdate_schedules(schedule_days(ref, ob)),
        triggers=obligation_triggers(ob),
    )


# -------------------------------------------------------------------- all of them


def build_deployments(ref: Reference) -> list[RunnerDeployment]:
    """The full set: every obligation of the plan, the daily sweep, the monthly scorecard
    (on the third working day of each month), the admin flows."""
    deployments = [obligation_deployment(ref, ob) for ob in ref.plan.obligations]
    deployments.append(
        daily_sweep.to_deployment(
            name=DAILY_SWEEP_NAME,
            tags=["sweep"],
            schedules=[Cron(DAILY_SWEEP_CRON, timezone=TIMEZONE)],
        )
    )
    deployments.append(
        monthly_scorecard.to_deployment(
            name=SCORECARD_NAME,
            tags=["report"],
            schedules=rdate_schedules(report_days(ref.cal, ref.plan.meta.year)),
        )
    )
    deployments.append(
        deliver_outbox.to_deployment(
            name=OUTBOX_NAME,
            tags=["mail"],
            schedules=[Cron(OUTBOX_CRON, timezone=TIMEZONE)],
        )
    )
    deployments += [
        flow.to_deployment(name=name, tags=["admin"]) for flow, name in ADMIN_DEPLOYMENTS
    ]
    return deployments


def entrypoint(flow: Flow) -> str:
    """The flow's entrypoint relative to the project root: flows/obligation.py:obligation_flow."""
    path = Path(inspect.getsourcefile(flow.fn)).resolve().relative_to(PROJECT_ROOT)
    return f"{path.as_posix()}:{flow.fn.__name__}"


def schedule_spec(schedule: CronSchedule | RRuleSchedule) -> dict:
    if isinstance(schedule, CronSchedule):
        return {"cron": schedule.cron, "timezone": schedule.timezone}
    return {"rrule": schedule.rrule, "timezone": schedule.timezone}


def trigger_spec(trigger: DeploymentEventTrigger) -> dict:
    return {"type": trigger.type, **trigger.model_dump(mode="json", exclude_unset=True)}


def deployment_spec(deployment: RunnerDeployment) -> dict:
    flow = next(f for f in FLOWS if f.name == deployment.flow_name)
    spec = {
        "name": deployment.name,
        "entrypoint": entrypoint(flow),
        "description": deployment.description,
        "tags": list(deployment.tags),
        "parameters": dict(deployment.parameters),
        "schedules": [schedule_spec(s.schedule) for s in deployment.schedules or []],
        "work_pool": {"name": WORK_POOL},
    }
    if deployment.triggers:
        spec["triggers"] = [trigger_spec(t) for t in deployment.triggers]
    return spec


HEADER = """\
# Generated by `dunghan deployments write` from the loaded plan: do not edit by hand.
# The same deployments as `dunghan serve`.
#
# Either serve them from this process (no work pool needed):
#     dunghan serve
# or deploy them to a process work pool and run a worker from the project root:
#     prefect work-pool create dunghan --type process
#     prefect deploy --all
#     prefect worker start --pool dunghan
"""


def prefect_yaml(deployments: Sequence[RunnerDeployment]) -> str:
    document = {
        "name": "dunghan",
        "prefect-version": prefect_version,
        "build": None,
        "push": None,
        "pull": None,
        "deployments": [deployment_spec(d) for d in deployments],
    }
    body = yaml.dump(document, Dumper=_YamlDumper, allow_unicode=True, sort_keys=False, width=100)
    return HEADER + "\n" + body


class _YamlDumper(yaml.SafeDumper):
    """Multi-line text (descriptions, RRULE lists) as literal blocks, readable in a diff."""


def _represent_text(dumper: yaml.SafeDumper, text: str):
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_YamlDumper.add_representer(str, _represent_text)


def write_prefect_yaml(path: Path, deployments: Sequence[RunnerDeployment]) -> Path:
    path.write_text(prefect_yaml(deployments), encoding="utf-8")
    return path


def prune_stale(deployments: Sequence[RunnerDeployment]) -> list[str]:
    """Delete the obligation deployments a previous plan left on the Prefect server
    (those not in `deployments`); returns their full names."""
    keep = {d.name for d in deployments if d.flow_name == obligation_flow.name}
    flow_filter = FlowFilter(name=FlowFilterName(any_=[obligation_flow.name]))
    with get_client(sync_client=True) as client:
        existing = []
        while page := client.read_deployments(
            flow_filter=flow_filter, limit=PAGE, offset=len(existing)
        ):
            existing += page
        stale = [d for d in existing if d.name not in keep]
        for deployment in stale:
            client.delete_deployment(deployment.id)
    return [f"{obligation_flow.name}/{d.name}" for d in stale]
