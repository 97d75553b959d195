"""Loading, listing and retiring plans (kế hoạch): several at once, each with its own
obligations, items and deployments. (Not `flows/plans.py`: Prefect runs a flow file with
its folder on the import path, where that name would hide the `plans` data package.)

load → compare with the stored version → store it → what that does to open items (due
dates moved by a new timing, items no longer owed cancelled, items newly owed created) →
report. One transaction: an error, or a dry run, leaves the store as it was. Loading the
same file again changes nothing; a changed version of a plan (same code) updates it in
place, never duplicates it.

The shell around `deadlines.plan` (reading a plan) and `deadlines.plan_changes` (what a
new version changes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlmodel import Session

from deadlines.plan import Plan, parse_plan
from deadlines.plan_changes import LEAD_FIELDS, TIMING_FIELDS, Duty, PlanChanges, compare
from flows.engine import (
    EngineContext,
    EngineError,
    ObligationRef,
    materialise,
    plan_digest,
    read_plan_text,
    shown_path,
    store_plan,
)
from flows.parameters import TIMEZONE
from flows.reports.review import DueChange, recompute_in
from models.db import session_scope
from models.store import audit, audit_many, utcnow
from models.tables import Assignment, DeadlineItem, ItemStatus, Obligation
from models.tables import Plan as PlanRow

NEW, UNCHANGED, CHANGED = "new", "unchanged", "changed"


@dataclass(frozen=True)
class Cancellation:
    """An open item closed because its plan no longer asks for it, and why."""

    item_id: int
    number: str
    agency_code: str
    agency_name: str
    due: date
    reason: str


def _cancellation(ctx, item_id: int, number: str, agency: str, due: date, reason: str):
    return Cancellation(item_id, number, agency, ctx.agency_name(agency), due, reason)


@dataclass
class LoadReport:
    """What loading a plan file did (or, in a dry run, would do)."""

    code: str
    label: str
    path: str
    status: str  # new | unchanged | changed
    changes: PlanChanges
    dry_run: bool = False
    retired_on: date | None = None
    created: dict[str, int] = field(default_factory=dict)  # number -> items created
    moved: list[DueChange] = field(default_factory=list)  # open items whose due date moved
    cancelled: list[Cancellation] = field(default_factory=list)

    @property
    def created_total(self) -> int:
        return sum(self.created.values())


def load_plan_file(
    ctx: EngineContext,
    path: str | Path,
    today: date,
    *,
    dry_run: bool = False,
    actor: str = "admin",
) -> LoadReport:
    """Load (or reload) the plan in `path`; `ctx` sees it from then on.

    A bad file raises `DataFileError` with every problem (file and line) and changes
    nothing. The new version's effect on the plan's open items:
    - a duty whose timing changed: each open item takes the due date of its period (or
      of its event) under the new rule; an item whose period the rule no longer has is
      cancelled;
    - a duty whose lead agencies changed: open items of agencies no longer leading are
      cancelled, the new leads' items created;
    - a removed duty: its open items are cancelled (closed items keep their history);
    - a new duty (or a first load): its items are created.
    """
    text = read_plan_text(path)
    plan = parse_plan(text, str(path), ctx.registry)
    code = plan.meta.code
    with session_scope(ctx.db) as session:
        row = session.execute(
            select(PlanRow.id, PlanRow.digest, PlanRow.retired_on).where(PlanRow.code == code)
        ).first()
        old = stored_duties(session, row.id) if row else []
        changes = compare(old, [Duty.of(ob) for ob in plan.obligations])
        status = NEW if row is None else UNCHANGED if row.digest == plan_digest(text) else CHANGED
        report = LoadReport(
            code=code,
            label=plan.meta.label,
            path=str(path),
            status=status,
            changes=changes,
            dry_run=dry_run,
            retired_on=row.retired_on if row else None,
        )
        if status == UNCHANGED:
            return report
        removed_ids = _obligation_ids(session, code, [d.number for d in changes.removed])
        store_plan(session, plan, text, shown_path(path))
        ctx.read_plans(session)
        try:
            _apply(ctx, session, plan, report, removed_ids, today, actor)
            audit(
                session,
                actor,
                "load_plan",
                "plan",
                code,
                status=status,
                path=str(path),
                digest=plan_digest(text),
                added=[d.number for d in changes.added],
                changed=[c.number for c in changes.changed],
                removed=[d.number for d in changes.removed],
                created=report.created_total,
                moved=len(report.moved),
                cancelled=len(report.cancelled),
            )
        finally:
            if dry_run:
                session.rollback()
                ctx.read_plans(session)
    return report


def _apply(ctx, session, plan: Plan, report: LoadReport, removed_ids, today, actor) -> None:
    code, changes = plan.meta.code, report.changes
    retimed = [c for c in changes.changed if c.changed(*TIMING_FIELDS)]
    for change in retimed:
        report.moved += _move_single_occurrence(ctx, session, plan, change, actor)
    if retimed:
        numbers = [c.number for c in retimed]
        result = recompute_in(
            ctx, session, today, dry_run=False, actor=actor, plan=code, numbers=numbers
        )
        report.moved += result.moved
        report.cancelled += [
            Cancellation(
                o.item_id,
                o.number,
                o.agency_code,
                o.agency_name,
                o.old_due,
                "Phiên bản mới của kế hoạch không còn kỳ này "
                f"(thời hạn: {plan.obligation(o.number).timing}).",
            )
            for o in result.orphans
        ]
    for change in changes.changed:
        if change.changed(*LEAD_FIELDS):
            report.cancelled += _no_longer_leading(ctx, session, plan, change.number, today)
    report.cancelled += [
        _cancellation(
            ctx,
            item_id,
            number,
            agency_code,
            due,
            f"Nhiệm vụ {number} không còn trong phiên bản mới của kế hoạch {code}.",
        )
        for item_id, number, agency_code, due in _open_items(session, removed_ids)
    ]
    cancel(session, report.cancelled, actor, today)
    if report.status == NEW:
        numbers = [ob.number for ob in plan.obligations]
    else:
        touched = {c.number for c in changes.changed if c.changed(*TIMING_FIELDS, *LEAD_FIELDS)}
        numbers = [d.number for d in changes.added] + sorted(touched)
    for number in numbers:
        created = materialise(ctx, session, [number], plan=code)
        if created:
            report.created[number] = created


def _move_single_occurrence(
    ctx: EngineContext, session: Session, plan: Plan, change, actor: str
) -> list[DueChange]:
    """A one-off duty given a new date ("Trước ngày 05/3" → "Trước ngày 10/3") keeps its
    items, their reminders and history: each open item of the old date takes the new one
    (key and due date), rather than being cancelled and created again. Only when the new
    version has exactly one occurrence and the agency has no item of it yet."""
    ob = plan.obligation(change.number)
    new = plan.occurrences(ob, ctx.cal)
    if len(new) != 1:
        return []
    key, due = new[0]
    oid = ctx.obligation_ids[ObligationRef(plan.meta.code, change.number)]
    rows = session.execute(
        select(
            DeadlineItem.id,
            DeadlineItem.agency_code,
            DeadlineItem.period_key,
            DeadlineItem.due,
            DeadlineItem.status,
        ).where(DeadlineItem.obligation_id == oid, DeadlineItem.event_id.is_(None))
    ).all()
    has_new = {agency for _, agency, period, _, _ in rows if period == key}
    open_old: dict[str, list] = defaultdict(list)
    for row in rows:
        if row.status == ItemStatus.OPEN and row.period_key != key:
            open_old[row.agency_code].append(row)
    timing = next(f for f in change.fields if f.field in TIMING_FIELDS)
    reason = f"Thời hạn mới trong kế hoạch {plan.meta.code}: «{ob.timing}» (trước: «{timing.old}»)."
    moved = []
    for agency, items in open_old.items():
        if len(items) != 1 or agency in has_new:
            continue
        (item,) = items
        session.execute(
            update(DeadlineItem)
            .where(DeadlineItem.id == item.id)
            .values(period_key=key, due=due, updated_at=utcnow())
        )
        moved.append(
            DueChange(
                "moved",
                item.id,
                change.number,
                agency,
                ctx.agency_name(agency),
                item.due,
                due,
                reason,
                plan.meta.code,
            )
        )
    audit_many(
        session,
        (
            {
                "actor": actor,
                "action": "plan_move",
                "entity": "deadline_item",
                "entity_id": m.item_id,
                "detail": {"from": m.old_due, "to": m.new_due, "reason": m.reason},
            }
            for m in moved
        ),
    )
    return moved


def stored_duties(session: Session, plan_id: int) -> list[Duty]:
    """The plan's current duties as the store holds them (the version last loaded)."""
    roles: dict[tuple[int, str], list[str]] = defaultdict(list)
    for oid, target, role in session.execute(
        select(Assignment.obligation_id, Assignment.target, Assignment.role)
        .join(Obligation, Obligation.id == Assignment.obligation_id)
        .where(Obligation.plan_id == plan_id)
        .order_by(Assignment.id)
    ):
        roles[(oid, role)].append(target)
    return [
        Duty(
            number=ob.number,
            section=ob.section,
            title=ob.title,
            content=ob.content,
            timing=ob.timing,
            rule=ob.rule,
            lead=tuple(roles[(ob.id, "lead")]),
            coordinating=tuple(roles[(ob.id, "coordinating")]),
        )
        for ob in session.scalars(
            select(Obligation)
            .where(Obligation.plan_id == plan_id, Obligation.removed_at.is_(None))
            .order_by(Obligation.id)
        )
    ]


def _obligation_ids(session: Session, code: str, numbers: Sequence[str]) -> list[int]:
    if not numbers:
        return []
    return list(
        session.scalars(
            select(Obligation.id)
            .join(PlanRow, PlanRow.id == Obligation.plan_id)
            .where(PlanRow.code == code, Obligation.number.in_(list(numbers)))
        )
    )


def _open_items(session: Session, obligation_ids: Sequence[int]):
    if not obligation_ids:
        return []
    return session.execute(
        select(DeadlineItem.id, Obligation.number, DeadlineItem.agency_code, DeadlineItem.due)
        .join(Obligation, Obligation.id == DeadlineItem.obligation_id)
        .where(
            DeadlineItem.obligation_id.in_(list(obligation_ids)),
            DeadlineItem.status == ItemStatus.OPEN,
        )
        .order_by(DeadlineItem.due, DeadlineItem.id)
    ).all()


def _no_longer_leading(
    ctx: EngineContext, session: Session, plan: Plan, number: str, today: date
) -> list[Cancellation]:
    """Open date-based items, due from `today` on, of an obligation whose agency the new
    leads no longer include (on the item's due date, nor today; an item inherited by
    succession counts for the agency it came from). What fell due before the new version
    was owed under the old one and stays open; event items stay with the agency the
    event named."""
    ob = plan.obligation(number)
    oid = ctx.obligation_ids[ObligationRef(plan.meta.code, number)]
    out = []
    for item_id, agency_code, original, due in session.execute(
        select(
            DeadlineItem.id,
            DeadlineItem.agency_code,
            DeadlineItem.original_agency_code,
            DeadlineItem.due,
        ).where(
            DeadlineItem.obligation_id == oid,
            DeadlineItem.status == ItemStatus.OPEN,
            DeadlineItem.event_id.is_(None),
            DeadlineItem.due >= today,
        )
    ):
        owed = set(ctx.responsible(ob.lead, due)) | set(ctx.responsible(ob.lead, today))
        if agency_code in owed or (original is not None and original in owed):
            continue
        out.append(
            _cancellation(
                ctx,
                item_id,
                number,
                agency_code,
                due,
                f"Theo phiên bản mới của kế hoạch {plan.meta.code}, {ctx.agency_name(agency_code)}"
                f" không còn chủ trì nhiệm vụ {number}.",
            )
        )
    return out


def cancel(session: Session, cancellations: Sequence[Cancellation], actor: str, on: date) -> None:
    """Close open items as cancelled, each with its reason on the item and in the audit."""
    now = utcnow()
    for c in cancellations:
        session.execute(
            update(DeadlineItem)
            .where(DeadlineItem.id == c.item_id, DeadlineItem.status == ItemStatus.OPEN)
            .values(status=ItemStatus.CANCELLED, evidence=c.reason, updated_at=now)
        )
    audit_many(
        session,
        (
            {
                "actor": actor,
                "action": "cancel_by_plan",
                "entity": "deadline_item",
                "entity_id": c.item_id,
                "detail": {"on": on, "reason": c.reason},
            }
            for c in cancellations
        ),
    )


# ------------------------------------------------------------------------ retire


@dataclass
class RetireReport:
    code: str
    label: str
    on: date
    already: bool = False  # retired on that day before: nothing changed
    cancelled: list[Cancellation] = field(default_factory=list)
    still_open: int = 0  # open items due by `on`: they stay until completed or waived


def retire_plan(ctx: EngineContext, code: str, on: date, actor: str = "admin") -> RetireReport:
    """End a plan on `on` (its last day in force): it creates no item due after that day
    and no event starts its duties any more; its open items due after it are cancelled,
    those due by then stay open (overdue, in the digests) until completed or waived. Its
    obligation deployments are no longer generated."""
    plan = ctx.plan_of(code)
    ctx.cal.is_working_day(on)  # refuses a date outside the calendar's range
    report = RetireReport(plan.meta.code, plan.meta.label, on)
    previous = ctx.retired.get(plan.meta.code)
    if previous is not None and previous < on:
        raise EngineError(
            f"Kế hoạch {plan.meta.code} đã thôi thực hiện từ sau ngày {previous:%d/%m/%Y}; "
            "không lùi ngày thôi thực hiện về sau được."
        )
    if previous == on:
        report.already = True
    with session_scope(ctx.db) as session:
        ids = [
            oid for ref, oid in ctx.obligation_ids.items() if ref.plan == plan.meta.code
        ] + _obligation_ids(session, plan.meta.code, _removed_numbers(session, plan.meta.code))
        rows = _open_items(session, ids)
        reason = f"{plan.meta.label} thôi thực hiện sau ngày {on:%d/%m/%Y}."
        report.cancelled = [
            _cancellation(ctx, item_id, number, agency, due, reason)
            for item_id, number, agency, due in rows
            if due > on
        ]
        report.still_open = sum(1 for *_, due in rows if due <= on)
        if report.already:
            return report
        session.execute(update(PlanRow).where(PlanRow.code == plan.meta.code).values(retired_on=on))
        cancel(session, report.cancelled, actor, on)
        audit(
            session,
            actor,
            "retire_plan",
            "plan",
            plan.meta.code,
            on=on,
            cancelled=len(report.cancelled),
            still_open=report.still_open,
        )
        ctx.read_plans(session)  # from now on, this context owes nothing after `on`
    return report


def _removed_numbers(session: Session, code: str) -> list[str]:
    return list(
        session.scalars(
            select(Obligation.number)
            .join(PlanRow, PlanRow.id == Obligation.plan_id)
            .where(PlanRow.code == code, Obligation.removed_at.is_not(None))
        )
    )


# -------------------------------------------------------------------------- list


@dataclass(frozen=True)
class PlanListing:
    code: str
    label: str
    title: str
    decision: str
    year: int
    province: str
    starts: date
    ends: date
    retired_on: date | None
    state: str  # how the plan stands on the day asked
    obligations: int
    items: dict[str, int]  # status -> items
    overdue: int  # open items past their due date
    loaded_at: datetime
    source_file: str | None
    digest: str | None

    def as_json(self) -> dict:
        return {
            "code": self.code,
            "label": self.label,
            "title": self.title,
            "decision": self.decision,
            "year": self.year,
            "province": self.province,
            "starts": self.starts.isoformat(),
            "ends": self.ends.isoformat(),
            "retired_on": self.retired_on.isoformat() if self.retired_on else None,
            "state": self.state,
            "obligations": self.obligations,
            "items": self.items,
            "overdue": self.overdue,
            "loaded_at": self.loaded_at.isoformat(timespec="seconds"),
            "source_file": self.source_file,
            "digest": self.digest,
        }


def plan_listing(ctx: EngineContext, today: date) -> list[PlanListing]:
    """Every loaded plan with its period in force, its state on `today` and its items."""
    with session_scope(ctx.db) as session:
        stored = {
            row.code: row
            for row in session.execute(
                select(
                    PlanRow.code,
                    PlanRow.loaded_at,
                    PlanRow.source_file,
                    PlanRow.digest,
                    PlanRow.retired_on,
                )
            )
        }
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        overdue: dict[str, int] = defaultdict(int)
        late = (DeadlineItem.due < today).label("late")
        for code, status, is_late, count in session.execute(
            select(PlanRow.code, DeadlineItem.status, late, func.count())
            .join(Obligation, Obligation.plan_id == PlanRow.id)
            .join(DeadlineItem, DeadlineItem.obligation_id == Obligation.id)
            .group_by(PlanRow.code, DeadlineItem.status, late)
        ):
            counts[code][status] = counts[code].get(status, 0) + count
            if status == ItemStatus.OPEN and is_late:
                overdue[code] += count
    return [
        PlanListing(
            code=code,
            label=plan.meta.label,
            title=plan.meta.title,
            decision=plan.meta.decision,
            year=plan.meta.year,
            province=plan.meta.province,
            starts=plan.start,
            ends=ctx.plan_end(plan),
            retired_on=ctx.retired.get(code),
            state=_state(ctx, plan, today),
            obligations=len(plan.obligations),
            items=dict(sorted(counts[code].items())),
            overdue=overdue[code],
            loaded_at=_utc(stored[code].loaded_at),
            source_file=stored[code].source_file,
            digest=stored[code].digest,
        )
        for code, plan in ctx.plans.items()
    ]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def local_time(moment: datetime) -> str:
    """A moment in Vietnam's time, to the minute, as people read it."""
    return moment.astimezone(ZoneInfo(TIMEZONE)).strftime("%d/%m/%Y %H:%M")


def _state(ctx: EngineContext, plan: Plan, today: date) -> str:
    if today < plan.start:
        return f"chưa có hiệu lực (từ {plan.start:%d/%m/%Y})"
    if ctx.in_force(plan, today):
        return "đang thực hiện"
    retired = ctx.retired.get(plan.meta.code)
    if retired is not None and retired < date(plan.meta.year, 12, 31):
        return f"thôi thực hiện sau ngày {retired:%d/%m/%Y}"
    return f"đã hết năm kế hoạch ({ctx.plan_end(plan):%d/%m/%Y})"
