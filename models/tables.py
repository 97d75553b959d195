"""The tables: one small typed class each, constraints in the model.

Glossary (docs/glossary.md): an *obligation* (nhiệm vụ) is a plan row; an *item*
(việc / lần thực hiện) is one occurrence of it for one agency with one due date (hạn);
a *step* (bậc) is a rung of the escalation ladder (nhắc hạn, đôn đốc, báo cáo).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import AutoString, Field, SQLModel


def _code(length: int = 64):
    """A code column: on PostgreSQL with the "C" collation."""
    return AutoString(length).with_variant(String(length, collation="C"), "postgresql")


class ItemStatus:
    """The statuses of a deadline item."""

    OPEN = "open"
    DONE = "done"
    DONE_LATE = "done_late"
    WAIVED = "waived"
    CANCELLED = "cancelled"
    CLOSED = (DONE, DONE_LATE, WAIVED, CANCELLED)
    ALL = (OPEN, DONE, DONE_LATE, WAIVED, CANCELLED)


class Agency(SQLModel, table=True):
    """An agency of the registry (cơ quan), synced from plans/agencies.yaml."""

    code: str = Field(primary_key=True, max_length=64)
    name: str
    kind: str = Field(max_length=32)
    email: str | None = None
    focal_email: str | None = None
    head_email: str | None = None
    active_from: date | None = None
    active_to: date | None = None
    successor_code: str | None = Field(default=None, max_length=64)
    successor_from: date | None = None


class Plan(SQLModel, table=True):
    """A loaded plan (kế hoạch), e.g. Decision 384/QĐ-UBND for 2025.

    The plan file's text is kept (`document`), so every process runs the version an
    admin loaded (`dunghan plan load`) until the next load; `retired_on` is the last day
    a retired plan was in force (`dunghan plan retire`).
    """

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=128, unique=True)
    title: str
    year: int
    decision: str | None = None
    loaded_at: datetime
    document: str | None = Field(default=None, sa_column=Column(Text))
    digest: str | None = Field(default=None, max_length=64)  # sha256 of `document`
    source_file: str | None = None  # the file it was last loaded from
    retired_on: date | None = None


class Obligation(SQLModel, table=True):
    """One obligation (nhiệm vụ) of a plan, with its parsed timing rule."""

    __table_args__ = (UniqueConstraint("plan_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id", index=True)
    number: str = Field(max_length=32)
    section: str = Field(max_length=16)
    title: str
    content: str
    timing: str
    rule: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # When a later version of the plan dropped it; its items and their history stay.
    removed_at: datetime | None = None


class Assignment(SQLModel, table=True):
    """Who answers for an obligation: an agency or a group code, as lead or coordinator."""

    __table_args__ = (UniqueConstraint("obligation_id", "target", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    obligation_id: int = Field(foreign_key="obligation.id", index=True)
    target: str = Field(max_length=64)
    role: str = Field(max_length=16)  # lead | coordinating


class Event(SQLModel, table=True):
    """Something that happened and starts a deadline (sự kiện), e.g. a decision received."""

    __table_args__ = (UniqueConstraint("event_code", "agency_code", "occurred_on", "document"),)

    id: int | None = Field(default=None, primary_key=True)
    event_code: str = Field(max_length=200, index=True)
    agency_code: str = Field(foreign_key="agency.code", max_length=64)
    occurred_on: date
    document: str = Field(default="", max_length=200)
    description: str = ""
    # The function (lĩnh vực) the event's work belongs to, e.g. "bao-tro-xa-hoi": its
    # items follow that function if it moves to another agency (plans/agencies.yaml).
    function_code: str | None = Field(default=None, max_length=64)
    recorded_at: datetime
    recorded_by: str = Field(default="system", max_length=64)


class DeadlineItem(SQLModel, table=True):
    """One occurrence of an obligation for one agency: its due date and its status."""

    __tablename__ = "deadline_item"
    __table_args__ = (
        UniqueConstraint("obligation_id", "agency_code", "period_key"),
        Index("ix_deadline_item_status_due", "status", "due"),
    )

    id: int | None = Field(default=None, primary_key=True)
    obligation_id: int = Field(foreign_key="obligation.id", index=True)
    agency_code: str = Field(foreign_key="agency.code", max_length=64, index=True)
    period_key: str = Field(max_length=64)  # "2025-03", "2025-Q3", "event:17", …
    event_id: int | None = Field(default=None, foreign_key="event.id")
    due: date
    status: str = Field(default=ItemStatus.OPEN, max_length=16)
    completed_on: date | None = None
    evidence: str | None = None
    original_agency_code: str | None = Field(default=None, max_length=64)
    created_at: datetime
    updated_at: datetime


class Escalation(SQLModel, table=True):
    """A ladder step reached by an item (once per item and step, whatever the runs)."""

    __table_args__ = (UniqueConstraint("item_id", "step"),)

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="deadline_item.id", index=True)
    step: str = Field(max_length=32)
    rank: int
    step_date: date  # the working day the step fell on
    reached_on: date  # the sweep date that recorded it
    notified: bool  # False when a later step reached at the same sweep superseded it


class Announcement(SQLModel, table=True):
    """A Prefect event to announce (an escalation reached, an event recorded), stored in
    the transaction that records what it announces, announced by the next flow run.

    `event_id` is the Prefect event's id, drawn once: every emission of the row carries
    it, so the server stores (and its automations act on) the event once however many
    times a crash makes us emit it. `attempted_at` is set before an emission,
    `announced_at` once the server has the event."""

    __table_args__ = (Index("ix_announcement_pending", "announced_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=128, unique=True)  # "escalation:<item>:<step>", "event:<id>"
    event_id: str = Field(max_length=36, unique=True)
    name: str = Field(max_length=128)  # the Prefect event's name
    resource: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    related: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    occurred: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    attempted_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    announced_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class Notification(SQLModel, table=True):
    """The outbox: a message is stored before any attempt to send it."""

    __table_args__ = (Index("ix_notification_status_next", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=128, unique=True)
    kind: str = Field(max_length=32)  # digest | escalation | confirmation
    recipient: str = Field(max_length=320)
    recipient_name: str = ""
    cc: str = ""
    subject: str
    body_text: str
    body_html: str
    ics: str = ""
    # A digest's lines (item@steps reached): the day's later digests leave them out.
    covers: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    status: str = Field(default="pending", max_length=16)  # pending | sending | sent | failed
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None = None


class AuditLog(SQLModel, table=True):
    """Who changed what, when (nhật ký thay đổi)."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64)
    entity: str = Field(max_length=32)
    entity_id: str = Field(max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class SweepRun(SQLModel, table=True):
    """One daily sweep: what it did, or why it did nothing (a day off)."""

    __tablename__ = "sweep_run"

    id: int | None = Field(default=None, primary_key=True)
    run_date: date = Field(index=True)
    partition: str = Field(default="", max_length=64)
    forced: bool = False
    skipped_reason: str | None = None
    started_at: datetime
    finished_at: datetime | None = None
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Procedure(SQLModel, table=True):
    """An administrative procedure (thủ tục hành chính) and its legal time limit."""

    code: str = Field(primary_key=True, max_length=64)
    name: str
    limit_value: float
    limit_unit: str = Field(max_length=16)  # working_days | working_hours | days
    level: str = Field(max_length=16)  # province | commune | …


class Dossier(SQLModel, table=True):
    """One dossier (hồ sơ TTHC) of the one-stop system, times in local time (naive).

    `regime` is the one-stop rule set in force on its receipt date (deadlines/one_stop.yaml),
    kept for the dossier's whole life. `first_due` is the legal due date counted from
    receipt, `legal_due` the one after the last supplement (the limit restarts): the legal
    clock reads the first until a supplement is requested, and never runs while the citizen
    is asked for one. `due` is the date the citizen was last given (the apology's new date,
    if any): an apology does not make a late dossier on time. `due_766` is the appointment
    the portal's on-time indicator measures against, the citizen's wait added back.
    `state` is the dossier's state as its last export showed it (deadlines.dossier.STATES).
    """

    __table_args__ = (
        Index(
            "ix_dossier_open_due",
            "due",
            sqlite_where=text("completed_at IS NULL"),
            postgresql_where=text("completed_at IS NULL"),
        ),
        Index("ix_dossier_agency_received", "agency_code", "received_at"),
        Index("ix_dossier_completed", "completed_at"),
    )

    # Codes compared byte by byte on PostgreSQL (COLLATE "C"): the primary key and the
    # agency index of a million dossiers build in half the time of a locale's collation,
    # and codes have no language to sort by. SQLite compares bytes already.
    id: str = Field(sa_column=Column(_code(), primary_key=True))
    procedure_code: str = Field(foreign_key="procedure.code", max_length=64)
    agency_code: str = Field(sa_column=Column(_code(), ForeignKey("agency.code"), nullable=False))
    channel: str = Field(max_length=8)  # online | direct | postal
    received_at: datetime = Field(sa_column=Column(DateTime, nullable=False))
    completed_at: datetime | None = Field(default=None, sa_column=Column(DateTime))
    supplement_requested_at: datetime | None = Field(default=None, sa_column=Column(DateTime))
    supplement_received_at: datetime | None = Field(default=None, sa_column=Column(DateTime))
    apology_at: datetime | None = Field(default=None, sa_column=Column(DateTime))
    apology_new_due: datetime | None = Field(default=None, sa_column=Column(DateTime))
    digitized: bool
    e_result: bool
    paid_online: bool | None = None
    handler: str | None = Field(default=None, max_length=200)
    legal_due: datetime = Field(sa_column=Column(DateTime, nullable=False))
    due: datetime = Field(sa_column=Column(DateTime, nullable=False))
    imported_at: datetime = Field(sa_column=Column(DateTime, nullable=False))
    supplement_requests: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    closed_at: datetime | None = Field(default=None, sa_column=Column(DateTime))
    appointment_at: datetime | None = Field(default=None, sa_column=Column(DateTime))
    regime: str = Field(default="", max_length=16, sa_column_kwargs={"server_default": ""})
    first_due: datetime | None = Field(default=None, sa_column=Column(DateTime))
    due_766: datetime | None = Field(default=None, sa_column=Column(DateTime))
    apology_timely: bool | None = None
    reschedules: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    state: str = Field(
        default="received", max_length=24, sa_column_kwargs={"server_default": "received"}
    )
