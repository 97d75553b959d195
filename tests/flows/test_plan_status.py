"""The plan in Prefect's UI: after a simulated month, the plan-status flow publishes the
status, the progress bars, the overdue table, the months' scorecards and one finished run
per passed due date, with the figures the database holds; publishing again adds nothing;
the daily sweep publishes the status after each sweep of the province."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from sqlalchemy import func, select

from deadlines.plan import load_plan
from flows.announce import ESCALATION_HISTORY, ESCALATION_REACHED
from flows.daily_sweep import daily_sweep
from flows.engine import EngineContext
from flows.plan_status import HISTORY_TAG, plan_status_flow
from flows.reports.status import KpiProgress, province_kpis
from flows.simulate import simulate
from models.tables import DeadlineItem, Escalation, ItemStatus, Obligation
from tests.flows.prefect_support import (
    artifacts_of,
    count,
    events_since,
    latest_artifact,
    read_events,
    rows,
    table_of,
)
from tests.flows.test_kpis import load_sample

pytestmark = pytest.mark.usefixtures("prefect_api")

D = date.fromisoformat
MAY_END = D("2025-05-30")  # the last working day of May 2025


@pytest.fixture
def simulated_may(dunghan_env, tmp_path) -> str:
    """The hand-computed one-stop sample, and May 2025 played day by day: sweeps, and
    departments completing their items (the plan's items from February on)."""
    ctx = EngineContext.open(dunghan_env)
    try:
        load_sample(ctx, tmp_path)
        simulate(ctx, D("2025-05-02"), MAY_END)
    finally:
        ctx.db.dispose()
    # The session's Prefect server is shared: another database's history is not ours.
    with get_client(sync_client=True) as client:
        for run in history_runs():
            client.delete_flow_run(run.id)
    return dunghan_env


@pytest.fixture(scope="module")
def plan():
    return load_plan()


def history_runs() -> list:
    with get_client(sync_client=True) as client:
        found, offset = [], 0
        while page := client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[HISTORY_TAG])),
            limit=200,
            offset=offset,
        ):
            found += page
            offset += len(page)
    return found


def test_after_a_simulated_month_the_ui_shows_the_plan(simulated_may):
    url = simulated_may
    began = datetime.now(UTC)
    state = plan_status_flow(return_state=True)
    assert state.is_completed(), state.message
    published = state.result()
    assert published["as_of"] == "2025-05-30"  # the last sweep, not today

    by_status = dict(rows(url, select(DeadlineItem.status, func.count()).group_by("status")))
    overdue = dict(
        rows(
            url,
            select(DeadlineItem.agency_code, func.count())
            .where(DeadlineItem.status == ItemStatus.OPEN, DeadlineItem.due < MAY_END)
            .group_by(DeadlineItem.agency_code),
        )
    )
    found = artifacts_of(state)
    status = found["plan-status"].data
    assert status.startswith("# Tình hình thực hiện kế hoạch ngày 30/05/2025")
    assert f"| Việc đang mở | {by_status[ItemStatus.OPEN]} |" in status
    assert f"| Việc quá hạn chưa hoàn thành | {sum(overdue.values())} |" in status
    assert f"| Việc hoàn thành đúng hạn | {by_status[ItemStatus.DONE]} |" in status
    assert f"| Việc hoàn thành trễ hạn | {by_status[ItemStatus.DONE_LATE]} |" in status
    due_this_week = count(
        url,
        DeadlineItem,
        DeadlineItem.status == ItemStatus.OPEN,
        DeadlineItem.due.between(MAY_END, D("2025-06-01")),
    )
    assert f"| Việc đến hạn trong tuần (đến 01/06/2025) | {due_this_week} |" in status

    table = table_of(found["daily-sweep-overdue"])
    assert {row["Mã cơ quan"]: row["Việc quá hạn"] for row in table} == overdue

    done, late = by_status[ItemStatus.DONE], by_status[ItemStatus.DONE_LATE]
    on_time = found["plan-items-on-time"]
    assert on_time.type == "progress"
    assert float(on_time.data) == round(done / (done + late) * 100, 1)
    assert f"{done}/{done + late}" in on_time.description
    # May's one-stop dossiers of the sample against the plan's target (≥ 95% on time).
    kpi = found["kpi-on-time-rate"]
    assert "Tỷ lệ hồ sơ được giải quyết đúng hạn, trước hạn, tháng 05/2025" in kpi.description
    assert "chỉ tiêu ≥ 95%" in kpi.description

    # Each month of the year with dossiers has its scorecard table.
    assert "scorecard-2025-05" in published["scorecards"]
    assert latest_artifact("scorecard-2025-05") is not None

    # One finished run per (obligation, due date) before 30/5, in the state a live run
    # would have ended in: Quá hạn when an item was not done by its due date.
    outcomes: dict[tuple[str, date], list[str]] = {}
    for number, due, status_ in rows(
        url,
        select(Obligation.number, DeadlineItem.due, DeadlineItem.status)
        .join(Obligation)
        .where(
            DeadlineItem.due < MAY_END,
            DeadlineItem.status.in_([ItemStatus.OPEN, ItemStatus.DONE, ItemStatus.DONE_LATE]),
        ),
    ):
        outcomes.setdefault((number, due), []).append(status_)
    runs = {run.name: run for run in history_runs()}
    assert published["due_dates"] == len(outcomes) == len(runs)
    expected = Counter(
        "Quá hạn" if set(statuses) - {ItemStatus.DONE} else "Đúng hạn"
        for statuses in outcomes.values()
    )
    assert Counter(run.state.name for run in runs.values()) == expected
    assert {run.state.type.value for run in runs.values() if run.state.name == "Quá hạn"} == {
        "FAILED"
    }
    # March's monthly reports (due 21/3) were done when the simulation began (2/5/2025
    # was a day off, the first sweep was on Monday 5/5).
    march = runs["X.2 — hạn 21/03/2025"]
    assert march.state.name == "Quá hạn"
    assert march.state.message.startswith("Nhiệm vụ X.2, hạn 21/03/2025: ")
    assert "hoàn thành 05/05/2025" in march.state.message
    assert march.parameters == {
        "number": "X.2 — Báo cáo công tác cải cách TTHC hằng tháng",
        "date": "2025-03-21",
        "plan": "nghe-an-2025-kstthc — Kế hoạch năm 2025 (Quyết định 384/QĐ-UBND)",
    }
    assert "plan:nghe-an-2025-kstthc" in march.tags  # published once per plan

    # Every ladder step the simulated month reached is in the Event Feed, once, under the
    # history name (automations made for dunghan.escalation.reached stay still).
    reached = rows(
        url,
        select(
            Escalation.item_id, Escalation.step, Escalation.reached_on, DeadlineItem.agency_code
        ).join(DeadlineItem, DeadlineItem.id == Escalation.item_id),
    )
    assert len(reached) > 0
    assert published["escalation_events"] == published["announced"] == len(reached)
    events = events_since(ESCALATION_HISTORY, began, len(reached))
    assert sorted(
        (
            int(e.resource.id.removeprefix("dunghan.item.")),
            e.resource["dunghan.step"],
            D(e.payload["reached_on"]),
            e.resource["dunghan.agency"],
        )
        for e in events
    ) == sorted(tuple(r) for r in reached)
    assert read_events(ESCALATION_REACHED, began) == {}

    again = plan_status_flow(return_state=True).result()
    assert again["due_dates"] == 0 and len(history_runs()) == len(runs)
    assert again["escalation_events"] == again["announced"] == 0
    assert again["scorecards"] == ["scorecard-2025-05"]  # only the last day's month again


def test_the_daily_sweep_publishes_the_plan_status(dunghan_env):
    state = daily_sweep(date="2025-04-02", return_state=True)
    found = artifacts_of(state)
    assert found["plan-status"].data.startswith("# Tình hình thực hiện kế hoạch ngày 02/04/2025")
    overdue = count(
        dunghan_env,
        DeadlineItem,
        DeadlineItem.status == ItemStatus.OPEN,
        DeadlineItem.due < D("2025-04-02"),
    )
    assert f"| Việc quá hạn chưa hoàn thành | {overdue} |" in found["plan-status"].data
    # The overdue table is the sweep's own; the status does not publish a second one.
    assert found["daily-sweep-overdue"].description.startswith(
        "Việc quá hạn chưa hoàn thành theo cơ quan, ngày 02/04/2025"
    )
    assert "plan-items-on-time" not in found  # nothing closed yet: no bar to draw
    partial = daily_sweep(date="2025-04-03", agencies=["SO-TP"], return_state=True)
    assert "plan-status" not in artifacts_of(partial)


def test_the_province_s_rate_weighs_agencies_by_their_dossiers(plan):
    rows_ = [
        {
            "dossiers": 30,
            "received": 20,
            "on_time_rate": 1.0,
            "online_rate": 0.5,
            "digitized_rate": 1.0,
            "e_result_rate": 0.0,
        },
        {
            "dossiers": 10,
            "received": 20,
            "on_time_rate": 0.6,
            "online_rate": 1.0,
            "digitized_rate": 1.0,
            "e_result_rate": 1.0,
        },
        # Dossiers carried over from an earlier month, none received in this one: no
        # online share of its own (None), which weighs nothing.
        {
            "dossiers": 5,
            "received": 0,
            "on_time_rate": 0.2,
            "online_rate": None,
            "digitized_rate": 0.0,
            "e_result_rate": 0.0,
        },
    ]
    kpis = {k.key: k for k in province_kpis(plan, "2025-05", rows_)}
    assert kpis["on_time_rate"].rate == round((30 + 6 + 1) / 45, 4)
    assert kpis["on_time_rate"].met is False  # ≥ 95%
    # The online share is over the dossiers received: (10 + 20) / 40.
    assert kpis["online_rate"].rate == 0.75
    assert kpis["digitized_rate"].rate == round(40 / 45, 4)
    assert kpis["e_result_rate"].rate == round(10 / 45, 4) and kpis["e_result_rate"].dossiers == 45
    empty = province_kpis(plan, "2025-05", [])
    assert all(isinstance(k, KpiProgress) and k.rate is None and k.met is None for k in empty)


def test_progress_values_are_numbers_prefect_draws(simulated_may):
    state = plan_status_flow(history=False, return_state=True)
    assert state.result().keys() == {"as_of", "overdue"}
    for key, artifact in artifacts_of(state).items():
        if artifact.type == "progress":
            assert 0 <= float(artifact.data) <= 100, key
        elif artifact.type == "table":
            assert isinstance(table_of(artifact), list)
    assert json.loads(json.dumps(state.result())) == state.result()
