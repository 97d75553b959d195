"""Announcing to Prefect: the events operators' automations and deployment triggers wait
for (`dunghan.escalation.reached`, `dunghan.event.recorded`), exactly once in effect.

An announcement is stored in the transaction that records what it announces (the sweep
that reached the step, the recording of the event), with a Prefect event id drawn once.
A flow run then announces whatever is stored and not yet announced:

    pending ──claim──▶ attempted ──the server has it──▶ announced
                          │
                          └── the run died, or the server had not stored it in time:
                              after the claim's lease, the next run asks the server
                              first and emits again only what it does not have

Every emission of an announcement carries the same event id, and Prefect's server keeps
one event per id (its store, its automations), so a crash anywhere — after the commit,
mid-emission, before the events worker sent anything — leads to one event, announced by
the next run. Measured in bench/events.py: events emitted by a process that dies before
Prefect's events worker drained are lost (about half of them), hence the flush and the
confirmation below.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.store import insert_ignoring_duplicates, utcnow
from models.tables import Announcement, DeadlineItem, Escalation, Obligation
from models.tables import Plan as PlanRow

# The Prefect events dunghan emits; deployment triggers and automations match on them.
EVENT_RECORDED = "dunghan.event.recorded"
ESCALATION_REACHED = "dunghan.escalation.reached"
# Steps reached while no Prefect flow was announcing (the simulated year, command-line
# sweeps), published when the plan's status is: seen in the Event Feed, not acted upon.
ESCALATION_HISTORY = "dunghan.escalation.history"
HISTORY_PREFIX = "history:"

# How long a run waits for the server to store what it emitted before leaving the rest
# to the next run (Prefect's event persister writes every 5 s by default).
CONFIRM_ENV = "DUNGHAN_ANNOUNCE_CONFIRM_SECONDS"
DEFAULT_CONFIRM_SECONDS = 30.0
# An attempted announcement belongs to its run this long; then another run may check
# the server for it and emit it again.
LEASE = timedelta(minutes=2)
PAGE = 50  # the most events Prefect's API returns per page
POLL_SECONDS = 0.25


# ----------------------------------------------------------------------- record


def _row(key: str, name: str, resource: dict, related: list, payload: dict, now) -> dict:
    return {
        "key": key,
        "event_id": str(uuid.uuid4()),
        "name": name,
        "resource": resource,
        "related": related,
        "payload": payload,
        "occurred": now,
    }


def escalation_key(item_id: int, step: str) -> str:
    return f"escalation:{item_id}:{step}"


def record_escalations(ctx, session: Session, today: date, escalations: Sequence) -> int:
    """Store one announcement per newly reached ladder step (`NewEscalation`s), in the
    sweep's transaction; returns how many were new."""
    return _record_steps(
        ctx,
        session,
        [(e.item_id, e.step.code, e.step.name, e.notified, today) for e in escalations],
        name=ESCALATION_REACHED,
        key_prefix="",
    )


def record_past_escalations(ctx, session: Session) -> int:
    """Store a `dunghan.escalation.history` announcement for every ladder step reached
    that was never announced (the simulated year of `make run`, sweeps run from the
    command line): the Event Feed then shows the plan's escalations too. A distinct
    event name, so automations made for `dunghan.escalation.reached` (an inspection at
    overdue_10) do not act again on what happened long ago; the payload's `reached_on`
    says when it happened. Returns how many were new."""
    announced = set(
        session.execute(
            select(Announcement.key).where(
                or_(
                    Announcement.key.startswith("escalation:"),
                    Announcement.key.startswith(HISTORY_PREFIX + "escalation:"),
                )
            )
        ).scalars()
    )
    names = {s.code: s.name for s in ctx.ladder.steps}  # (a step since removed: its code)
    steps = []
    for item_id, step, notified, reached_on in session.execute(
        select(
            Escalation.item_id, Escalation.step, Escalation.notified, Escalation.reached_on
        ).order_by(Escalation.reached_on, Escalation.id)
    ):
        key = escalation_key(item_id, step)
        if key not in announced and HISTORY_PREFIX + key not in announced:
            steps.append((item_id, step, names.get(step, step), notified, reached_on))
    return _record_steps(ctx, session, steps, name=ESCALATION_HISTORY, key_prefix=HISTORY_PREFIX)


def _record_steps(
    ctx,
    session: Session,
    steps: Sequence[tuple[int, str, str, bool, date]],
    *,
    name: str,
    key_prefix: str,
) -> int:
    """Store the announcements of ladder steps reached: (item id, step code, step name,
    notified, reached on)."""
    if not steps:
        return 0
    ids = sorted({item_id for item_id, *_ in steps})
    facts: dict[int, tuple[str, date, str, str, str]] = {}
    for start in range(0, len(ids), 500):
        for item_id, code, due, number, title, plan in session.execute(
            select(
                DeadlineItem.id,
                DeadlineItem.agency_code,
                DeadlineItem.due,
                Obligation.number,
                Obligation.title,
                PlanRow.code,
            )
            .join(Obligation, Obligation.id == DeadlineItem.obligation_id)
            .join(PlanRow, PlanRow.id == Obligation.plan_id)
            .where(DeadlineItem.id.in_(ids[start : start + 500]))
        ):
            facts[item_id] = (code, due, number, title, plan)
    now = utcnow()
    rows = []
    for item_id, step_code, step_name, notified, reached_on in steps:
        code, due, number, title, plan = facts[item_id]
        agency_name = ctx.agency_name(code)
        rows.append(
            _row(
                key_prefix + escalation_key(item_id, step_code),
                name,
                {
                    "prefect.resource.id": f"dunghan.item.{item_id}",
                    "prefect.resource.name": f"{number} — {agency_name}",
                    "dunghan.agency": code,
                    "dunghan.step": step_code,
                },
                [
                    {
                        "prefect.resource.id": f"dunghan.agency.{code}",
                        "prefect.resource.role": "agency",
                        "prefect.resource.name": agency_name,
                    },
                    {
                        "prefect.resource.id": f"dunghan.obligation.{plan}.{number}",
                        "prefect.resource.role": "obligation",
                        "prefect.resource.name": f"{number} {title}",
                    },
                    {
                        "prefect.resource.id": f"dunghan.plan.{plan}",
                        "prefect.resource.role": "plan",
                        "prefect.resource.name": plan,
                    },
                ],
                {
                    "step": step_code,
                    "step_name": step_name,
                    "due": due.isoformat(),
                    "reached_on": reached_on.isoformat(),
                    "notified": notified,
                },
                now,
            )
        )
    return len(insert_ignoring_duplicates(session, Announcement, rows, ["key"], ["id"]))


def record_event(
    ctx,
    session: Session,
    event_id: int,
    event_code: str,
    description: str,
    agency: str,
    occurred_on: date,
    document: str,
    obligations: Sequence,  # ObligationRef: (plan, number)
    items: Iterable[tuple[int, str, date]],
) -> None:
    """Store the announcement of a newly recorded event (which starts the deployments of
    the obligations waiting for it), in the transaction that records it."""
    row = _row(
        f"event:{event_id}",
        EVENT_RECORDED,
        {
            "prefect.resource.id": f"dunghan.event.{event_id}",
            "prefect.resource.name": description,
            "dunghan.event-code": event_code,
            "dunghan.agency": agency,
        },
        [
            {
                "prefect.resource.id": f"dunghan.agency.{agency}",
                "prefect.resource.role": "agency",
                "prefect.resource.name": ctx.agency_name(agency),
            }
        ]
        + [
            {
                "prefect.resource.id": f"dunghan.obligation.{ref.plan}.{ref.number}",
                "prefect.resource.role": "obligation",
                "prefect.resource.name": (
                    f"{ref.number} {ctx.obligation(ref.number, ref.plan).title}"
                ),
            }
            for ref in obligations
        ],
        {
            "occurred_on": occurred_on.isoformat(),
            "document": document,
            "obligations": [list(ref) for ref in obligations],
            "items": [
                {"id": item_id, "agency": code, "due": due.isoformat()}
                for item_id, code, due in sorted(items, key=lambda i: (i[2], i[0]))
            ],
        },
        utcnow(),
    )
    insert_ignoring_duplicates(session, Announcement, [row], ["key"])


# ----------------------------------------------------------------------- announce


@dataclass
class AnnounceReport:
    announced: int = 0  # emitted by this run and stored by the server
    found: int = 0  # emitted by an earlier run that died: the server had them already
    unconfirmed: int = 0  # emitted, not yet stored in time: the next run checks them

    def summary(self) -> str:
        text = f"Đã thông báo {self.announced + self.found} sự kiện Prefect"
        if self.found:
            text += f" ({self.found} đã được một lần chạy trước gửi tới máy chủ)"
        if self.unconfirmed:
            text += (
                f"; {self.unconfirmed} sự kiện chưa thấy trên máy chủ Prefect, "
                "lần chạy sau sẽ kiểm tra và gửi lại nếu cần"
            )
        return text + "."


@dataclass(frozen=True)
class _Claimed:
    id: int
    event_id: str
    name: str
    resource: dict[str, Any]
    related: list[dict[str, Any]]
    payload: dict[str, Any]
    occurred: datetime
    tried_before: bool


def confirm_seconds() -> float:
    raw = os.environ.get(CONFIRM_ENV, "").strip()
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_CONFIRM_SECONDS
    except ValueError:
        return DEFAULT_CONFIRM_SECONDS


def announce_pending(engine: Engine, *, wait_seconds: float | None = None) -> AnnounceReport:
    """Announce every stored announcement not yet announced (whichever run recorded it),
    and wait up to `wait_seconds` (default `DUNGHAN_ANNOUNCE_CONFIRM_SECONDS`, 30) for
    the server to store them. Safe to run in several processes at once."""
    wait_seconds = confirm_seconds() if wait_seconds is None else wait_seconds
    report = AnnounceReport()
    claimed = _claim(engine, utcnow())
    if not claimed:
        return report
    since = min(c.occurred for c in claimed) - timedelta(minutes=5)
    retried = [c for c in claimed if c.tried_before]
    on_server = stored_ids([c.event_id for c in retried], since) if retried else set()
    _mark_announced(engine, [c.id for c in retried if c.event_id in on_server])
    report.found = sum(1 for c in retried if c.event_id in on_server)
    to_emit = [c for c in claimed if c.event_id not in on_server]
    if not to_emit:
        return report
    emit_stored(to_emit)
    deadline = time.monotonic() + wait_seconds
    flush_events(wait_seconds)
    waiting = {c.event_id: c.id for c in to_emit}
    while waiting:
        found = stored_ids(list(waiting), since)
        _mark_announced(engine, [waiting.pop(event_id) for event_id in found])
        report.announced += len(found)
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)
    report.unconfirmed = len(waiting)
    return report


def emit_stored(announcements: Iterable) -> None:
    """Hand stored announcements (rows with name, resource, related, payload, occurred and
    event_id) to Prefect's events client, each with its own event id."""
    from prefect.events import emit_event

    for a in announcements:
        emit_event(
            a.name,
            resource=a.resource,
            occurred=a.occurred,
            related=a.related,
            payload=a.payload,
            id=uuid.UUID(a.event_id),
        )


def _claim(engine: Engine, now: datetime) -> list[_Claimed]:
    """Take the pending announcements no other run holds: never tried, or tried by a run
    whose lease ran out. A conditional UPDATE, so two runs never take the same one."""
    free = and_(
        Announcement.announced_at.is_(None),
        or_(Announcement.attempted_at.is_(None), Announcement.attempted_at < now - LEASE),
    )
    with engine.begin() as connection:
        candidates = dict(
            connection.execute(
                select(Announcement.id, Announcement.attempted_at)
                .where(free)
                .order_by(Announcement.id)
            ).all()
        )
        taken: list[_Claimed] = []
        ids = list(candidates)
        for start in range(0, len(ids), 500):
            rows = connection.execute(
                update(Announcement)
                .where(Announcement.id.in_(ids[start : start + 500]), free)
                .values(attempted_at=now)
                .returning(
                    Announcement.id,
                    Announcement.event_id,
                    Announcement.name,
                    Announcement.resource,
                    Announcement.related,
                    Announcement.payload,
                    Announcement.occurred,
                )
            ).all()
            taken += [_Claimed(*row, tried_before=candidates[row[0]] is not None) for row in rows]
    return sorted(taken, key=lambda c: c.id)


def _mark_announced(engine: Engine, ids: Sequence[int]) -> None:
    if not ids:
        return
    with engine.begin() as connection:
        for start in range(0, len(ids), 500):
            connection.execute(
                update(Announcement)
                .where(Announcement.id.in_(list(ids[start : start + 500])))
                .values(announced_at=utcnow())
            )


def stored_ids(event_ids: Sequence[str], since: datetime) -> set[str]:
    """Which of these Prefect event ids the server has stored."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventIDFilter, EventOccurredFilter

    found: set[str] = set()
    until = utcnow() + timedelta(days=1)
    with get_client(sync_client=True) as client:
        for start in range(0, len(event_ids), PAGE):
            chunk = [uuid.UUID(i) for i in event_ids[start : start + PAGE]]
            page = client.read_events(
                filter=EventFilter(
                    id=EventIDFilter(id=chunk),
                    occurred=EventOccurredFilter(since=since, until=until),
                ),
                limit=PAGE,
            )
            while True:
                found |= {str(event.id) for event in page.events}
                if not page.next_page:
                    break
                page = client.read_events_page(page.next_page)
    return found


def flush_events(timeout: float) -> bool:
    """Wait until Prefect's events worker has handed every event emitted so far to the
    server's connection; False if it has not within `timeout` seconds.

    `emit_event` only queues an event for a background worker: a process that ends (or
    is killed) before the worker sent it loses it.
    """
    from prefect.events.worker import EventsWorker

    worker = EventsWorker.instance()
    drained = threading.Event()

    def wait() -> None:
        worker.wait_until_empty()
        drained.set()

    threading.Thread(target=wait, name="dunghan-events-flush", daemon=True).start()
    return drained.wait(timeout)
