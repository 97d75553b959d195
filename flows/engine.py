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
from typing import NamedTuple

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from deadlines.agencies import Registry, load_registry
from deadlines.calendar import WorkCalendar
from deadlines.datafile import DataFileError, Problem
from deadlines.dossier import OneStopRules
from deadlines.ladder import Ladder, Step, load_ladder, role_address
from deadlines.plan import DEFAULT_PLAN_PATH, Plan, parse_plan, rule_parts
from flows import announce as announcements
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
from notifications.outbox import covered, store_messages
from plans import PLANS_DIR

PLAN_ENV, REGISTRY_ENV, LADDER_ENV = (
    "DUNGHAN_PLAN_FILE",
    "DUNGHAN_REGISTRY_FILE",
    "DUNGHAN_LADDER_FILE",
)


class EngineError(ValueError):
    """A request the engine refuses, with a message for the person who made it."""


class ObligationRef(NamedTuple):
    """An obligation as the store knows it: its plan's code and its number in the plan."""

    plan: str
    number: str

    def __str__(self) -> str:
        return f"{self.number} ({self.plan})"


# --------------------------------------------------------------------------- context


@dataclass
class EngineContext:
    """Everything a run needs: the store, the calendar, the loaded plans, the registry,
    the ladder.

    `plans` holds every plan loaded into the database (`dunghan plan load`), by code,
    oldest first; `retired` the last day in force of those retired (`dunghan plan
    retire`); `obligation_ids` the stored id of each current obligation, by (plan code,
    number): two plans may both have an "I.1".
    """

    db: Engine
    cal: WorkCalendar
    plans: dict[str, Plan]
    registry: Registry
    ladder: Ladder
    one_stop: OneStopRules = field(default_factory=OneStopRules.load)
    retired: dict[str, date] = field(default_factory=dict)
    obligation_ids: dict[ObligationRef, int] = field(default_factory=dict)
    # The items the loaded plans owe (computed once per context and set of plans) and
    # those already known to be stored, so the daily sweep does not rebuild and re-insert
    # the whole year.
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
        """Open (create or migrate) the database, sync the registry into it and read the
        loaded plans.

        A database without any plan gets the default plan: `plan_path`, else the setting
        `DUNGHAN_PLAN_FILE`, else the shipped 2025 plan of Nghệ An (so a fresh clone runs
        with no step). Other files not given fall back to `DUNGHAN_REGISTRY_FILE`,
        `DUNGHAN_LADDER_FILE` (and `DUNGHAN_CALENDAR_OVERRIDES` for the calendar), then
        to the shipped data.
        """
        db = make_engine(database_url)
        migrate(db)
        registry = load_registry(registry_path or os.environ.get(REGISTRY_ENV) or None)
        ctx = cls(
            db=db,
            cal=calendar or WorkCalendar.from_settings(),
            plans={},
            registry=registry,
            ladder=load_ladder(ladder_path or os.environ.get(LADDER_ENV) or None),
        )
        ctx.sync_reference_data(plan_path or os.environ.get(PLAN_ENV) or None)
        return ctx

    def sync_reference_data(self, default_plan: str | Path | None = None) -> None:
        """Upsert the agencies; load the default plan into a database that has none (or
        whose plan rows predate stored plan texts); read every loaded plan."""
        with session_scope(self.db) as session:
            upsert(
                session, Agency, [_agency_row(a) for a in self.registry.agencies.values()], ["code"]
            )
            stored = session.execute(select(PlanRow.code, PlanRow.document)).all()
            if not stored or any(document is None for _, document in stored):
                path = Path(default_plan) if default_plan else DEFAULT_PLAN_PATH
                text = read_plan_text(path)
                plan = parse_plan(text, str(path), self.registry)
                missing = {code for code, document in stored if document is None}
                if not stored or plan.meta.code in missing:
                    store_plan(session, plan, text, shown_path(path))
            self.read_plans(session)

    def read_plans(self, session: Session) -> None:
        """The loaded plans as the store holds them (each parsed from its stored text)."""
        plans: dict[str, Plan] = {}
        retired: dict[str, date] = {}
        for code, document, source, retired_on in session.execute(
            select(PlanRow.code, PlanRow.document, PlanRow.source_file, PlanRow.retired_on)
            .where(PlanRow.document.is_not(None))
            .order_by(PlanRow.year, PlanRow.id)
        ):
            try:  # the stored copy of that file, as it was loaded
                plans[code] = parse_plan(document, source or code, self.registry)
            except DataFileError as exc:
                raise EngineError(
                    f"Bản đã nạp của kế hoạch {code} không còn hợp lệ với danh bạ và quy tắc "
                    f"hiện hành; sửa tệp kế hoạch rồi nạp lại (`dunghan plan load TỆP`):\n{exc}"
                ) from None
            if retired_on is not None:
                retired[code] = retired_on
        self.plans, self.retired = plans, retired
        self._planned = None  # what the plans owe is computed again on demand
        self.obligation_ids = {
            ObligationRef(code, number): oid
            for code, number, oid in session.execute(
                select(PlanRow.code, Obligation.number, Obligation.id)
                .join(PlanRow, PlanRow.id == Obligation.plan_id)
                .where(Obligation.removed_at.is_(None))
            )
        }

    # ------------------------------------------------------------------ lookups

    @property
    def plan(self) -> Plan:
        """The most recent loaded plan (by year, then signing date): the one a report
        refers to when nothing says which."""
        if not self.plans:
            raise EngineError("Chưa nạp kế hoạch nào: dùng `dunghan plan load TỆP`.")
        return max(self.plans.values(), key=lambda p: (p.meta.year, p.meta.signed))

    def plan_of(self, code: str | None, *, on: date | None = None) -> Plan:
        """The plan `code`; without a code, the plan in force on `on` (or the current)."""
        if code is None or not str(code).strip():
            return self.plan_on(on) if on is not None else self.plan
        plan = self.plans.get(str(code).strip())
        if plan is None:
            known = ", ".join(self.plans) or "(chưa có)"
            raise EngineError(
                f"Không có kế hoạch mã '{code}'. Các kế hoạch đã nạp: {known} "
                "(xem `dunghan plan list`)."
            )
        return plan

    def plan_end(self, plan: Plan) -> date:
        """The last day a plan is in force: its year's end, or its retirement."""
        end = date(plan.meta.year, 12, 31)
        retired = self.retired.get(plan.meta.code)
        return min(end, retired) if retired is not None else end

    def in_force(self, plan: Plan, day: date) -> bool:
        return plan.start <= day <= self.plan_end(plan)

    def plan_on(self, day: date) -> Plan:
        """The plan in force on `day` (the latest signed if several), else the latest
        that started before it, else the current one."""
        plans = sorted(self.plans.values(), key=lambda p: (p.meta.year, p.meta.signed))
        for candidates in (
            [p for p in plans if self.in_force(p, day)],
            [p for p in plans if p.start <= day],
        ):
            if candidates:
                return candidates[-1]
        return self.plan

    def obligation(self, number: str, plan: str | None = None):
        """The obligation `number` of plan `plan` (without a plan: of the one loaded plan
        that has such a number)."""
        ref = self.ref(number, plan)
        return self.plans[ref.plan].obligation(ref.number)

    def ref(self, number: str, plan: str | None = None) -> ObligationRef:
        """Which obligation a person means by `number` (and `plan`, needed only when
        several loaded plans have that number)."""
        if plan is not None:
            found = self.plan_of(plan)
            if not _has(found, number):
                known = ", ".join(ob.number for ob in found.obligations)
                raise EngineError(
                    f"Không có nhiệm vụ số '{number}' trong kế hoạch {found.meta.code}. "
                    f"Các số hợp lệ: {known}"
                )
            return ObligationRef(found.meta.code, number)
        having = [code for code, p in self.plans.items() if _has(p, number)]
        if len(having) == 1:
            return ObligationRef(having[0], number)
        if len(having) > 1:
            raise EngineError(
                f"Nhiệm vụ số '{number}' có trong nhiều kế hoạch ({', '.join(having)}): "
                "hãy nêu mã kế hoạch."
            )
        known = ", ".join(ob.number for p in self.plans.values() for ob in p.obligations)
        raise EngineError(f"Không có nhiệm vụ số '{number}' trong kế hoạch. Các số hợp lệ: {known}")

    def scope_ids(self, plan: str | None, numbers: Sequence[str] | None) -> list[int] | None:
        """The stored ids of the obligations a request covers (None: every plan's)."""
        if plan is None and numbers is None:
            return None
        codes = [self.plan_of(plan).meta.code] if plan is not None else list(self.plans)
        return [
            oid
            for (code, number), oid in self.obligation_ids.items()
            if code in codes and (numbers is None or number in numbers)
        ]

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
        """Every item the loaded plans owe: each occurrence of each date-based obligation
        of each plan's year (a duty written twice counted once; a retired plan's, up to
        its last day), for each agency answering on its due date."""
        if self._planned is None:
            self._planned = [
                PlannedItem(
                    self.obligation_ids[ObligationRef(code, ob.number)],
                    ob.number,
                    agency,
                    key,
                    due,
                    code,
                )
                for code, plan in self.plans.items()
                for ob in plan.obligations
                if plan.owes_items(ob)
                for key, due in plan.occurrences(ob, self.cal)
                if code not in self.retired or due <= self.retired[code]
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
    plan: str

    @property
    def key(self) -> tuple[int, str, str]:
        return (self.obligation_id, self.agency_code, self.period_key)


def _has(plan: Plan, number: str) -> bool:
    return any(ob.number == number for ob in plan.obligations)


def shown_path(path: str | Path) -> str:
    """A plan file's path as recorded: relative to the project for the shipped plans."""
    try:
        return Path(path).resolve().relative_to(PLANS_DIR.parent).as_posix()
    except ValueError:
        return str(path)


def read_plan_text(path: str | Path) -> str:
    """A plan file's text; a missing or unreadable file is a `DataFileError`."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataFileError([Problem(str(path), 0, "không tìm thấy tệp")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError([Problem(str(path), 0, f"không đọc được tệp: {exc}")]) from None


def store_plan(session: Session, plan: Plan, text: str, source: str) -> int:
    """Upsert a plan, its obligations and their assignments from the file's `text`; mark
    the obligations this version dropped (their items keep them). Returns the plan's id."""
    now = utcnow()
    upsert(
        session,
        PlanRow,
        [
            {
                "code": plan.meta.code,
                "title": plan.meta.title,
                "year": plan.meta.year,
                "decision": plan.meta.decision,
                "loaded_at": now,
                "document": text,
                "digest": plan_digest(text),
                "source_file": source,
            }
        ],
        ["code"],
    )
    plan_id = session.scalar(select(PlanRow.id).where(PlanRow.code == plan.meta.code))
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
                "removed_at": None,
            }
            for ob in plan.obligations
        ],
        ["plan_id", "number"],
    )
    numbers = [ob.number for ob in plan.obligations]
    session.execute(
        update(Obligation)
        .where(
            Obligation.plan_id == plan_id,
            Obligation.number.not_in(numbers),
            Obligation.removed_at.is_(None),
        )
        .values(removed_at=now)
    )
    ids = dict(
        session.execute(
            select(Obligation.number, Obligation.id).where(Obligation.plan_id == plan_id)
        ).all()
    )
    wanted = [
        {"obligation_id": ids[ob.number], "target": code, "role": role}
        for ob in plan.obligations
        for role, codes in (("lead", ob.lead), ("coordinating", ob.coordinating))
        for code in codes
    ]
    keep = {(row["obligation_id"], row["target"], row["role"]) for row in wanted}
    stale = [
        assignment_id
        for assignment_id, *key in session.execute(
            select(
                Assignment.id, Assignment.obligation_id, Assignment.target, Assignment.role
            ).where(Assignment.obligation_id.in_(list(ids.values())))
        )
        if tuple(key) not in keep
    ]
    if stale:
        session.execute(delete(Assignment).where(Assignment.id.in_(stale)))
    insert_ignoring_duplicates(session, Assignment, wanted, ["obligation_id", "target", "role"])
    return plan_id


def plan_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    *,
    plan: str | None = None,
) -> int:
    """Create the items of date-based obligations for each loaded plan's year (or only
    `plan`'s, and of it only `numbers`); returns how many were new. Agencies are resolved
    on each due date, so a merged department's later items go straight to its successor
    and, from 1/7/2025, the district level's to the communes. A retired plan owes nothing
    due after its last day.

    Items already known to be stored (by this context, after a committed sweep) are not
    sent again; the unique key makes any other repeat a no-op.
    """
    now = utcnow()
    wanted = [
        item
        for item in ctx.planned_items()
        if (plan is None or item.plan == plan)
        and (numbers is None or item.number in numbers)
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
    function_of = {
        oid: ctx.plans[ref.plan].obligation(ref.number).function
        for ref, oid in ctx.obligation_ids.items()
    }
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
        function = item.function_code or function_of.get(item.obligation_id)
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
    ids = session.scalars(
        update(DeadlineItem)
        .where(DeadlineItem.id.in_(ids), DeadlineItem.status == ItemStatus.OPEN)
        .values(status=ItemStatus.CANCELLED, evidence=reason, updated_at=utcnow())
        .returning(DeadlineItem.id)
    ).all()
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


def _open_items_query(ctx: EngineContext, today: date, scope=None, agencies=None):
    """Open items in the ladder's reach today; `scope`: only these obligation ids."""
    horizon = ctx.cal.add_working_days(today, max(0, -ctx.ladder.earliest_offset) or 0)
    query = select(DeadlineItem.id, DeadlineItem.due).where(
        DeadlineItem.status == ItemStatus.OPEN, DeadlineItem.due <= horizon
    )
    if scope is not None:
        query = query.where(DeadlineItem.obligation_id.in_(list(scope)))
    if agencies is not None:
        query = query.where(DeadlineItem.agency_code.in_(list(agencies)))
    return query


def evaluate(
    ctx: EngineContext,
    session: Session,
    today: date,
    scope: Sequence[int] | None = None,
    agencies: Sequence[str] | None = None,
) -> list[NewEscalation]:
    """Record every ladder step reached by open items (of the obligation ids `scope`, or
    all); notify only each item's highest.

    Steps are computed for all candidate items at once (vectorised), compared with the
    steps already recorded, and inserted with ON CONFLICT DO NOTHING, so two sweeps at
    once record (and notify) each step of each item exactly once.
    """
    candidates = session.execute(_open_items_query(ctx, today, scope, agencies)).all()
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
                _open_items_query(ctx, today, scope, agencies).with_only_columns(DeadlineItem.id)
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
            PlanRow.code,
        )
        .join(Obligation, Obligation.id == DeadlineItem.obligation_id)
        .join(PlanRow, PlanRow.id == Obligation.plan_id)
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
    for item_id, agency_code, due, number, title, content, plan_code in rows:
        plan = ctx.plans.get(plan_code)
        ob = _obligation_or_none(plan, number)
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
            lead="; ".join(ctx.agency_name(c) for c in ob.lead) if ob else "",
            coordinating="; ".join(ctx.agency_name(c) for c in ob.coordinating) if ob else "",
            step=ctx.ladder.steps[steps[-1][0]].name if steps else "",
            history=tuple(
                f"{ctx.ladder.steps[rank].name} ({compose.short_date(reached)})"
                for rank, _, reached in steps
            ),
            plan=plan.meta.label if plan else plan_code,
        )
    return out


def _obligation_or_none(plan: Plan | None, number: str):
    """The plan's obligation, or None for one a later version of the plan dropped."""
    if plan is None:
        return None
    try:
        return plan.obligation(number)
    except KeyError:
        return None


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
    # A later sweep the same day (new items, another partition's agencies at a shared
    # address) sends a supplement with what the day's earlier digests did not say.
    said = covered(session, "digest", today)
    for address, (name, agencies_served, items) in sorted(by_recipient.items()):
        earlier = said.get(address.lower(), set())
        items = [i for i in items if compose.line_key(i) not in earlier]
        if not items:
            continue
        # A department's items of every plan in one digest, grouped by plan (the oldest
        # plan's first: what is still open of last year's plan is the most overdue).
        items.sort(key=lambda i: (i.plan, i.due, i.number, i.agency))
        messages.append(
            compose.digest(
                address,
                name,
                "; ".join(sorted(agencies_served)),
                today,
                items,
                supplement=bool(earlier),
            )
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
    plan: str | None = None,
    announce: bool = False,
) -> SweepResult:
    """One evaluation for `today`, in one transaction: all of it lands, or none of it.

    Every loaded plan, or only `plan` (and of it only the obligations `numbers`). With
    `announce` (the Prefect flows), each new escalation's Prefect event is stored in the
    same transaction, for `flows.announce.announce_pending` to emit."""
    result = SweepResult(run_date=today)
    scope = ctx.scope_ids(plan, numbers)
    whole = scope is None
    stored: set[tuple[int, str, str]] = set()
    with session_scope(ctx.db) as session:
        run = SweepRun(run_date=today, partition=partition, forced=force, started_at=utcnow())
        if not ctx.cal.is_working_day(today) and not force:
            run.skipped_reason = result.skipped_reason = ctx.cal.explain(today)
            run.finished_at = utcnow()
            session.add(run)
            return result
        result.created = materialise(ctx, session, numbers, agencies, plan=plan)
        if whole:
            result.transferred = transfer_successions(ctx, session, today, actor, agencies)
        result.escalations = evaluate(ctx, session, today, scope, agencies)
        if announce:
            announcements.record_escalations(ctx, session, today, result.escalations)
        if notify:
            result.notifications = queue_notifications(
                ctx, session, today, result.escalations, agencies
            )
        if whole:
            result.dossiers = dossier_alerts(ctx, session, today, agencies, notify=notify)
            result.notifications += result.dossiers.notifications
        status_report(ctx, session, today, result, scope, agencies)
        run.counts = result.counts
        run.finished_at = utcnow()
        session.add(run)
        stored = session.info.get(_MATERIALISED, set())
    ctx.materialised |= stored  # only once the transaction has committed
    return result


def status_report(ctx, session, today, result: SweepResult, scope=None, agencies=None) -> None:
    """Fill the sweep's figures: due today, overdue by highest step, overdue per agency
    (of the obligation ids `scope`, or all)."""
    base = select(DeadlineItem.id).where(DeadlineItem.status == ItemStatus.OPEN)
    if scope is not None:
        base = base.where(DeadlineItem.obligation_id.in_(list(scope)))
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
    obligations: list[ObligationRef]
    already_recorded: bool = False


def event_types(ctx: EngineContext) -> dict[str, tuple[str, list[ObligationRef]]]:
    """The events the loaded plans wait for: code -> (description, obligations)."""
    out: dict[str, tuple[str, list[ObligationRef]]] = {}
    for code, plan in ctx.plans.items():
        for event_code, (desc, numbers) in plan_event_types(plan).items():
            _, refs = out.setdefault(event_code, (desc, []))
            refs += [ObligationRef(code, number) for number in numbers]
    return out


def plan_event_types(plan: Plan) -> dict[str, tuple[str, list[str]]]:
    """The events one plan waits for: code -> (description, obligation numbers)."""
    out: dict[str, tuple[str, list[str]]] = {}
    for ob in plan.obligations:
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
    announce: bool = False,
) -> EventResult:
    """Store an event and create the items it starts, with their working-day due dates.

    `function` (lĩnh vực) says which function of the agency the work belongs to, e.g. a
    ministry's decision on social protection procedures: the items follow that function
    to its new holder if it moves (plans/agencies.yaml, `functions`). With `announce`
    (the Prefect flow), a new event's Prefect event is stored in the same transaction,
    for `flows.announce.announce_pending` to emit.
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
    waiting = [r for r in known[event_code][1] if ctx.in_force(ctx.plans[r.plan], occurred_on)]
    if not waiting:
        spans = "; ".join(
            f"{code}: từ {ctx.plans[code].start:%d/%m/%Y} đến "
            f"{ctx.plan_end(ctx.plans[code]):%d/%m/%Y}"
            for code in dict.fromkeys(r.plan for r in known[event_code][1])
        )
        raise EngineError(
            f"Ngày {occurred_on:%d/%m/%Y} không có kế hoạch nào đang thực hiện chờ sự kiện "
            f"'{event_code}' ({spans})."
        )
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
        rows, started = [], []
        for ref in waiting:
            ob = ctx.obligation(ref.number, ref.plan)
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
                started.append(ref)
                rows += [
                    {
                        "obligation_id": ctx.obligation_ids[ref],
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
        new_items = insert_ignoring_duplicates(
            session,
            DeadlineItem,
            rows,
            ["obligation_id", "agency_code", "period_key"],
            ["id", "agency_code", "due"],
        )
        created = [item_id for item_id, _, _ in new_items]
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
            if announce:
                announcements.record_event(
                    ctx,
                    session,
                    event_id,
                    event_code,
                    known[event_code][0],
                    agency.code,
                    occurred_on,
                    document,
                    sorted(set(started)),
                    new_items,
                )
        if created:
            _confirm(ctx, session, created, "created", occurred_on, f"event:{event_id}")
    return EventResult(event_id, created, sorted(set(started)), already_recorded=not inserted)


@dataclass
class CompletionResult:
    item_id: int
    status: str
    due: date
    completed_on: date
    changed: bool


STATUS_NAMES = {
    ItemStatus.OPEN: "đang mở",
    ItemStatus.DONE: "hoàn thành đúng hạn",
    ItemStatus.DONE_LATE: "hoàn thành trễ hạn",
    ItemStatus.WAIVED: "được miễn",
    ItemStatus.CANCELLED: "đã hủy",
}


def _item_state(session: Session, item_id: int):
    row = session.execute(
        select(
            DeadlineItem.id,
            DeadlineItem.due,
            DeadlineItem.status,
            DeadlineItem.completed_on,
            DeadlineItem.evidence,
        ).where(DeadlineItem.id == item_id)
    ).first()
    if row is None:
        raise EngineError(f"Không có việc số {item_id}.")
    return row


def _close_open_item(session: Session, item_id: int, **values) -> bool:
    """Close an item only if it is still open: one conditional UPDATE, so of two admins
    closing it at once exactly one does (the other's UPDATE finds it closed)."""
    return (
        session.execute(
            update(DeadlineItem)
            .where(DeadlineItem.id == item_id, DeadlineItem.status == ItemStatus.OPEN)
            .values(**values, updated_at=utcnow())
        ).rowcount
        == 1
    )


def _refuse_closed(item) -> EngineError:
    on = f", ngày {item.completed_on:%d/%m/%Y}" if item.completed_on else ""
    evidence = f", bằng chứng: {item.evidence}" if item.evidence else ""
    return EngineError(
        f"Việc số {item.id} đã đóng ({STATUS_NAMES.get(item.status, item.status)}{on}"
        f"{evidence}); không ghi đè kết quả đã có."
    )


def complete_item(
    ctx: EngineContext,
    item_id: int,
    completed_on: date,
    evidence: str,
    actor: str = "admin",
) -> CompletionResult:
    """Mark an item done on `completed_on` with its evidence; late completion stays late.

    Recording the same completion again changes nothing; a different one for an item
    already closed (by another admin a moment earlier, too) is refused."""
    if not evidence or not evidence.strip():
        raise EngineError("Cần ghi bằng chứng hoàn thành (ví dụ số văn bản).")
    evidence = evidence.strip()
    with session_scope(ctx.db) as session:
        item = _item_state(session, item_id)
        status = ItemStatus.DONE if completed_on <= item.due else ItemStatus.DONE_LATE
        done = _close_open_item(
            session, item_id, status=status, completed_on=completed_on, evidence=evidence
        )
        if not done:
            item = _item_state(session, item_id)  # as the admin who closed it left it
            if item.completed_on == completed_on and item.evidence == evidence:
                return CompletionResult(item.id, item.status, item.due, completed_on, False)
            raise _refuse_closed(item)
        audit(
            session,
            actor,
            "complete_item",
            "deadline_item",
            item_id,
            status=status,
            completed_on=completed_on,
            evidence=evidence,
        )
        _confirm(ctx, session, [item_id], "completed", completed_on, f"done:{item_id}")
        return CompletionResult(item_id, status, item.due, completed_on, True)


def waive_item(
    ctx: EngineContext, item_id: int, on: date, reason: str, actor: str = "admin"
) -> CompletionResult:
    """Release an agency from an open item (miễn thực hiện) on `on`, citing what decided
    it (e.g. the provincial office's letter): the item closes as waived, leaves the
    digests and the ladder, and keeps its history. Waiving it again the same way changes
    nothing; an item closed otherwise (by another admin a moment earlier, too) is not
    overwritten."""
    if not reason or not reason.strip():
        raise EngineError("Cần ghi căn cứ miễn thực hiện (ví dụ số văn bản cho phép miễn).")
    reason = reason.strip()
    with session_scope(ctx.db) as session:
        item = _item_state(session, item_id)
        if not _close_open_item(
            session, item_id, status=ItemStatus.WAIVED, completed_on=on, evidence=reason
        ):
            item = _item_state(session, item_id)
            if item.status == ItemStatus.WAIVED and item.evidence == reason:
                return CompletionResult(item.id, item.status, item.due, on, False)
            raise _refuse_closed(item)
        audit(session, actor, "waive_item", "deadline_item", item_id, on=on, reason=reason)
        return CompletionResult(item_id, ItemStatus.WAIVED, item.due, on, True)


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
