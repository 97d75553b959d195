"""The deployments: one per obligation with the right schedule, triggers and tags, the
daily sweep and the admin flows; prefect.yaml says exactly what `dunghan serve` serves."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from prefect.cli.deploy._models import PrefectYamlModel
from prefect.client.orchestration import get_client
from prefect.client.schemas.schedules import CronSchedule, RRuleSchedule
from prefect.events import DeploymentEventTrigger

from deadlines.plan import load_plan, rule_parts
from flows.deployments import (
    DATES_PER_SCHEDULE,
    PROJECT_ROOT,
    Reference,
    build_deployments,
    deployment_name,
    load_reference,
    obligation_deployment,
    prefect_yaml,
    prune_stale,
    rdate_schedules,
)
from flows.parameters import code_of
from flows.reports.review import obligation_dues

D = date.fromisoformat
VN = ZoneInfo("Asia/Ho_Chi_Minh")
CODE_II_1B = "nhan-duoc-quyet-dinh-cong-bo-tthc-cua-bo-truong-cac-bo-nganh-trung-uong"
PLAN = "nghe-an-2025-kstthc"
# The plan as its dropdown shows it; the flow reads the code before " — ".
PLAN_CHOICE = f"{PLAN} — Kế hoạch năm 2025 (Quyết định 384/QĐ-UBND)"


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    """The reference of a fresh database: the shipped 2025 plan, loaded by default."""
    return load_reference(f"sqlite:///{tmp_path_factory.mktemp('reference')}/dunghan.db")


@pytest.fixture(scope="module")
def plan(ref):
    (only,) = ref.plans
    return only


@pytest.fixture(scope="module")
def deployments(ref):
    return build_deployments(ref)


def by_number(deployments, number: str, plan: str = PLAN):
    return next(
        d
        for d in deployments
        if code_of(d.parameters.get("number")) == number
        and code_of(d.parameters.get("plan")) == plan
    )


def run_times(deployment) -> list[datetime]:
    return sorted(t for s in deployment.schedules for t in s.schedule.to_rrule())


def test_every_obligation_has_one_deployment_named_by_plan_number_and_title(plan, deployments):
    obligations = [d for d in deployments if d.flow_name == "obligation"]
    # The obligation's number as its dropdown shows it; the flow reads the code before " — ".
    assert [d.parameters for d in obligations] == [
        {"number": f"{ob.number} — {ob.title}", "plan": PLAN_CHOICE} for ob in plan.obligations
    ]
    names = [d.name for d in deployments]
    assert len(set(names)) == len(names)
    x2 = by_number(deployments, "X.2")
    assert x2.name == f"{PLAN} — X.2 Báo cáo công tác cải cách TTHC hằng tháng"
    assert x2.tags == [f"plan:{PLAN}", "section:X", "GRP-SO-NGANH", "GRP-UBND-HUYEN"]
    assert by_number(deployments, "B.III.2.b.4").tags == [
        f"plan:{PLAN}",
        "section:B.III",
        "VP-UBND",
    ]
    # "/" may not appear in a deployment name.
    assert by_number(deployments, "V.7").name == (
        f"{PLAN} — V.7 Công khai kết quả đánh giá theo QĐ 766-QĐ-TTg"
    )
    assert "Trước ngày 23 hàng tháng" in x2.description
    assert "Kế hoạch năm 2025 (Quyết định 384/QĐ-UBND)" in x2.description


def test_an_obligation_runs_at_7_45_on_its_due_and_ladder_days(ref, plan, deployments):
    x2 = by_number(deployments, "X.2")
    assert all(s.schedule.timezone == "Asia/Ho_Chi_Minh" for s in x2.schedules)
    times = run_times(x2)
    assert {t.astimezone(VN).time() for t in times} == {time(7, 45)}
    days = [t.astimezone(VN).date() for t in times]
    # March's due date is Friday 21/3: reminder 3 working days before, the due day, then
    # 1, 5 and 10 working days overdue.
    march = [D(d) for d in ("2025-03-18", "2025-03-21", "2025-03-24", "2025-03-28", "2025-04-04")]
    assert days[:5] == march
    assert D("2025-03-19") not in days and D("2025-02-21") not in days  # before the plan
    assert all(ref.cal.is_working_day(d) for d in days)
    dues = obligation_dues(plan, ref.cal, plan.obligation("X.2"))
    assert len(dues) == 10 and set(dues) <= set(days)
    # December's overdue steps fall in January 2026.
    assert days[-1].year == 2026


def test_long_date_lists_are_split_across_schedules():
    days = [D("2025-01-01").fromordinal(D("2025-01-01").toordinal() + i) for i in range(700)]
    schedules = rdate_schedules(days)
    assert len(schedules) == 3
    assert sum(s.rrule.count(",") + 1 for s in schedules) == 700
    assert all(len(s.rrule) < 6500 for s in schedules)
    assert DATES_PER_SCHEDULE == 300


def test_ongoing_and_referenced_obligations_run_only_on_demand(plan, deployments):
    for ob in plan.obligations:
        kinds = {part.kind for part in rule_parts(ob.rule)}
        if kinds <= {"continuous", "on_demand", "reference", "after_event"}:
            assert by_number(deployments, ob.number).schedules == [], ob.number
    assert by_number(deployments, "II.6").triggers == []  # "Thường xuyên"


def test_event_obligations_are_triggered_by_the_recorded_event(deployments):
    (trigger,) = by_number(deployments, "II.1b").triggers
    assert isinstance(trigger, DeploymentEventTrigger)
    assert trigger.expect == {"dunghan.event.recorded"}
    assert trigger.match.model_dump() == {"dunghan.event-code": CODE_II_1B}
    assert trigger.parameters == {"plan": PLAN, "number": "II.1b"}
    assert by_number(deployments, "II.1b").schedules == []
    # "Sau khi nhận được phản ánh, kiến nghị": no due date to compute, so nothing to run.
    assert by_number(deployments, "VI.2").triggers == []
    triggered = {code_of(d.parameters["number"]) for d in deployments if d.triggers}
    assert triggered == {"II.1a", "II.1b", "II.2", "II.3", "B.III.2.b.2"}


def test_the_daily_sweep_and_the_admin_flows(deployments):
    sweep = next(d for d in deployments if d.flow_name == "daily-sweep")
    (schedule,) = sweep.schedules
    assert isinstance(schedule.schedule, CronSchedule)
    assert (schedule.schedule.cron, schedule.schedule.timezone) == (
        "30 7 * * 1-6",
        "Asia/Ho_Chi_Minh",
    )
    admin = {d.flow_name: d.name for d in deployments if "admin" in d.tags}
    assert admin == {
        "record-event": "Ghi nhận sự kiện",
        "complete-item": "Ghi nhận hoàn thành",
        "inspect": "Kiểm tra",
        "recompute": "Tính lại hạn",
    }


def test_deployment_names_survive_banned_characters(plan):
    ob = plan.obligation("X.2")
    odd = type(ob)(**{**ob.__dict__, "title": "Báo cáo A/B & C <50%>"})
    assert deployment_name(plan, odd) == f"{PLAN} — X.2 Báo cáo A-B và C 50 phần trăm"


# ------------------------------------------------------------------- prefect.yaml


def test_the_committed_prefect_yaml_is_up_to_date(deployments):
    committed = (PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8")
    assert committed == prefect_yaml(deployments), "run `dunghan deployments write`"


def test_prefect_yaml_and_serve_agree(deployments):
    document = yaml.safe_load(prefect_yaml(deployments))
    PrefectYamlModel.model_validate(document)  # what `prefect deploy` reads
    specs = document["deployments"]
    assert [s["name"] for s in specs] == [d.name for d in deployments]
    for spec, deployment in zip(specs, deployments, strict=True):
        assert spec["tags"] == deployment.tags
        assert spec["parameters"] == deployment.parameters
        path, function = spec["entrypoint"].split(":")
        assert (PROJECT_ROOT / path).is_file()
        assert function in (PROJECT_ROOT / path).read_text(encoding="utf-8")
        assert spec["work_pool"] == {"name": "dunghan"}
        schedules = [
            CronSchedule(**s) if "cron" in s else RRuleSchedule(**s) for s in spec["schedules"]
        ]
        assert schedules == [s.schedule for s in deployment.schedules]
        triggers = [DeploymentEventTrigger.model_validate(t) for t in spec.get("triggers", [])]
        assert [t.model_dump() for t in triggers] == [t.model_dump() for t in deployment.triggers]
    assert {s["entrypoint"] for s in specs} >= {
        "flows/obligation.py:obligation_flow",
        "flows/daily_sweep.py:daily_sweep",
        "flows/admin.py:record_event_flow",
        "flows/admin.py:complete_item_flow",
        "flows/admin.py:inspect_flow",
        "flows/admin.py:recompute_flow",
        "flows/scorecard.py:monthly_scorecard",
        "flows/outbox_flow.py:deliver_outbox",
    }


def test_a_new_plan_gives_a_new_set(ref, plan, tmp_path):
    """Loading a new version of a plan changes the deployments (and prefect.yaml)."""
    source = Path(plan.path).read_text(encoding="utf-8")
    changed = source.replace(
        "title: Báo cáo công tác cải cách TTHC hằng tháng",
        "title: Báo cáo cải cách TTHC hằng tháng",
    )
    assert changed != source
    path = tmp_path / "plan.yaml"
    path.write_text(changed, encoding="utf-8")
    other = Reference(
        registry=ref.registry, plans=(load_plan(path),), cal=ref.cal, ladder=ref.ladder
    )
    names = {d.name for d in build_deployments(other)}
    assert f"{PLAN} — X.2 Báo cáo cải cách TTHC hằng tháng" in names
    assert f"{PLAN} — X.2 Báo cáo công tác cải cách TTHC hằng tháng" not in names


# ------------------------------------------------------------ on the Prefect server


@pytest.mark.usefixtures("prefect_api")
def test_deployments_register_with_their_schedules_and_triggers(deployments):
    chosen = [by_number(deployments, "X.2"), by_number(deployments, "II.1b")]
    ids = {d.name: d.apply() for d in chosen}
    with get_client(sync_client=True) as client:
        x2 = client.read_deployment(ids[chosen[0].name])
        assert x2.tags == chosen[0].tags
        assert x2.parameters == {
            "number": "X.2 — Báo cáo công tác cải cách TTHC hằng tháng",
            "plan": PLAN_CHOICE,
        }
        assert [s.schedule.rrule for s in x2.schedules] == [
            s.schedule.rrule for s in chosen[0].schedules
        ]
        assert {s.schedule.timezone for s in x2.schedules} == {"Asia/Ho_Chi_Minh"}
        automations = client.read_resource_related_automations(
            f"prefect.deployment.{ids[chosen[1].name]}"
        )
    (automation,) = automations
    assert automation.trigger.expect == {"dunghan.event.recorded"}
    assert automation.trigger.match.model_dump() == {"dunghan.event-code": CODE_II_1B}
    (action,) = automation.actions
    assert action.parameters == {"plan": PLAN, "number": "II.1b"}


@pytest.mark.usefixtures("prefect_api")
def test_serving_a_new_plan_removes_the_deployments_it_dropped(ref, plan, deployments):
    x2 = by_number(deployments, "X.2")
    x2.apply()
    stale = obligation_deployment(ref, plan, plan.obligation("X.1"))
    stale.name = "X.0 Nhiệm vụ của kế hoạch cũ"
    stale.apply()
    removed = prune_stale([x2])
    assert "obligation/X.0 Nhiệm vụ của kế hoạch cũ" in removed
    assert f"obligation/{x2.name}" not in removed
    with get_client(sync_client=True) as client:
        assert client.read_deployment_by_name(f"obligation/{x2.name}").name == x2.name
    assert prune_stale([x2]) == []


# ------------------------------------------------------------ typed parameters


def schema_of(deployments, flow_name: str) -> dict:
    deployment = next(d for d in deployments if d.flow_name == flow_name)
    return deployment._parameter_openapi_schema.model_dump()["properties"]


def test_every_parameter_has_a_vietnamese_description_and_a_type(deployments):
    for deployment in deployments:
        for name, spec in deployment._parameter_openapi_schema.model_dump()["properties"].items():
            assert spec.get("description"), f"{deployment.name}: {name}"
            assert "type" in spec or "anyOf" in spec, f"{deployment.name}: {name}"
        assert deployment.enforce_parameter_schema is False


def test_dates_are_dates_and_codes_are_chosen_from_the_registry_and_the_plan(
    ref, plan, deployments
):
    inspect = schema_of(deployments, "inspect")
    assert inspect["from_date"]["format"] == "date" and inspect["from_date"]["type"] == "string"
    assert {"format": "date", "type": "string"} in inspect["date"]["anyOf"]
    agencies = [f"{a.code} — {a.name}" for a in ref.registry.agencies.values()]
    assert inspect["agency"]["enum"] == agencies
    assert "SO-TP — Sở Tư pháp tỉnh Nghệ An" in agencies
    assert inspect["agency"]["description"] == "Cơ quan được kiểm tra (mã — tên)."
    (section,) = [o for o in inspect["section"]["anyOf"] if o.get("type") == "string"]
    assert "X — Chế độ báo cáo công tác kiểm soát TTHC và cải cách TTHC" in section["enum"]
    assert "B.III — NHỮNG NHIỆM VỤ TRỌNG TÂM" in section["enum"]
    assert len(section["enum"]) == len(plan.sections)
    sweep = schema_of(deployments, "daily-sweep")
    (listed,) = [o for o in sweep["agencies"]["anyOf"] if o.get("type") == "array"]
    assert listed["items"]["enum"] == agencies
    assert sweep["force"]["type"] == "boolean"
    obligation = schema_of(deployments, "obligation")
    assert obligation["number"]["enum"] == [f"{ob.number} — {ob.title}" for ob in plan.obligations]
    (plans,) = [o for o in obligation["plan"]["anyOf"] if o.get("type") == "string"]
    assert plans["enum"] == [PLAN_CHOICE]
    event = schema_of(deployments, "record-event")
    assert (
        f"{CODE_II_1B} — nhận được Quyết định công bố TTHC của bộ trưởng các Bộ, ngành Trung ương"
        in event["event_code"]["enum"]
    )
    assert schema_of(deployments, "complete-item")["item_id"]["type"] == "integer"


@pytest.mark.usefixtures("prefect_api")
def test_the_registered_schema_is_the_typed_one(deployments):
    inspect = next(d for d in deployments if d.flow_name == "inspect")
    deployment_id = inspect.apply()
    with get_client(sync_client=True) as client:
        stored = client.read_deployment(deployment_id).parameter_openapi_schema
    assert stored["properties"]["agency"]["enum"][0].count(" — ") == 1
    assert stored["properties"]["from_date"]["description"] == "Xét các việc có hạn từ ngày này."
