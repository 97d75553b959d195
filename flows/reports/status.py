"""The plan's status as of a day (tình hình thực hiện kế hoạch): what an operator wants to
see first in Prefect's UI, published after each daily sweep and when `dunghan serve`
starts.

Items open, due this week and overdue (by the highest ladder step reached and by agency),
items closed on time or late, and the month's one-stop KPIs against the plan's targets.
`plan_status` reads the store; rendering it (markdown, progress values) is pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select

from deadlines.plan import KpiTarget, Plan
from flows.dossiers import INDICATORS, kpis, month_so_far
from flows.engine import EngineContext, ObligationRef
from flows.parameters import section_code
from flows.reports.review import AgencyOverdue, overdue_by_agency
from models.db import session_scope
from models.tables import DeadlineItem, ItemStatus, SweepRun

# The one-stop indicators whose denominator is the month's dossiers, so the province's
# rate is the agencies' rates weighted by their dossiers (the others count late dossiers
# or payable ones, which the monthly scorecard shows per agency).
# Agencies named in a message about late items; the rest are counted.
NAMED_AGENCIES = 8

PROVINCE_INDICATORS = ("on_time_rate", "online_rate", "digitized_rate", "e_result_rate")
# The count each indicator is a share of, where it is not the dossiers processed.
RATE_OVER = {"online_rate": "received"}


@dataclass(frozen=True)
class KpiProgress:
    key: str
    label: str
    month: str  # YYYY-MM
    dossiers: int
    rate: float | None  # None: no dossier processed in the month
    target: KpiTarget | None
    until: date | None = None  # the month so far, up to this day (the month is not over)

    @property
    def met(self) -> bool | None:
        if self.rate is None or self.target is None:
            return None
        return self.target.is_met(self.rate)


@dataclass(frozen=True)
class PlanStatus:
    as_of: date
    title: str
    decision: str
    open_items: int
    due_this_week: int
    week_end: date
    closed_on_time: int
    closed_late: int
    overdue: tuple[AgencyOverdue, ...]  # most overdue items first
    steps: tuple[tuple[str, str, int], ...]  # (step code, step name, overdue items)
    kpis: tuple[KpiProgress, ...]

    @property
    def overdue_items(self) -> int:
        return sum(row.total for row in self.overdue)

    @property
    def on_time_share(self) -> float | None:
        """The share of closed items closed by their due date."""
        closed = self.closed_on_time + self.closed_late
        return self.closed_on_time / closed if closed else None


def target_text(target: KpiTarget | None) -> str:
    """A target as written in a report: "≥ 95%", "> 65%" ('—' without a target)."""
    if target is None:
        return "—"
    sign = "≥" if target.comparison == ">=" else ">"
    value = f"{target.value * 100:.1f}".rstrip("0").rstrip(".").replace(".", ",")
    return f"{sign} {value}%"


def verdict(met: bool | None) -> str:
    return "—" if met is None else ("Đạt" if met else "Chưa đạt")


def last_sweep_day(ctx: EngineContext) -> date | None:
    """The day of the latest sweep that evaluated something (not a day off)."""
    with session_scope(ctx.db) as session:
        return session.scalar(
            select(func.max(SweepRun.run_date)).where(SweepRun.skipped_reason.is_(None))
        )


def plan_status(ctx: EngineContext, as_of: date) -> PlanStatus:
    week_end = as_of + timedelta(days=6 - as_of.weekday())
    with session_scope(ctx.db) as session:
        by_status = dict(
            session.execute(
                select(DeadlineItem.status, func.count()).group_by(DeadlineItem.status)
            ).all()
        )
        due_this_week = session.scalar(
            select(func.count()).where(
                DeadlineItem.status == ItemStatus.OPEN,
                DeadlineItem.due >= as_of,
                DeadlineItem.due <= week_end,
            )
        )
        month = f"{as_of:%Y-%m}"
        month_rows = kpis(session, month, rules=ctx.one_stop, until=as_of)
    overdue = overdue_by_agency(ctx, as_of)
    reached = {code: 0 for code in ["", *(s.code for s in ctx.ladder.steps)]}
    for row in overdue:
        for code, count in row.by_step.items():
            reached[code] += count
    names = {"": "Chưa đến bậc đôn đốc"} | {s.code: s.name for s in ctx.ladder.steps}
    # The items of every loaded plan; the targets of the plan in force that day.
    plan = ctx.plan_on(as_of)
    plans = list(ctx.plans.values())
    return PlanStatus(
        as_of=as_of,
        title="; ".join(p.meta.title for p in plans) if len(plans) > 1 else plan.meta.title,
        decision=", ".join(p.meta.decision for p in plans)
        if len(plans) > 1
        else plan.meta.decision,
        open_items=by_status.get(ItemStatus.OPEN, 0),
        due_this_week=due_this_week,
        week_end=week_end,
        closed_on_time=by_status.get(ItemStatus.DONE, 0),
        closed_late=by_status.get(ItemStatus.DONE_LATE, 0),
        overdue=tuple(overdue),
        steps=tuple((code, names[code], n) for code, n in reached.items() if n),
        kpis=province_kpis(plan, month, month_rows, until=as_of),
    )


def province_kpis(
    plan: Plan, month: str, rows: Sequence[dict], until: date | None = None
) -> tuple[KpiProgress, ...]:
    """The province's rate of each indicator over a month's `kpis` rows (the month up to
    `until` when that day falls inside it), with the plan's target for it."""
    so_far = month_so_far(month, until)
    targets = {t.code: t for t in plan.kpi_targets}
    dossiers = sum(r["dossiers"] for r in rows)
    progress = []
    for key in PROVINCE_INDICATORS:
        label, target_code = INDICATORS[key]
        # Each agency's rate weighs as much as its own denominator (the dossiers received
        # in the month for the online share, those processed for the others); an agency
        # whose denominator is empty (rate None) does not count.
        weight = RATE_OVER.get(key, "dossiers")
        counted = [(r[key], r[weight]) for r in rows if r[key] is not None and r[weight]]
        whole = sum(w for _, w in counted)
        rate = round(sum(v * w for v, w in counted) / whole, 4) if whole else None
        progress.append(
            KpiProgress(key, label, month, dossiers, rate, targets.get(target_code), so_far)
        )
    return tuple(progress)


# ---------------------------------------------------------- each due date's outcome


@dataclass(frozen=True)
class DueOutcome:
    """How an obligation's items due on one day turned out: done by the due date, or
    not (done later, or still open)."""

    number: str
    title: str
    section: str
    due: date
    on_time: tuple[str, ...]  # agency names
    late: tuple[tuple[str, date | None], ...]  # (agency name, completed on, None: open)
    plan: str = ""  # the plan's code
    plan_label: str = ""  # the plan as officials name it

    @property
    def is_late(self) -> bool:
        return bool(self.late)

    def message(self) -> str:
        head = f"Nhiệm vụ {self.number}, hạn {self.due:%d/%m/%Y}: "
        if not self.late:
            return head + f"{len(self.on_time)} việc hoàn thành đúng hạn."
        late = ", ".join(
            f"{name} ({'hoàn thành ' + f'{done:%d/%m/%Y}' if done else 'chưa hoàn thành'})"
            for name, done in self.late[:NAMED_AGENCIES]
        )
        if len(self.late) > NAMED_AGENCIES:
            late += f" và {len(self.late) - NAMED_AGENCIES} cơ quan khác"
        return (
            head
            + f"{len(self.late)} việc không hoàn thành đúng hạn — {late}; "
            + (f"{len(self.on_time)} việc đúng hạn.")
        )


def due_outcomes(ctx: EngineContext, as_of: date) -> list[DueOutcome]:
    """The outcome of every (obligation, due date) before `as_of`, in due date order;
    cancelled and waived items count neither way."""
    number_of = {oid: ref for ref, oid in ctx.obligation_ids.items()}
    groups: dict[tuple[ObligationRef, date], tuple[list, list]] = {}
    with session_scope(ctx.db) as session:
        rows = session.execute(
            select(
                DeadlineItem.obligation_id,
                DeadlineItem.due,
                DeadlineItem.agency_code,
                DeadlineItem.status,
                DeadlineItem.completed_on,
            )
            .where(
                DeadlineItem.due < as_of,
                DeadlineItem.status.in_([ItemStatus.OPEN, ItemStatus.DONE, ItemStatus.DONE_LATE]),
            )
            .order_by(DeadlineItem.due, DeadlineItem.obligation_id, DeadlineItem.agency_code)
        ).all()
    for obligation_id, due, code, status, completed_on in rows:
        if obligation_id not in number_of:
            continue  # a duty a later version of its plan dropped
        on_time, late = groups.setdefault((number_of[obligation_id], due), ([], []))
        if status == ItemStatus.DONE:
            on_time.append(ctx.agency_name(code))
        else:
            late.append((ctx.agency_name(code), completed_on))
    outcomes = []
    for (ref, due), (on_time, late) in groups.items():
        plan = ctx.plans[ref.plan]
        ob = plan.obligation(ref.number)
        outcomes.append(
            DueOutcome(
                ref.number,
                ob.title,
                section_code(ob.part, ob.section),
                due,
                tuple(on_time),
                tuple(late),
                plan.meta.code,
                plan.meta.label,
            )
        )
    return outcomes
