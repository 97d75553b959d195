"""A year of the plan, day by day: the daily sweep plus departments doing their work.

Departments complete items at realistic, seeded rates and delays, and ministries'
decisions arrive now and then (starting the event-based obligations), so a new user sees
the whole year unfold in a few seconds: reminders, escalations, late completions.
The same engine functions as the flows run; no Prefect flow run per simulated day.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import case, func, or_, select, update

from flows.engine import EngineContext, event_types, record_event, sweep
from models.db import session_scope
from models.store import audit_many, utcnow
from models.tables import Agency, DeadlineItem, Escalation, Event, ItemStatus, SweepRun

# How departments behave (an assumption for the demonstration, not a legal fact): most
# finish a few working days early, some on the day, some late by up to three weeks, and a
# few let it slide until the escalation ladder reaches the Chairman.
BEHAVIOUR = (  # (share, lowest offset, highest offset) in working days from the due date
    (0.62, -8, -1),
    (0.18, 0, 0),
    (0.14, 1, 6),
    (0.06, 7, 15),
)
EVENTS_PER_MONTH = 2


@dataclass
class SimulationResult:
    start: date
    end: date
    days: int = 0
    working_days: int = 0
    events: int = 0
    completions: Counter = field(default_factory=Counter)
    escalations: Counter = field(default_factory=Counter)
    notifications: int = 0


def planned_offset(seed: int, key: str) -> int:
    """The working-day offset from its due date at which an item gets done (seeded by the
    item's natural key, so a rerun after a crash plans exactly the same)."""
    rng = random.Random(f"{seed}:{key}")
    pick, acc = rng.random(), 0.0
    for share, low, high in BEHAVIOUR:
        acc += share
        if pick < acc:
            return rng.randint(low, high)
    return BEHAVIOUR[-1][2]


def simulate(ctx: EngineContext, start: date, end: date, seed: int = 2025) -> SimulationResult:
    result = SimulationResult(start, end)
    rng = random.Random(seed)
    kinds = sorted(event_types(ctx).items())
    planned: dict[int, date] = {}
    # Days a run before this one (killed later on) already swept: their sweep is not
    # replayed in today's state, which would send past days' digests again with lines
    # that were not due yet on that day. Their events and completions are (idempotent).
    with session_scope(ctx.db) as session:
        swept = set(
            session.scalars(
                select(SweepRun.run_date).where(
                    SweepRun.partition == "",
                    SweepRun.skipped_reason.is_(None),
                    SweepRun.run_date.between(start, end),
                )
            )
        )
    day = start
    while day <= end:
        result.days += 1
        if ctx.cal.is_working_day(day):
            result.working_days += 1
            if kinds and rng.random() < EVENTS_PER_MONTH / 21:
                code, (_, refs) = rng.choice(kinds)
                waiting = [r for r in refs if ctx.in_force(ctx.plans[r.plan], day)]
                owners = []  # none when no plan in force that day waits for the event
                if waiting:
                    ob = ctx.obligation(waiting[0].number, waiting[0].plan)
                    owners = ctx.responsible(ob.lead, day)
                if owners:
                    record_event(
                        ctx,
                        code,
                        rng.choice(owners),
                        day,
                        document=f"{rng.randint(100, 9999)}/QĐ-{day.year}",
                        actor="simulation",
                    )
                    result.events += 1
            if day not in swept:
                outcome = sweep(ctx, day, actor="simulation")
                result.notifications += outcome.notifications
                for esc in outcome.escalations:
                    result.escalations[esc.step.code] += 1
            _complete_due_work(ctx, day, seed, planned, result)
        day += timedelta(days=1)
    return result


def _complete_due_work(ctx, today, seed, planned: dict[int, date], result) -> None:
    """Departments finish the items whose planned completion day has come."""
    with session_scope(ctx.db) as session:
        # An item of an event that, in the simulated year, has not happened yet (it exists
        # only because an interrupted run got further) is not done before it: a rerun then
        # ends exactly like an uninterrupted run.
        open_items = session.execute(
            select(
                DeadlineItem.id,
                DeadlineItem.due,
                DeadlineItem.obligation_id,
                DeadlineItem.agency_code,
                DeadlineItem.period_key,
            )
            .outerjoin(Event, Event.id == DeadlineItem.event_id)
            .where(
                DeadlineItem.status == ItemStatus.OPEN,
                or_(Event.id.is_(None), Event.occurred_on <= today),
            )
        ).all()
        finished: list[tuple[int, date, str]] = []
        number_of = {oid: ref.number for ref, oid in ctx.obligation_ids.items()}
        for item_id, due, obligation_id, agency_code, period_key in open_items:
            if item_id not in planned:
                # Without the plan's code: the seeded behaviour of the 2025 plan's items
                # stays what it was (two plans' "I.1" of one agency and period behave alike).
                key = f"{number_of.get(obligation_id, obligation_id)}:{agency_code}:{period_key}"
                offset = planned_offset(seed, key)
                planned[item_id] = ctx.cal.add_working_days(due, offset) if offset else due
            if planned[item_id] <= today:
                status = ItemStatus.DONE if today <= due else ItemStatus.DONE_LATE
                finished.append((item_id, due, status))
        now = utcnow()
        closed: set[int] = set()  # by this run: a concurrent one's stay theirs
        for status in (ItemStatus.DONE, ItemStatus.DONE_LATE):
            ids = [i for i, _, s in finished if s == status]
            if ids:
                done = session.scalars(
                    update(DeadlineItem)
                    .where(DeadlineItem.id.in_(ids), DeadlineItem.status == ItemStatus.OPEN)
                    .values(
                        status=status,
                        completed_on=today,
                        evidence=f"Văn bản báo cáo ngày {today:%d/%m/%Y} (mô phỏng)",
                        updated_at=now,
                    )
                    .returning(DeadlineItem.id)
                ).all()
                closed.update(done)
                result.completions[status] += len(done)
        audit_many(
            session,
            (
                {
                    "actor": "simulation",
                    "action": "complete_item",
                    "entity": "deadline_item",
                    "entity_id": item_id,
                    "detail": {"status": status, "completed_on": today},
                }
                for item_id, _, status in finished
                if item_id in closed
            ),
        )


# The levels the year's summary counts items by (kinds of plans/agencies.yaml).
LEVELS = {
    "commune": "commune",
    "ward": "commune",
    "district": "district",
}  # every other kind is provincial


def year_summary(ctx: EngineContext, today: date) -> dict:
    """Figures for the end-of-run summary: items by status, overdue, steps reached, and
    for each half of the plan year (by due date) the items of each level of government:
    provincial bodies, districts (until 30/6/2025), communes and wards (from 1/7/2025)."""
    year = ctx.plan_on(today).meta.year
    half = case((DeadlineItem.due <= date(year, 6, 30), 1), else_=2)
    with session_scope(ctx.db) as session:
        by_status = dict(
            session.execute(
                select(DeadlineItem.status, func.count()).group_by(DeadlineItem.status)
            ).all()
        )
        overdue = session.scalar(
            select(func.count()).where(
                DeadlineItem.status == ItemStatus.OPEN, DeadlineItem.due < today
            )
        )
        steps = dict(
            session.execute(select(Escalation.step, func.count()).group_by(Escalation.step)).all()
        )
        rows = session.execute(
            select(half, Agency.kind, DeadlineItem.status, func.count())
            .join(Agency, Agency.code == DeadlineItem.agency_code)
            .group_by(half, Agency.kind, DeadlineItem.status)
        ).all()
    by_half: dict[int, dict[str, Counter]] = {1: {}, 2: {}}
    for period, kind, status, n in rows:
        level = LEVELS.get(kind, "province")
        by_half[period].setdefault(level, Counter())[status] += n
    return {"by_status": by_status, "overdue": overdue, "steps": steps, "by_half": by_half}
