"""Looking back at the store: the item views the flows publish, the inspection (kiểm tra)
of an agency, and the recomputation (tính lại hạn) of open items after a calendar or
rule change.

The shell around `deadlines/`: these functions read and write through `session_scope`.
An item's period key ("2025-03", "2025-Q3", …) does not depend on the calendar, so a
recomputation only ever moves due dates: it cannot double or lose an occurrence.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, or_, select, update
from sqlmodel import Session

from deadlines.calendar import WorkCalendar
from deadlines.plan import Obligation as PlanObligation
from deadlines.plan import Plan
from flows.engine import EngineContext, working_days_left
from flows.parameters import ParameterError, check_range, check_section, section_code
from models.db import session_scope
from models.store import audit_many, utcnow
from models.tables import DeadlineItem, Escalation, Event, ItemStatus, Obligation
from models.tables import Plan as PlanRow

STATUS_VI = {
    ItemStatus.OPEN: "Đang mở",
    ItemStatus.DONE: "Hoàn thành đúng hạn",
    ItemStatus.DONE_LATE: "Hoàn thành trễ hạn",
    ItemStatus.WAIVED: "Được miễn",
    ItemStatus.CANCELLED: "Đã hủy",
}


def obligation_section(ob: PlanObligation) -> str:
    return section_code(ob.part, ob.section)


def obligation_dues(plan: Plan, cal: WorkCalendar, ob: PlanObligation) -> list[date]:
    """The due dates of a date-based obligation in the plan year, from the plan's start:
    the dates `engine.materialise` creates items for."""
    return [due for _, due in plan.occurrences(ob, cal)]


def state_label(
    cal: WorkCalendar, status: str, due: date, completed_on: date | None, today: date
) -> str:
    """An item's state as an operator reads it: "Quá hạn 3 ngày làm việc", …"""
    if status == ItemStatus.OPEN:
        left = working_days_left(cal, due, today)
        if left > 0:
            return f"Còn {left} ngày làm việc"
        return "Đến hạn hôm nay" if left == 0 else f"Quá hạn {-left} ngày làm việc"
    if status == ItemStatus.DONE and completed_on is not None:
        return f"Hoàn thành đúng hạn ({completed_on:%d/%m/%Y})"
    if status == ItemStatus.DONE_LATE and completed_on is not None:
        late = -working_days_left(cal, due, completed_on)
        return f"Hoàn thành trễ {late} ngày làm việc ({completed_on:%d/%m/%Y})"
    return STATUS_VI.get(status, status)


def _highest_steps():
    return (
        select(Escalation.item_id, func.max(Escalation.rank).label("rank"))
        .group_by(Escalation.item_id)
        .subquery()
    )


# ---------------------------------------------------------------- one obligation


@dataclass(frozen=True)
class ItemView:
    item_id: int
    agency_code: str
    agency_name: str
    due: date
    status: str
    state: str
    step: str  # the highest ladder step reached, "" if none


def obligation_items(
    ctx: EngineContext, number: str, today: date, plan: str | None = None
) -> list[ItemView]:
    """An obligation's items an operator looks at today: every item already in the
    ladder's reach (due up to the first reminder's horizon) and the next occurrence.
    Open overdue items first, then open ones, then closed ones (latest first)."""
    horizon = ctx.cal.add_working_days(today, max(0, -ctx.ladder.earliest_offset))
    obligation_id = ctx.obligation_ids[ctx.ref(number, plan)]
    top = _highest_steps()
    with session_scope(ctx.db) as session:
        upcoming = session.scalar(
            select(func.min(DeadlineItem.due)).where(
                DeadlineItem.obligation_id == obligation_id, DeadlineItem.due > horizon
            )
        )
        rows = session.execute(
            select(
                DeadlineItem.id,
                DeadlineItem.agency_code,
                DeadlineItem.due,
                DeadlineItem.status,
                DeadlineItem.completed_on,
                top.c.rank,
            )
            .outerjoin(top, top.c.item_id == DeadlineItem.id)
            .where(
                DeadlineItem.obligation_id == obligation_id,
                DeadlineItem.due <= max(horizon, upcoming or horizon),
            )
        ).all()
    views = [
        ItemView(
            item_id=item_id,
            agency_code=code,
            agency_name=ctx.agency_name(code),
            due=due,
            status=status,
            state=state_label(ctx.cal, status, due, completed_on, today),
            step=ctx.ladder.steps[rank].name if rank is not None else "",
        )
        for item_id, code, due, status, completed_on, rank in rows
    ]

    def order(view: ItemView):
        if view.status == ItemStatus.OPEN:
            return (0 if view.due < today else 1, view.due.toordinal(), view.agency_name)
        return (2, -view.due.toordinal(), view.agency_name)

    return sorted(views, key=order)


# ------------------------------------------------------------ overdue per agency


@dataclass(frozen=True)
class AgencyOverdue:
    agency_code: str
    agency_name: str
    total: int
    by_step: dict[str, int]  # highest step code reached -> items ("" : none yet)
    oldest_due: date


def overdue_by_agency(
    ctx: EngineContext, today: date, agencies: Sequence[str] | None = None
) -> list[AgencyOverdue]:
    """Open items past their due date, per agency and highest ladder step reached;
    the agencies with the most first."""
    top = _highest_steps()
    query = (
        select(DeadlineItem.agency_code, top.c.rank, func.count(), func.min(DeadlineItem.due))
        .outerjoin(top, top.c.item_id == DeadlineItem.id)
        .where(DeadlineItem.status == ItemStatus.OPEN, DeadlineItem.due < today)
        .group_by(DeadlineItem.agency_code, top.c.rank)
    )
    if agencies is not None:
        query = query.where(DeadlineItem.agency_code.in_(list(agencies)))
    totals: dict[str, int] = defaultdict(int)
    steps: dict[str, dict[str, int]] = defaultdict(dict)
    oldest: dict[str, date] = {}
    with session_scope(ctx.db) as session:
        for code, rank, count, first_due in session.execute(query):
            totals[code] += count
            step = ctx.ladder.steps[rank].code if rank is not None else ""
            steps[code][step] = steps[code].get(step, 0) + count
            oldest[code] = min(first_due, oldest.get(code, first_due))
    rows = [
        AgencyOverdue(code, ctx.agency_name(code), totals[code], steps[code], oldest[code])
        for code in totals
    ]
    return sorted(rows, key=lambda r: (-r.total, r.agency_name))


# -------------------------------------------------------------------- inspection

# The compliance categories of an inspection, in the order a report lists them.
CATEGORIES = {
    "done": "Hoàn thành đúng hạn",
    "done_late": "Hoàn thành trễ hạn",
    "open": "Chưa đến hạn",
    "overdue": "Quá hạn chưa hoàn thành",
    "waived": "Được miễn",
}


@dataclass(frozen=True)
class InspectedItem:
    item_id: int
    number: str
    title: str
    section: str
    due: date
    category: str  # a key of CATEGORIES
    state: str
    evidence: str
    step: str  # highest ladder step reached, "" if none
    transfer: str  # "" or how the item changed hands (succession)
    plan: str = ""  # the item's plan as officials name it, when the report covers several


@dataclass
class ComplianceReport:
    """A compliance report for one agency, one plan (or every loaded plan) and one section
    of it (or all), one range of due dates."""

    plan_title: str
    decision: str
    agency_code: str
    agency_name: str
    section: str | None
    section_title: str
    start: date
    end: date
    as_of: date
    items: list[InspectedItem]
    counts: dict[str, int] = field(default_factory=dict)  # category -> items
    by_step: list[tuple[str, int]] = field(default_factory=list)  # (step name, items)
    plan: str | None = None  # the plan asked for; None: not asked (every plan, or the only)
    plans: tuple[str, ...] = ()  # the plans covered, as officials name them

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def on_time_rate(self) -> float | None:
        """Share of completed items completed on time, or None if none was completed."""
        done = self.counts.get("done", 0)
        completed = done + self.counts.get("done_late", 0)
        return done / completed if completed else None


def compliance_report(
    ctx: EngineContext,
    agency_code: str,
    start: date,
    end: date,
    as_of: date,
    section: str | None = None,
    plan: str | None = None,
) -> ComplianceReport:
    """How an agency did on the items due between `start` and `end` (inclusive), as of
    `as_of`: done on time, done late, not yet due, overdue, waived; and the highest ladder
    step each reached. Items the agency inherited by succession count for it; items it
    handed over are listed with the successor named.

    The items of `plan` (a section of it: `section`), or of every loaded plan; a section
    belongs to one plan, so with several plans loaded it needs the plan."""
    agency = ctx.agency(agency_code)
    check_range(start, end)
    chosen = _inspected_plan(ctx, plan, section)
    covered = [chosen] if chosen is not None else list(ctx.plans.values())
    section = check_section(chosen, section) if chosen is not None else None
    numbers = {
        (p.meta.code, ob.number)
        for p in covered
        for ob in p.obligations
        if section is None or obligation_section(ob) == section
    }
    sections = {
        (p.meta.code, ob.number): obligation_section(ob) for p in covered for ob in p.obligations
    }
    labels = {p.meta.code: p.meta.label for p in covered}
    top = _highest_steps()
    with session_scope(ctx.db) as session:
        rows = session.execute(
            select(
                DeadlineItem.id,
                PlanRow.code,
                Obligation.number,
                Obligation.title,
                DeadlineItem.agency_code,
                DeadlineItem.original_agency_code,
                DeadlineItem.due,
                DeadlineItem.status,
                DeadlineItem.completed_on,
                DeadlineItem.evidence,
                top.c.rank,
            )
            .join(Obligation, Obligation.id == DeadlineItem.obligation_id)
            .join(PlanRow, PlanRow.id == Obligation.plan_id)
            .outerjoin(top, top.c.item_id == DeadlineItem.id)
            .where(
                or_(
                    DeadlineItem.agency_code == agency.code,
                    DeadlineItem.original_agency_code == agency.code,
                ),
                PlanRow.code.in_([p.meta.code for p in covered]),
                DeadlineItem.due >= start,
                DeadlineItem.due <= end,
                DeadlineItem.status != ItemStatus.CANCELLED,
            )
            .order_by(DeadlineItem.due, PlanRow.year, Obligation.number, DeadlineItem.id)
        ).all()
    items = []
    counts = dict.fromkeys(CATEGORIES, 0)
    reached = [0] * len(ctx.ladder.steps)
    never = 0
    for row in rows:
        item_id, plan_code, number, title, code, original, due, status, done_on, evidence, rank = (
            row
        )
        if section is not None and (plan_code, number) not in numbers:
            continue
        category = _category(status, due, as_of)
        counts[category] += 1
        if rank is None:
            never += 1
        else:
            reached[rank] += 1
        transfer = ""
        if original and original != code:
            transfer = (
                f"Nhận từ {ctx.agency_name(original)}"
                if code == agency.code
                else f"Đã chuyển cho {ctx.agency_name(code)}"
            )
        items.append(
            InspectedItem(
                item_id=item_id,
                number=number,
                title=title,
                section=sections.get((plan_code, number), ""),
                due=due,
                category=category,
                state=state_label(ctx.cal, status, due, done_on, as_of),
                evidence=evidence or "",
                step=ctx.ladder.steps[rank].name if rank is not None else "",
                transfer=transfer,
                plan=labels.get(plan_code, plan_code) if len(covered) > 1 else "",
            )
        )
    section_title = "Toàn bộ kế hoạch"
    if section is not None:
        section_title = next(
            s.title for s in chosen.sections if section_code(s.part, s.number) == section
        )
    by_step = [("Chưa đến bậc nào", never)] + [
        (step.name, reached[step.rank]) for step in ctx.ladder.steps
    ]
    return ComplianceReport(
        plan_title="; ".join(p.meta.title for p in covered),
        decision=", ".join(p.meta.decision for p in covered),
        agency_code=agency.code,
        agency_name=agency.name,
        section=section,
        section_title=section_title,
        start=start,
        end=end,
        as_of=as_of,
        items=items,
        counts=counts,
        by_step=by_step,
        plan=chosen.meta.code if chosen is not None and plan else None,
        plans=tuple(labels.values()),
    )


def _inspected_plan(ctx: EngineContext, plan: str | None, section: str | None) -> Plan | None:
    """The plan an inspection covers: `plan`; without it, the one loaded plan when a
    section is asked for, else every plan (None)."""
    if plan is not None and str(plan).strip():
        return ctx.plan_of(plan)
    if section is None or not section.strip():
        return None
    if len(ctx.plans) == 1:
        return next(iter(ctx.plans.values()))
    raise ParameterError(
        f"Mục '{section}' thuộc một kế hoạch cụ thể: hãy nêu kế hoạch (--plan). "
        f"Các kế hoạch đã nạp: {', '.join(ctx.plans)}."
    )


def _category(status: str, due: date, as_of: date) -> str:
    if status == ItemStatus.OPEN:
        return "overdue" if due < as_of else "open"
    return {ItemStatus.DONE: "done", ItemStatus.DONE_LATE: "done_late"}.get(status, "waived")


# --------------------------------------------------------------------- recompute


@dataclass(frozen=True)
class DueChange:
    kind: str  # moved | orphan
    item_id: int
    number: str
    agency_code: str
    agency_name: str
    old_due: date
    new_due: date | None
    reason: str
    plan: str = ""  # the code of the item's plan


@dataclass
class RecomputeResult:
    run_date: date
    dry_run: bool
    checked: int = 0  # open items looked at
    changes: list[DueChange] = field(default_factory=list)  # due dates moved
    orphans: list[DueChange] = field(default_factory=list)  # left unchanged, reported

    @property
    def moved(self) -> list[DueChange]:
        return self.changes


def recompute(
    ctx: EngineContext,
    today: date,
    *,
    dry_run: bool = False,
    actor: str = "admin",
    plan: str | None = None,
) -> RecomputeResult:
    """Recompute the due dates of open items from their obligation's current rule and the
    current calendar, update those that changed and say why. Idempotent: a second run
    finds nothing to change.

    Date-based items take the due date of their period (their key: "2025-03", "2025-Q3",
    …) under the current rule and calendar; event items take `rule.due_after(calendar,
    event date)`. An open item whose period the rule no longer has is reported as an
    orphan and left as it is. Every loaded plan's items, or only `plan`'s.
    """
    with session_scope(ctx.db) as session:
        return recompute_in(ctx, session, today, dry_run=dry_run, actor=actor, plan=plan)


def recompute_in(
    ctx: EngineContext,
    session: Session,
    today: date,
    *,
    dry_run: bool,
    actor: str,
    plan: str | None = None,
    numbers: Sequence[str] | None = None,
) -> RecomputeResult:
    """`recompute` in the caller's transaction (loading a plan recomputes the items of
    the obligations whose timing changed: `plan`'s `numbers`)."""
    result = RecomputeResult(run_date=today, dry_run=dry_run)
    number_of = {
        oid: ref
        for ref, oid in ctx.obligation_ids.items()
        if (plan is None or ref.plan == plan) and (numbers is None or ref.number in numbers)
    }
    rows = session.execute(
        select(
            DeadlineItem.id,
            DeadlineItem.obligation_id,
            DeadlineItem.agency_code,
            DeadlineItem.period_key,
            DeadlineItem.due,
            DeadlineItem.status,
            Event.event_code,
            Event.occurred_on,
        )
        .outerjoin(Event, Event.id == DeadlineItem.event_id)
        .where(
            DeadlineItem.obligation_id.in_(list(number_of) or [-1]),
            DeadlineItem.status != ItemStatus.CANCELLED,
        )
        .order_by(DeadlineItem.id)
    ).all()
    result.checked = sum(1 for row in rows if row.status == ItemStatus.OPEN)
    writes: list[tuple[int, dict]] = []
    _recompute_event_items(ctx, number_of, rows, result, writes)
    _recompute_dated_items(ctx, number_of, rows, result, writes)
    if dry_run:
        return result
    now = utcnow()
    applied = set()
    old_due = {c.item_id: c.old_due for c in result.changes}
    for item_id, values in writes:
        # Only from the state the change was computed from: an item completed, or moved
        # by a concurrent recompute, in the meantime is left as it is.
        moved = session.execute(
            update(DeadlineItem)
            .where(
                DeadlineItem.id == item_id,
                DeadlineItem.status == ItemStatus.OPEN,
                DeadlineItem.due == old_due[item_id],
            )
            .values(**values, updated_at=now)
        ).rowcount
        if moved:
            applied.add(item_id)
    result.changes = [c for c in result.changes if c.item_id in applied]
    audit_many(session, [_audit(actor, change) for change in result.changes])
    return result


def _recompute_event_items(ctx, number_of, rows, result: RecomputeResult, writes) -> None:
    """Open event items: the due date counted again from the event's date."""
    for item_id, oid, code, _key, due, status, event_code, occurred_on in rows:
        if event_code is None or status != ItemStatus.OPEN:
            continue
        ref = number_of[oid]
        ob = ctx.obligation(ref.number, ref.plan)
        new_due = ob.rule.due_after(ctx.cal, occurred_on, event_code=event_code)
        if new_due is None:  # created with a due date, so the rule no longer waits for it
            reason = (
                f"Quy tắc hiện hành không còn tính hạn từ sự kiện này "
                f"({ob.rule.describe(ctx.cal)})."
            )
            result.orphans.append(_due_change(ctx, ref, item_id, code, due, None, reason))
            continue
        if new_due == due:
            continue
        reason = (
            f"{ctx.cal.explain(due)} {ob.rule.describe(ctx.cal)}; sự kiện ngày "
            f"{occurred_on:%d/%m/%Y}."
        )
        result.changes.append(_due_change(ctx, ref, item_id, code, due, new_due, reason))
        writes.append((item_id, {"due": new_due}))


def _recompute_dated_items(ctx, number_of, rows, result: RecomputeResult, writes) -> None:
    """Open items of date-based rules: the current due date of their period."""
    dues: dict[tuple[str, str], dict[str, date]] = {}
    for item_id, oid, code, key, due, status, event_code, _occurred_on in rows:
        if event_code is not None or status != ItemStatus.OPEN:
            continue
        ref = number_of[oid]
        ob = ctx.obligation(ref.number, ref.plan)
        if ref not in dues:
            dues[ref] = dict(ctx.plans[ref.plan].occurrences(ob, ctx.cal))
        new_due = dues[ref].get(key)
        rule = ob.rule.describe(ctx.cal)
        if new_due is None:
            reason = (
                f"Quy tắc hiện hành không còn kỳ {key} ({rule}). Việc được giữ nguyên: miễn "
                "hoặc hủy nếu không còn phải làm."
            )
            result.orphans.append(_due_change(ctx, ref, item_id, code, due, None, reason))
        elif new_due != due:
            reason = f"{ctx.cal.explain(due)} {rule}."
            result.changes.append(_due_change(ctx, ref, item_id, code, due, new_due, reason))
            writes.append((item_id, {"due": new_due}))


def _due_change(ctx, ref, item_id: int, agency: str, due: date, new_due, reason: str) -> DueChange:
    """A due date moved (`new_due`), or an orphan (None) left as it is."""
    kind = "orphan" if new_due is None else "moved"
    name = ctx.agency_name(agency)
    return DueChange(kind, item_id, ref.number, agency, name, due, new_due, reason, ref.plan)


def _audit(actor: str, change: DueChange) -> dict:
    return {
        "actor": actor,
        "action": "recompute_move",
        "entity": "deadline_item",
        "entity_id": change.item_id,
        "detail": {
            "from": change.old_due,
            "to": change.new_due,
            "reason": change.reason,
        },
    }
