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
    build_deployments,
    deployment_name,
    load_reference,
    obligation_deployment,
    prefect_yaml,
    prune_stale,
    rdate_schedules,
)
from flows.reports.review import obligation_dues

D = date.fromisoformat
VN = ZoneInfo("Asia/Ho_Chi_Minh")
CODE_II_1B = "nhan-duoc-quyet-dinh-cong-bo-tthc-cua-bo-truong-cac-bo-nganh-trung-uong"


@pytest.fixture(scope="module")
def ref():
    return load_reference()


@pytest.fixture(scope="module")
def deployments(ref):
    return build_deployments(ref)


def by_number(deployments, number: str):
    return next(d for d in deployments if d.parameters.get("number") == number)


def run_times(deployment) -> list[datetime]:
    return sorted(t for s in deployment.schedules for t in s.schedule.to_rrule())


def test_every_obligation_has_one_deployment_named_by_number_and_title(ref, deployments):
    obligations = [d for d in deployments if d.flow_name == "obligation"]
    assert [d.parameters for d in obligations] == [
        {"number": ob.number} for ob in ref.plan.obligations
    ]
    names = [d.name for d in deployments]
    assert len(set(names)) == len(names)
    x2 = by_number(deployments, "X.2")
    assert x2.name == "X.2 Báo cáo công tác cải cách TTHC hằng tháng"
    assert x2.tags == ["section:X", "GRP-SO-NGANH", "GRP-UBND-HUYEN"]
    assert by_number(deployments, "B.III.2.b.4").tags == ["section:B.III", "VP-UBND"]
    # "/" may not appear in a deployment name.
    assert by_number(deployments, "V.7").name == "V.7 Công khai kết quả đánh giá theo QĐ 766-QĐ-TTg"
    assert "Trước ngày 23 hàng tháng" in x2.description


def test_an_obligation_runs_at_7_45_on_its_due_and_ladder_days(ref, deployments):
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
    dues = obligation_dues(ref.plan, ref.cal, ref.plan.obligation("X.2"))
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


def test_ongoing_and_referenced_obligations_run_only_on_demand(ref, deployments):
    for ob in ref.plan.obligations:
        kinds = {part.kind for part in rule_parts(ob.rule)}
        if kinds <= {"continuous", "on_demand", "reference", "after_event"}:
            assert by_number(deployments, ob.number).schedules == [], ob.number
    assert by_number(deployments, "II.6").triggers == []  # "Thường xuyên"


def test_event_obligations_are_triggered_by_the_recorded_event(deployments):
    (trigger,) = by_number(deployments, "II.1b").triggers
    assert isinstance(trigger, DeploymentEventTrigger)
    assert trigger.expect == {"dunghan.event.recorded"}
    assert trigger.match.model_dump() == {"dunghan.event-code": CODE_II_1B}
    assert trigger.parameters == {"number": "II.1b"}
    assert by_number(deployments, "II.1b").schedules == []
    # "Sau khi nhận được phản ánh, kiến nghị": no due date to compute, so nothing to run.
    assert by_number(deployments, "VI.2").triggers == []
    triggered = {d.parameters["number"] for d in deployments if d.triggers}
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


def test_deployment_names_survive_banned_characters(ref):
    ob = ref.plan.obligation("X.2")
    odd = type(ob)(**{**ob.__dict__, "title": "Báo cáo A/B & C <50%>"})
    assert deployment_name(odd) == "X.2 Báo cáo A-B và C 50 phần trăm"


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


def test_a_new_plan_gives_a_new_set(ref, tmp_path):
    """Loading a new plan changes the deployments (and prefect.yaml) accordingly."""
    source = Path(ref.plan.path).read_text(encoding="utf-8")
    changed = source.replace(
        "title: Báo cáo công tác cải cách TTHC hằng tháng",
        "title: Báo cáo cải cách TTHC hằng tháng",
    )
    assert changed != source
    path = tmp_path / "plan.yaml"
    path.write_text(changed, encoding="utf-8")
    other = type(ref)(plan=load_plan(path), cal=ref.cal, ladder=ref.ladder)
    names = {d.name for d in build_deployments(other)}
    assert "X.2 Báo cáo cải cách TTHC hằng tháng" in names
    assert "X.2 Báo cáo công tác cải cách TTHC hằng tháng" not in names


# ------------------------------------------------------------ on the Prefect server


@pytest.mark.usefixtures("prefect_api")
def test_deployments_register_with_their_schedules_and_triggers(deployments):
    chosen = [by_number(deployments, "X.2"), by_number(deployments, "II.1b")]
    ids = {d.name: d.apply() for d in chosen}
    with get_client(sync_client=True) as client:
        x2 = client.read_deployment(ids[chosen[0].name])
        assert x2.tags == chosen[0].tags and x2.parameters == {"number": "X.2"}
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
    assert action.parameters == {"number": "II.1b"}


@pytest.mark.usefixtures("prefect_api")
def test_serving_a_new_plan_removes_the_deployments_it_dropped(ref, deployments):
    x2 = by_number(deployments, "X.2")
    x2.apply()
    stale = obligation_deployment(ref, ref.plan.obligation("X.1"))
    stale.name = "X.0 Nhiệm vụ của kế hoạch cũ"
    stale.apply()
    removed = prune_stale([x2])
    assert "obligation/X.0 Nhiệm vụ của kế hoạch cũ" in removed
    assert "obligation/X.2 Báo cáo công tác cải cách TTHC hằng tháng" not in removed
    with get_client(sync_client=True) as client:
        assert client.read_deployment_by_name(f"obligation/{x2.name}").name == x2.name
    assert prune_stale([x2]) == []
