"""Every deployment dunghan runs, built from the loaded plans: one per obligation of each
plan in the database (`dunghan plan load`; a retired plan has none), the daily sweep, and
the ad hoc admin flows.

`dunghan serve` serves exactly `build_deployments(...)`; `dunghan deployments write` writes
the same list to prefect.yaml (`prefect_yaml`), so the two cannot drift apart.

An obligation's deployment runs at 07:45 in Vietnam on the days its due dates and ladder
steps fall in the plan year (after the 07:30 daily sweep), and, if it waits for an event
that starts a due date, whenever recording such an event emits `dunghan.event.recorded`.
"""

from __future__ import annotations

import inspect
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

from deadlines.agencies import Registry
from deadlines.calendar import WorkCalendar
from deadlines.ladder import Ladder
from deadlines.plan import Obligation as PlanObligation
from deadlines.plan import Plan, rule_parts
from flows.admin import complete_item_flow, inspect_flow, recompute_flow, record_event_flow
from flows.announce import EVENT_RECORDED
from flows.daily_sweep import daily_sweep
from flows.engine import EngineContext, plan_event_types
from flows.obligation import obligation_flow
from flows.outbox_flow import deliver_outbox
from flows.parameters import TIMEZONE, choice_lists, described_schema, label
from flows.plan_status import plan_status_flow
from flows.reports.review import obligation_dues, obligation_section
from flows.reports.scorecard import report_days
from flows.scorecard import monthly_scorecard

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
STATUS_NAME = "Tình hình kế hoạch"
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
    plan_status_flow,
    *(f for f, _ in ADMIN_DEPLOYMENTS),
)


@dataclass(frozen=True)
class Reference:
    """What the deployments are built from: the registry, the plans in force (loaded, not
    retired), the calendar, the ladder."""

    registry: Registry
    plans: tuple[Plan, ...]
    cal: WorkCalendar
    ladder: Ladder

    @property
    def choices(self) -> dict[str, list[str]]:
        """The dropdowns of the flows' parameters: agencies, plans, sections, obligations,
        events."""
        events = {
            code: name for plan in self.plans for code, (name, _) in plan_event_types(plan).items()
        }
        return choice_lists(self.registry, self.plans, events)


def load_reference(database_url: str | None = None) -> Reference:
    """The loaded plans, calendar and ladder, as `EngineContext.open` reads them (the
    database of `DUNGHAN_DATABASE_URL`, which gets the default plan if it has none; the
    ladder and calendar of `DUNGHAN_LADDER_FILE`, `DUNGHAN_CALENDAR_OVERRIDES`, else the
    shipped ones)."""
    ctx = EngineContext.open(database_url)
    ctx.db.dispose()
    return Reference(
        registry=ctx.registry,
        plans=tuple(p for code, p in ctx.plans.items() if code not in ctx.retired),
        cal=ctx.cal,
        ladder=ctx.ladder,
    )


# --------------------------------------------------------------- one obligation


def deployment_name(plan: Plan, ob: PlanObligation) -> str:
    """The plan's code, the number and short title:
    "nghe-an-2025-kstthc — X.2 Báo cáo công tác cải cách TTHC hằng tháng"."""
    name = f"{plan.meta.code} — {ob.number} {ob.title}"
    for banned, replacement in NAME_REPLACEMENTS.items():
        name = name.replace(banned, replacement)
    return " ".join(name.split())


def obligation_tags(plan: Plan, ob: PlanObligation) -> list[str]:
    return [f"plan:{plan.meta.code}", f"section:{obligation_section(ob)}", *dict.fromkeys(ob.lead)]


def schedule_days(ref: Reference, plan: Plan, ob: PlanObligation) -> list[date]:
    """The days an obligation's run has something to do: each due date of the plan year
    and each day a ladder step falls for it (reminders before, escalations after)."""
    days: set[date] = set()
    for due in obligation_dues(plan, ref.cal, ob):
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


def obligation_triggers(plan: Plan, ob: PlanObligation) -> list[DeploymentEventTrigger]:
    """One trigger per event that starts a due date of this obligation."""
    parts = {
        part.event_code: part
        for part in rule_parts(ob.rule)
        if part.kind == "after_event" and part.unit != "unspecified"
    }
    return [
        DeploymentEventTrigger(
            name=f"{plan.meta.code} {ob.number} — khi {part.event}",
            description=f"Chạy nhiệm vụ {ob.number} ({plan.meta.label}) khi ghi nhận sự kiện: "
            f"{part.event}.",
            enabled=True,
            expect={EVENT_RECORDED},
            match={"dunghan.event-code": code},
            parameters={"number": ob.number, "plan": plan.meta.code},  # codes, as events pass
        )
        for code, part in sorted(parts.items())
    ]


def obligation_parameters(plan: Plan, ob: PlanObligation) -> dict[str, str]:
    """The plan and the obligation, as the dropdowns show them ("X.2 — Báo cáo …")."""
    return {"number": label(ob.number, ob.title), "plan": label(plan.meta.code, plan.meta.label)}


def obligation_description(ref: Reference, plan: Plan, ob: PlanObligation) -> str:
    lead = " ".join((ob.lead_text or ", ".join(ob.lead)).split())
    return (
        f"{ob.content}\n\nThời hạn trong kế hoạch: «{ob.timing}». {ob.rule.describe(ref.cal)}.\n"
        f"Chủ trì: {lead}. Nguồn: {ob.source}.\n{plan.meta.label}: {plan.meta.title}"
    )


def obligation_deployment(ref: Reference, plan: Plan, ob: PlanObligation) -> RunnerDeployment:
    return obligation_flow.to_deployment(
        name=deployment_name(plan, ob),
        description=obligation_description(ref, plan, ob),
        parameters=obligation_parameters(plan, ob),
        tags=obligation_tags(plan, ob),
        schedules=rdate_schedules(schedule_days(ref, plan, ob)),
        triggers=obligation_triggers(plan, ob),
        enforce_parameter_schema=False,
    )


def with_typed_parameters(
    deployment: RunnerDeployment, choices: dict[str, list[str]]
) -> RunnerDeployment:
    """The deployment's parameter schema with the Vietnamese descriptions and the
    dropdowns of the loaded registry and plan (Prefect's own schema has neither).

    The API does not check parameters against this schema (`enforce_parameter_schema`
    off): the flows validate their own and refuse in Vietnamese, and accept a code
    ("SO-TP") as well as a dropdown's label ("SO-TP — Sở Tư pháp"), as automations and
    event triggers pass codes."""
    flow = next(f for f in FLOWS if f.name == deployment.flow_name)
    schema = deployment._parameter_openapi_schema
    deployment._parameter_openapi_schema = type(schema)(
        **described_schema(flow.fn, schema.model_dump(), choices)
    )
    return deployment


# -------------------------------------------------------------------- all of them


def build_deployments(ref: Reference) -> list[RunnerDeployment]:
    """The full set: every obligation of each plan in force, the daily sweep, the monthly
    scorecard (on the third working day of each month of the plans' years), the outbox
    delivery, the plans' status (run when serving starts), the admin flows."""
    deployments = [
        obligation_deployment(ref, plan, ob) for plan in ref.plans for ob in plan.obligations
    ]
    deployments.append(
        daily_sweep.to_deployment(
            name=DAILY_SWEEP_NAME,
            tags=["sweep"],
            schedules=[Cron(DAILY_SWEEP_CRON, timezone=TIMEZONE)],
            enforce_parameter_schema=False,
        )
    )
    deployments.append(
        monthly_scorecard.to_deployment(
            name=SCORECARD_NAME,
            tags=["report"],
            schedules=rdate_schedules(
                sorted({d for year in plan_years(ref) for d in report_days(ref.cal, year)})
            ),
            enforce_parameter_schema=False,
        )
    )
    deployments.append(
        deliver_outbox.to_deployment(
            name=OUTBOX_NAME,
            tags=["mail"],
            schedules=[Cron(OUTBOX_CRON, timezone=TIMEZONE)],
            enforce_parameter_schema=False,
        )
    )
    deployments.append(
        plan_status_flow.to_deployment(
            name=STATUS_NAME, tags=["report"], enforce_parameter_schema=False
        )
    )
    deployments += [
        flow.to_deployment(name=name, tags=["admin"], enforce_parameter_schema=False)
        for flow, name in ADMIN_DEPLOYMENTS
    ]
    choices = ref.choices
    return [with_typed_parameters(d, choices) for d in deployments]


def plan_years(ref: Reference) -> list[int]:
    return sorted({plan.meta.year for plan in ref.plans})


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
        "enforce_parameter_schema": deployment.enforce_parameter_schema,
        "schedules": [schedule_spec(s.schedule) for s in deployment.schedules or []],
        "work_pool": {"name": WORK_POOL},
    }
    if deployment.triggers:
        spec["triggers"] = [trigger_spec(t) for t in deployment.triggers]
    return spec


HEADER = """\
# Generated by `dunghan deployments write` from the loaded plans: do not edit by hand.
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
    """Delete the obligation deployments a previous or retired plan left on the Prefect
    server (those not in `deployments`); returns their full names."""
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
