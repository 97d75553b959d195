"""The engine: the steps the flows and the CLI run, in the order the process runs them.

materialise → transfer (succession) → evaluate (ladder) → queue notifications → report.

Every step is set-based (a handful of statements however many items) and idempotent:
unique keys in the database, not checks in Python, make a second run change nothing.
The business rules live in `deadlines/` (pure); this module reads and writes the store.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from deadlines.agencies import Registry, load_registry
from deadlines.calendar import WorkCalendar
from deadlines.dossier import OneStopRules
from deadlines.ladder import Ladder, Step, load_ladder, role_address
from deadlines.plan import Plan, load_plan, rule_parts
from flows.dossiers import DossierAlerts, dossier_alerts
from models.db import make_engine, migrate, session_scope
from models.store import audit, audit_many, insert_ignoring_duplicates, upsert, utcnow
from models.tables import (
    Agency,
    Assignment,
    DeadlineItem,
    Escalation,
    Event,
    ItemStatus,
    Obligation,
    SweepRun,
)
from models.tables import Plan as PlanRow
from notifications import compose
from notifications.outbox import store_messages

PLAN_ENV, REGISTRY_ENV, LADDER_ENV = (
    "DUNGHAN_PLAN_FILE",
    "DUNGHAN_REGISTRY_FILE",
    "DUNGHAN_LADDER_FILE",
)


class EngineError(ValueError):
    """A request the engine refuses, with a message for the person who made it."""


# --------------------------------------------------------------------------- context


@dataclass
class EngineContext:
    """Everything a run needs: the store, the calendar, the plan, the registry, the ladder."""

    db: Engine
    cal: WorkCalendar
    plan: Plan
    registry: Registry
    ladder: Ladder
    one_stop: OneStopRules = field(default_factory=OneStopRules.load)
    obligation_ids: dict[str, int] = field(default_factory=dict)
    # The items the plan year owes (computed once per context) and those already known
    # to be stored, so the daily sweep does not rebuild and re-insert the whole year.
    _planned: list[PlannedItem] | None = field(default=None, repr=False)
    materialised: set[tuple[int, str, str]] = field(default_factory=set, repr=False)

    @classmethod
    def open(
        cls,
        database_url: str | None = None,
        *,
        plan_path: str | Path | None = None,
        ladder_path: str | Path | None = None,
        registry_path: str | Path | None = None,
        calendar: WorkCalendar | None = None,
    ) -> EngineContext:
        """Open (create or migrate) the database and load the reference data into it.

        Files not given fall back to the settings `DUNGHAN_PLAN_FILE`,
        `DUNGHAN_REGISTRY_FILE`, `DUNGHAN_LADDER_FILE` (and `DUNGHAN_CALENDAR_OVERRIDES`
        for the calendar), then to the shipped data.
        """
        db = make_engine(database_url)
        migrate(db)
        registry = load_registry(registry_path or os.environ.get(REGISTRY_ENV) or None)
        ctx = cls(
            db=db,
            cal=calendar or WorkCalendar.from_settings(),
            plan=load_plan(plan_path or os.environ.get(PLAN_ENV) or None, registry=registry),
            registry=registry,
            ladder=load_ladder(ladder_path or os.environ.get(LADDER_ENV) or None),
        )
        ctx.sync_reference_data()
        return ctx

    def sync_reference_data(self) -> None:
        """Upsert agencies, the plan, its obligations and assignments (idempotent)."""
        with session_scope(self.db) as session:
            upsert(
                session, Agency, [_agency_row(a) for a in self.registry.agencies.values()], ["code"]
            )
            upsert(
                session,
                PlanRow,
                [
                    {
                        "code": self.plan.meta.code,
                        "title": self.plan.meta.title,
                        "year": self.plan.meta.year,
                        "decision": self.plan.meta.decision,
                        "loaded_at": utcnow(),
                    }
                ],
                ["code"],
            )
            plan_id = session.scalar(select(PlanRow.id).where(PlanRow.code == self.plan.meta.code))
            upsert(
                session,
                Obligation,
                [
                    {
                        "plan_id": plan_id,
                        "number": ob.number,
                        "section": ob.section,
                        "title": ob.title,
                        "content": ob.content,
                        "timing": ob.timing,
                        "rule": ob.rule.to_dict(),
                    }
                    for ob in self.plan.obligations
                ],
                ["plan_id", "number"],
            )
            rows = session.execute(
                select(Obligation.number, Obligation.id).where(Obligation.plan_id == plan_id)
            )
            self.obligation_ids = {number: oid for number, oid in rows}
            assignments = [
                {"obligation_id": self.obligation_ids[ob.number], "target": code, "role": role}
                for ob in self.plan.obligations
                for role, codes in (("lead", ob.lead), ("coordinating", ob.coordinating))
                for code in codes
            ]
            insert_ignoring_duplicates(
                session, Assignment, assignments, ["obligation_id", "target", "role"]
            )

    # ------------------------------------------------------------------ lookups

    def obligation(self, number: str):
        try:
            return self.plan.obligation(number)
        except KeyError:
            known = ", ".join(ob.number for ob in self.plan.obligations)
            raise EngineError(
                f"Không có nhiệm vụ số '{number}' trong kế hoạch. Các số hợp lệ: {known}"
            ) from None

    def agency(self, code: str):
        agency = self.registry.agencies.get(code)
        if agency is None:
            raise EngineError(
                f"Mã cơ quan không hợp lệ: '{code}'. Xem danh sách bằng lệnh `dunghan agencies`."
            )
        return agency

    def agency_name(self, code: str) -> str:
        agency = self.registry.agencies.get(code)
        if agency is not None:
            return agency.name
        group = self.registry.groups.get(code)
        return group.label if group is not None else code

    def responsible(self, codes: Iterable[str], on: date, function: str | None = None) -> list[str]:
        """The agencies answering on `on` for lead codes (agencies or groups), for work of
        `function` when given (work follows its function through a split)."""
        out: dict[str, None] = {}
        for code in codes:
            for agency in self.registry.resolve(code, on=on, function=function):
                out.setdefault(agency.code)
        return list(out)

    def planned_items(self) -> list[PlannedItem]:
        """Every item the plan year owes: each occurrence of each date-based obligation
        (a duty written twice counted once), for each agency answering on its due date."""
        if self._planned is None:
            self._planned = [
                PlannedItem(self.obligation_ids[ob.number], ob.number, agency, key, due)
                for ob in self.plan.obligations
                if self.plan.owes_items(ob)
                for key, due in self.plan.occurrences(ob, self.cal)
                for agency in self.responsible(ob.lead, due, ob.function)
            ]
        return self._planned


@dataclass(frozen=True)
class PlannedItem:
    obligation_id: int
    number: str
    agency_code: str
    period_key: str
    due: date

    @property
    def key(self) -> tuple[int, str, str]:
        return (self.obligation_id, self.agency_code, self.period_key)


def _agency_row(agency) -> dict:
    return {
        "code": agency.code,
        "name": agency.name,
        "kind": str(agency.kind),
        "email": agency.email,
        "focal_email": agency.focal_email,
        "head_email": agency.head_email,
        "active_from": agency.active_from,
        "active_to": agency.active_to,
        "successor_code": agency.successor,
        "successor_from": agency.successor_from,
    }


def agency_partitions(ctx: EngineContext, count: int) -> list[list[str]]:
    """Every agency code of the registry split into `count` stable, disjoint partitions
    (by a hash of the code), so concurrent sweep runs never share an agency."""
    if count < 1:
        raise EngineError("Số phân vùng phải từ 1 trở lên.")
    parts: list[list[str]] = [[] for _ in range(count)]
    for code in sorted(ctx.registry.agencies):
        digest = hashlib.sha256(code.encode()).digest()
        parts[int.from_bytes(digest[:4], "big") % count].append(code)
    return parts


# ------------------------------------------------------------------- materialise


def materialise(
    ctx: EngineContext,
    session: Session,
    numbers: Sequence[str] | None = None,
    agencies: Sequence[str] | None = None,
) -> int:
    """Create the items of date-based obligations for the plan year; returns how many were
    new. Agencies are resolved on each due date, so a merged department's later items go
    straight to its successor and, from 1/7/2025, the district level's to the communes.

    Items already known to be stored (by this context, after a committed sweep) are not
    sent again; the unique key makes any other repeat a no-op.
    """
    now = utcnow()
    wanted = [
        item
        for item in ctx.planned_items()
        if (numbers is None or item.number in numbers)
        and (agencies is None or item.agency_code in agencies)
        and item.key not in ctx.materialised
    ]
    rows = [
        {
            "obligation_id": item.obligation_id,
            "agency_code": item.agency_code,
            "period_key": item.period_key,
            "due": item.due,
            "status": ItemStatus.OPEN,
            "created_at": now,
            "updated_at": now,
        }
        for item in wanted
    ]
    inserted = insert_ignoring_duplicates(
        session, DeadlineItem, rows, ["obligation_id", "agency_code", "period_key"], ["id"]
    )
    session.info.setdefault(_MATERIALISED, set()).update(item.key for item in wanted)
    return len(inserted)


_MATERIALISED = "dunghan.materialised"


# ---------------------------------------------------------------------- succession


def transfer_successions(
    ctx: EngineContext,
    session: Session,
    today: date,
    actor: str,
    agencies: Sequence[str] | None = None,
) -> int:
    """Pass the open items of dissolved agencies, and of functions that moved, to their
    successors; returns how many items were handed over or closed.

    Each item goes where its work goes on `today`: to the holder of its function (the
    event's, else the obligation's) if that function moved, else to the agency's
    successors. To one successor the item itself moves (its first agency stays in
    `original_agency_code`); to several (a district's communes) it is closed as handed
    over and each successor gets its own copy with the same period and due date. An audit
    row records every move. A successor that already has the same occurrence keeps its
    own (never a duplicate). An agency dissolved without successor: its items are closed
    with the reason (`_close_orphaned`).
    """
    query = select(DeadlineItem.agency_code).where(DeadlineItem.status == ItemStatus.OPEN)
    if agencies is not None:
        query = query.where(DeadlineItem.agency_code.in_(list(agencies)))
    moved = 0
    for code in session.scalars(query.distinct()).all():
        agency = ctx.registry.agencies.get(code)
        if agency is None or (agency.active_from is not None and today < agency.active_from):
            continue  # not founded yet: its items wait for it
        ended = agency.active_to is not None and agency.active_to < today
        moving = {f.code for f in agency.functions if f.effective <= today}
        if not ended and not moving:
            continue
        if ended and not agency.successors and not moving:
            moved += _close_orphaned(session, code, agency, today, actor)
            continue
        moved += _hand_over(ctx, session, code, today, actor, ended)
    return moved


def _hand_over(ctx, session, code: str, today: date, actor: str, ended: bool) -> int:
    """Hand each open item of `code` to whoever answers for its work on `today`."""
    function_of = {ob.number: ob.function for ob in ctx.plan.obligations}
    number_of = {oid: number for number, oid in ctx.obligation_ids.items()}
    items = session.execute(
        select(
            DeadlineItem.id,
            DeadlineItem.obligation_id,
            DeadlineItem.period_key,
            DeadlineItem.due,
            DeadlineItem.event_id,
            DeadlineItem.original_agency_code,
            Event.function_code,
        )
        .outerjoin(Event, Event.id == DeadlineItem.event_id)
        .where(DeadlineItem.agency_code == code, DeadlineItem.status == ItemStatus.OPEN)
        .order_by(DeadlineItem.id)
    ).all()
    plans: list[tuple] = []
    for item in items:
        function = item.function_code or function_of.get(number_of.get(item.obligation_id))
        agency = ctx.registry.agencies[code]
        if not ended and agency.function(function, today) is None:
            continue  # an agency that carries on keeps the work of its other functions
        successors = [c for c in ctx.responsible([code], today, function) if c != code]
        plans.append((item, successors))
    targets = {c for _, successors in plans for c in successors}
    taken = (
        set(
            session.execute(
                select(
                    DeadlineItem.obligation_id, DeadlineItem.agency_code, DeadlineItem.period_key
                ).where(DeadlineItem.agency_code.in_(sorted(targets)))
            ).all()
        )
        if targets
        else set()
    )
    now = utcnow()
    audits, moved = [], 0
    for item, successors in plans:
        if not successors:
            agency = ctx.registry.agencies[code]
            moved += _close_orphaned(session, code, agency, today, actor, [item.id])
            continue
        original = item.original_agency_code or code
        free = [c for c in successors if (item.obligation_id, c, item.period_key) not in taken]
        detail = {"from": code, "to": successors[0] if len(successors) == 1 else successors}
        if len(successors) == 1 and free:
            values = {"agency_code": successors[0], "original_agency_code": original}
        else:
            names = ", ".join(f"{ctx.agency_name(c)} ({c})" for c in successors)
            reason = (
                f"Chuyển cho {names}: cơ quan kế thừa đã có việc này"
                if not free
                else f"Chuyển cho {len(successors)} cơ quan kế thừa: {names}"
            )
            values = {
                "status": ItemStatus.CANCELLED,
                "evidence": reason,
                "original_agency_code": original,
            }
        session.execute(
            update(DeadlineItem)
            .where(DeadlineItem.id == item.id, DeadlineItem.status == ItemStatus.OPEN)
            .values(**values, updated_at=now)
        )
        if len(successors) > 1 and free:
            copies = insert_ignoring_duplicates(
                session,
                DeadlineItem,
                [
                    {
                        "obligation_id": item.obligation_id,
                        "agency_code": successor,
                        "period_key": item.period_key,
                        "event_id": item.event_id,
                        "due": item.due,
                        "status": ItemStatus.OPEN,
                        "original_agency_code": original,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for successor in free
                ],
                ["obligation_id", "agency_code", "period_key"],
                ["id", "agency_code"],
            )
            detail["items"] = {successor: new_id for new_id, successor in copies}
            audits += [
                {
                    "actor": actor,
                    "action": "created_by_succession",
                    "entity": "deadline_item",
                    "entity_id": new_id,
                    "detail": {"from_item": item.id, "from": code, "on": today},
                }
                for new_id, _ in copies
            ]
        taken.update((item.obligation_id, c, item.period_key) for c in free)
        audits.append(
            {
                "actor": actor,
                "action": "transfer_succession",
                "entity": "deadline_item",
                "entity_id": item.id,
                "detail": detail | {"on": today},
            }
        )
        moved += 1
    audit_many(session, audits)
    return moved


def _close_orphaned(
    session: Session, code: str, agency, today: date, actor: str, ids: list[int] | None = None
) -> int:
    """Cancel the open items of an agency dissolved without successor: nobody can be
    reminded of them any more. The items and their history stay; the reason is recorded
    on each and in the audit log."""
    if ids is None:
        ids = session.scalars(
            select(DeadlineItem.id).where(
                DeadlineItem.agency_code == code, DeadlineItem.status == ItemStatus.OPEN
            )
        ).all()
    if not ids:
        return 0
    reason = (
        f"{agency.name} chấm dứt hoạt động từ {agency.active_to:%d/%m/%Y} "
        "mà không có cơ quan kế thừa"
        if agency.active_to
        else f"{agency.name}: không có cơ quan nhận việc này"
    )
    session.execute(
        update(DeadlineItem)
        .where(DeadlineItem.id.in_(ids), DeadlineItem.status == ItemStatus.OPEN)
        .values(status=ItemStatus.CANCELLED, evidence=reason, updated_at=utcnow())
    )
    audit_many(
        session,
        (
            {
                "actor": actor,
                "action": "cancel_orphaned",
                "entity": "deadline_item",
                "entity_id": item_id,
                "detail": {"agency": code, "on": today, "reason": reason},
            }
            for item_id in ids
        ),
    )
    return len(ids)


# ------------------------------------------------------------------------ evaluate


@dataclass(frozen=True)
class NewEscalation:
    item_id: int
    step: Step
    notified: bool


def _open_items_query(ctx: EngineContext, today: date, numbers=None, agencies=None):
    horizon = ctx.cal.add_working_days(today, max(0, -ctx.ladder.earliest_offset) or 0)
    query = select(DeadlineItem.id, DeadlineItem.due).where(
        DeadlineItem.status == ItemStatus.OPEN, DeadlineItem.due <= horizon
    )
    if numbers is not None:
        query = query.where(
            DeadlineItem.obligation_id.in_([ctx.obligation_ids[n] for n in numbers])
        )
    if agencies is not None:
        query = query.where(DeadlineItem.agency_code.in_(list(agencies)))
    return query


def evaluate(
    ctx: EngineContext,
    session: Session,
    today: date,
    numbers: Sequence[str] | None = None,
    agencies: Sequence[str] | None = None,
) -> list[NewEscalation]:
    """Record every ladder step reached by open items; notify only each item's highest.

    Steps are computed for all candidate items at once (vectorised), compared with the
    steps already recorded, and inserted with ON CONFLICT DO NOTHING, so two sweeps at
    once record (and notify) each step of each item exactly once.
    """
    candidates = session.execute(_open_items_query(ctx, today, numbers, agencies)).all()
    if not candidates:
        return []
    ids = np.array([c[0] for c in candidates], dtype=np.int64)
    dues = np.array([c[1] for c in candidates], dtype="datetime64[D]")
    highest = ctx.ladder.highest_reached(ctx.cal, dues, today)
    reached = highest >= 0
    ids, dues, highest = ids[reached], dues[reached], highest[reached]
    if ids.size == 0:
        return []
    recorded: dict[int, int] = defaultdict(lambda: -1)
    existing = session.execute(
        select(Escalation.item_id, func.max(Escalation.rank))
        .where(
            Escalation.item_id.in_(
                _open_items_query(ctx, today, numbers, agencies).with_only_columns(DeadlineItem.id)
            )
        )
        .group_by(Escalation.item_id)
    )
    for item_id, rank in existing:
        recorded[item_id] = rank
    rows = []
    for item_id, due, top in zip(ids.tolist(), dues.astype(object), highest.tolist(), strict=True):
        for rank in range(recorded[item_id] + 1, top + 1):
            step = ctx.ladder.steps[rank]
            rows.append(
                {
                    "item_id": item_id,
                    "step": step.code,
                    "rank": rank,
                    "step_date": ctx.ladder.step_date(ctx.cal, due, step),
                    "reached_on": today,
                    "notified": rank == top,
                }
            )
    inserted = insert_ignoring_duplicates(
        session, Escalation, rows, ["item_id", "step"], ["item_id", "step", "notified"]
    )
    return [NewEscalation(i, ctx.ladder.step(s), bool(n)) for i, s, n in inserted]


# ----------------------------------------------------------------------- notify


def item_lines(
    ctx: EngineContext, session: Session, item_ids: Iterable[int], today: date
) -> dict[int, compose.ItemLine]:
    """The items as recipients read them, with the highest step and its history."""
    ids = list(item_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(
            DeadlineItem.id,
            DeadlineItem.agency_code,
            DeadlineItem.due,
            Obligation.number,
            Obligation.title,
            Obligation.content,
        )
        .join(Obligation, Obligation.id == DeadlineItem.obligation_id)
        .where(DeadlineItem.id.in_(ids))
    ).all()
    history: dict[int, list[tuple[int, str, date]]] = defaultdict(list)
    for item_id, rank, step, reached_on in session.execute(
        select(Escalation.item_id, Escalation.rank, Escalation.step, Escalation.reached_on)
        .where(Escalation.item_id.in_(ids))
        .order_by(Escalation.rank)
    ):
        history[item_id].append((rank, step, reached_on))
    out = {}
    for item_id, agency_code, due, number, title, content in rows:
        ob = ctx.obligation(number)
        steps = history.get(item_id, [])
        out[item_id] = compose.ItemLine(
            item_id=item_id,
            agency_code=agency_code,
            number=number,
            title=title,
            content=content,
            agency=ctx.agency_name(agency_code),
            due=due,
            working_days_left=working_days_left(ctx.cal, due, today),
            lead="; ".join(ctx.agency_name(c) for c in ob.lead),
            coordinating="; ".join(ctx.agency_name(c) for c in ob.coordinating),
            step=ctx.ladder.steps[steps[-1][0]].name if steps else "",
            history=tuple(
                f"{ctx.ladder.steps[rank].name} ({compose.short_date(reached)})"
                for rank, _, reached in steps
            ),
        )
    return out


def working_days_left(cal: WorkCalendar, due: date, today: date) -> int:
    """Working days from today to the due date: > 0 left, 0 due today, < 0 overdue."""
    if due > today:
        return cal.count_working_days(today + timedelta(days=1), due)
    if due < today:
        return -cal.count_working_days(due + timedelta(days=1), today)
    return 0


def queue_notifications(
    ctx: EngineContext,
    session: Session,
    today: date,
    escalations: Sequence[NewEscalation],
    agencies: Sequence[str] | None = None,
) -> int:
    """Store today's digests and escalation letters in the outbox (once each)."""
    messages: list[compose.Message] = []
    # Daily digests: every agency with open items due soon, today or overdue.
    candidates = [
        item_id for item_id, _ in session.execute(_open_items_query(ctx, today, None, agencies))
    ]
    lines = item_lines(ctx, session, candidates, today)
    by_agency: dict[str, list[compose.ItemLine]] = defaultdict(list)
    for line in lines.values():
        by_agency[line.agency_code].append(line)
    # One digest per recipient address a day, whatever the number of agencies it serves.
    by_recipient: dict[str, tuple[str, set[str], list[compose.ItemLine]]] = {}
    for agency_code, items in sorted(by_agency.items()):
        for role in ctx.ladder.steps[0].to:
            target = role_address(ctx.ladder, ctx.registry, role, agency_code)
            if target:
                name, agencies_served, listed = by_recipient.setdefault(
                    target[0], (target[1], set(), [])
                )
                agencies_served.add(ctx.agency_name(agency_code))
                listed.extend(items)
    for address, (name, agencies_served, items) in sorted(by_recipient.items()):
        items.sort(key=lambda i: (i.due, i.number, i.agency))
        messages.append(
            compose.digest(address, name, "; ".join(sorted(agencies_served)), today, items)
        )
    # Escalation letters: the newly reached, notified overdue steps, one per recipient.
    letters: dict[tuple[str, str], list[int]] = defaultdict(list)
    letter_meta: dict[tuple[str, str], tuple[str, set[str], bool]] = {}
    notified = [e for e in escalations if e.notified and e.step.template == "escalation"]
    lines |= item_lines(ctx, session, {e.item_id for e in notified} - lines.keys(), today)
    for esc in notified:
        agency_code = lines[esc.item_id].agency_code
        for role in esc.step.to:
            target = role_address(ctx.ladder, ctx.registry, role, agency_code)
            if not target:
                continue
            key = (target[0], esc.step.code)
            letters[key].append(esc.item_id)
            name, cc, _ = letter_meta.get(key, (target[1], set(), False))
            for cc_role in esc.step.cc:
                cc_target = role_address(ctx.ladder, ctx.registry, cc_role, agency_code)
                if cc_target and cc_target[0] != target[0]:
                    cc.add(cc_target[0])
            letter_meta[key] = (name, cc, role == "head")
    for (address, step_code), ids in sorted(letters.items()):
        name, cc, heads_the_agency = letter_meta[(address, step_code)]
        step = ctx.ladder.step(step_code)
        items = sorted((lines[i] for i in ids), key=lambda i: (i.agency, i.due, i.number))
        messages.append(
            compose.escalation(
                address,
                name,
                tuple(sorted(cc)),
                step.code,
                step.name,
                today,
                items,
                responsible=heads_the_agency,
            )
        )
    return store_messages(session, messages)


# ------------------------------------------------------------------------ sweep


@dataclass
class SweepResult:
    run_date: date
    skipped_reason: str | None = None
    created: int = 0
    transferred: int = 0
    escalations: list[NewEscalation] = field(default_factory=list)
    notifications: int = 0
    due_today: int = 0
    overdue_by_step: dict[str, int] = field(default_factory=dict)
    overdue_by_agency: list[tuple[str, str, int]] = field(default_factory=list)
    dossiers: DossierAlerts | None = None

    @property
    def counts(self) -> dict:
        return {
            "created": self.created,
            "transferred": self.transferred,
            "new_escalations": len(self.escalations),
            "notified_escalations": sum(1 for e in self.escalations if e.notified),
            "notifications": self.notifications,
            "due_today": self.due_today,
            "overdue_by_step": self.overdue_by_step,
            "dossier_reminders": sum(self.dossiers.reminders.values()) if self.dossiers else 0,
            "dossiers_at_risk": sum(self.dossiers.at_risk.values()) if self.dossiers else 0,
            "dossiers_late_without_apology": (
                sum(self.dossiers.late_without_apology.values()) if self.dossiers else 0
            ),
            "dossiers_awaiting_supplement": (
                sum(self.dossiers.awaiting_supplement.values()) if self.dossiers else 0
            ),
        }


def sweep(
    ctx: EngineContext,
    today: date,
    *,
    force: bool = False,
    numbers: Sequence[str] | None = None,
    agencies: Sequence[str] | None = None,
    partition: str = "",
    actor: str = "system",
    notify: bool = True,
) -> SweepResult:
    """One evaluation for `today`, in one transaction: all of it lands, or none of it."""
    result = SweepResult(run_date=today)
    stored: set[tuple[int, str, str]] = set()
    with session_scope(ctx.db) as session:
        run = SweepRun(run_date=today, partition=partition, forced=force, started_at=utcnow())
        if not ctx.cal.is_working_day(today) and not force:
            run.skipped_reason = result.skipped_reason = ctx.cal.explain(today)
            run.finished_at = utcnow()
            session.add(run)
            return result
        result.created = materialise(ctx, session, numbers, agencies)
        if numbers is None:
            result.transferred = transfer_successions(ctx, session, today, actor, agencies)
        result.escalations = evaluate(ctx, session, today, numbers, agencies)
        if notify:
            result.notifications = queue_notifications(
                ctx, session, today, result.escalations, agencies
            )
        if numbers is None:
            result.dossiers = dossier_alerts(ctx, session, today, agencies, notify=notify)
            result.notifications += result.dossiers.notifications
        status_report(ctx, session, today, result, numbers, agencies)
        run.counts = result.counts
        run.finished_at = utcnow()
        session.add(run)
        stored = session.info.get(_MATERIALISED, set())
    ctx.materialised |= stored  # only once the transaction has committed
    return result


def status_report(ctx, session, today, result: SweepResult, numbers=None, agencies=None) -> None:
    """Fill the sweep's figures: due today, overdue by highest step, overdue per agency."""
    base = select(DeadlineItem.id).where(DeadlineItem.status == ItemStatus.OPEN)
    if numbers is not None:
        base = base.where(DeadlineItem.obligation_id.in_([ctx.obligation_ids[n] for n in numbers]))
    if agencies is not None:
        base = base.where(DeadlineItem.agency_code.in_(list(agencies)))
    result.due_today = session.scalar(
        select(func.count()).select_from(base.where(DeadlineItem.due == today).subquery())
    )
    top = (
        select(Escalation.item_id, func.max(Escalation.rank).label("rank"))
        .group_by(Escalation.item_id)
        .subquery()
    )
    overdue = base.where(DeadlineItem.due < today).subquery()
    by_step: dict[str, int] = {}
    for rank, count in session.execute(
        select(top.c.rank, func.count())
        .select_from(overdue.join(top, top.c.item_id == overdue.c.id))
        .group_by(top.c.rank)
    ):
        by_step[ctx.ladder.steps[rank].code] = count
    result.overdue_by_step = by_step
    result.overdue_by_agency = [
        (code, ctx.agency_name(code), count)
        for code, count in session.execute(
            select(DeadlineItem.agency_code, func.count())
            .where(DeadlineItem.id.in_(select(overdue.c.id)))
            .group_by(DeadlineItem.agency_code)
            .order_by(func.count().desc(), DeadlineItem.agency_code)
        )
    ]


# ------------------------------------------------------------------ admin actions


@dataclass
class EventResult:
    event_id: int
    created_items: list[int]
    obligations: list[str]
    already_recorded: bool = False


def event_types(ctx: EngineContext) -> dict[str, tuple[str, list[str]]]:
    """The events the plan waits for: code -> (description, obligation numbers)."""
    out: dict[str, tuple[str, list[str]]] = {}
    for ob in ctx.plan.obligations:
        for part in rule_parts(ob.rule):
            if part.kind == "after_event":
                desc, numbers = out.get(part.event_code, (part.event, []))
                numbers.append(ob.number)
                out[part.event_code] = (desc, numbers)
    return out


def record_event(
    ctx: EngineContext,
    event_code: str,
    agency_code: str,
    occurred_on: date,
    document: str = "",
    description: str = "",
    actor: str = "admin",
    function: str | None = None,
) -> EventResult:
    """Store an event and create the items it starts, with their working-day due dates.

    `function` (lĩnh vực) says which function of the agency the work belongs to, e.g. a
    ministry's decision on social protection procedures: the items follow that function
    to its new holder if it moves (plans/agencies.yaml, `functions`).
    """
    known = event_types(ctx)
    if event_code not in known:
        listing = "\n".join(f"  {code}: {desc}" for code, (desc, _) in sorted(known.items()))
        raise EngineError(f"Loại sự kiện không hợp lệ: '{event_code}'. Các loại hợp lệ:\n{listing}")
    agency = ctx.agency(agency_code)
    functions = ctx.registry.function_codes()
    if function is not None and function not in functions:
        listing = "\n".join(f"  {code}: {f.label}" for code, f in sorted(functions.items()))
        raise EngineError(f"Lĩnh vực không hợp lệ: '{function}'. Các lĩnh vực hợp lệ:\n{listing}")
    ctx.cal.is_working_day(occurred_on)  # refuses a date outside the calendar's range
    with session_scope(ctx.db) as session:
        inserted = insert_ignoring_duplicates(
            session,
            Event,
            [
                {
                    "event_code": event_code,
                    "agency_code": agency.code,
                    "occurred_on": occurred_on,
                    "document": document,
                    "description": description or known[event_code][0],
                    "function_code": function,
                    "recorded_at": utcnow(),
                    "recorded_by": actor,
                }
            ],
            ["event_code", "agency_code", "occurred_on", "document"],
            ["id"],
        )
        event_id = (
            inserted[0][0]
            if inserted
            else session.scalar(
                select(Event.id).where(
                    Event.event_code == event_code,
                    Event.agency_code == agency.code,
                    Event.occurred_on == occurred_on,
                    Event.document == document,
                )
            )
        )
        now = utcnow()
        rows, numbers = [], []
        for number in known[event_code][1]:
            ob = ctx.obligation(number)
            for part in rule_parts(ob.rule):
                if part.kind != "after_event" or part.event_code != event_code:
                    continue
                due = part.due_after(ctx.cal, occurred_on)
                if due is None:  # the plan sets no limit ("Sau kiểm tra"): nothing to track
                    continue
                leads = ctx.responsible(ob.lead, occurred_on)
                # The event's agency as it answers that day (a merged department's
                # successor, the new holder of the event's function).
                own = ctx.responsible([agency.code], occurred_on, function) or [agency.code]
                owners = [c for c in own if c in leads or not leads] or leads
                numbers.append(number)
                rows += [
                    {
                        "obligation_id": ctx.obligation_ids[number],
                        "agency_code": owner,
                        "period_key": f"event:{event_id}",
                        "event_id": event_id,
                        "due": due,
                        "status": ItemStatus.OPEN,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for owner in owners
                ]
        created = [
            row[0]
            for row in insert_ignoring_duplicates(
                session, DeadlineItem, rows, ["obligation_id", "agency_code", "period_key"], ["id"]
            )
        ]
        if inserted:
            audit(
                session,
                actor,
                "record_event",
                "event",
                event_id,
                event_code=event_code,
                agency=agency.code,
                occurred_on=occurred_on,
                document=document,
                function=function,
                created_items=created,
            )
        if created:
            _confirm(ctx, session, created, "created", occurred_on, f"event:{event_id}")
    return EventResult(event_id, created, sorted(set(numbers)), already_recorded=not inserted)


@dataclass
class CompletionResult:
    item_id: int
    status: str
    due: date
    completed_on: date
    changed: bool


def complete_item(
    ctx: EngineContext,
    item_id: int,
    completed_on: date,
    evidence: str,
    actor: str = "admin",
) -> CompletionResult:
    """Mark an item done on `completed_on` with its evidence; late completion stays late."""
    if not evidence or not evidence.strip():
        raise EngineError("Cần ghi bằng chứng hoàn thành (ví dụ số văn bản).")
    with session_scope(ctx.db) as session:
        item = session.get(DeadlineItem, item_id)
        if item is None:
            raise EngineError(f"Không có việc số {item_id}.")
        status = ItemStatus.DONE if completed_on <= item.due else ItemStatus.DONE_LATE
        if item.status in ItemStatus.CLOSED:
            same = item.completed_on == completed_on and item.evidence == evidence.strip()
            if same:
                return CompletionResult(item.id, item.status, item.due, completed_on, False)
            raise EngineError(
                f"Việc số {item_id} đã đóng ({item.status}, ngày {item.completed_on}); "
                "không ghi đè kết quả đã có."
            )
        item.status, item.completed_on, item.evidence = status, completed_on, evidence.strip()
        item.updated_at = utcnow()
        session.add(item)
        audit(
            session,
            actor,
            "complete_item",
            "deadline_item",
            item.id,
            status=status,
            completed_on=completed_on,
            evidence=item.evidence,
        )
        session.flush()
        _confirm(ctx, session, [item.id], "completed", completed_on, f"done:{item.id}")
        return CompletionResult(item.id, status, item.due, completed_on, True)


def _confirm(ctx, session, item_ids, what: str, day: date, key: str) -> None:
    by_agency: dict[str, list[compose.ItemLine]] = defaultdict(list)
    for line in item_lines(ctx, session, item_ids, day).values():
        by_agency[line.agency_code].append(line)
    messages = []
    for agency_code, items in by_agency.items():
        target = role_address(ctx.ladder, ctx.registry, "focal", agency_code)
        if target:
            messages.append(
                compose.confirmation(
                    target[0], target[1], ctx.agency_name(agency_code), what, day, items, key
                )
            )
    store_messages(session, messages)
