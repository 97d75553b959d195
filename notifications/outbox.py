"""The outbox: every notification is stored before any attempt to send it.

A message's idempotency key (recipient, items, ladder step, day) is unique in the table,
so a rerun or two sweeps at once store each message once, and nothing queued is dropped.

A row's life:

    pending ──claim──▶ sending ──server accepted──▶ sent
       ▲                  │
       └──4xx, no server──┤ (backoff: next_attempt_at; attempts counts the claims)
                          └──5xx, bad address, too many attempts──▶ failed

A claim is a lease: `sending` rows carry in `next_attempt_at` the end of their lease, and
a row whose lease ran out (its sender died) is claimable again. Every status change is
conditional on the row still being in the state its sender claimed (`status` and
`attempts` as claimed), so a sender that lost its lease cannot overwrite another's work.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.store import insert_ignoring_duplicates, utcnow
from models.tables import Notification
from notifications import compose, queries
from notifications.compose import Message

ERROR_LIMIT = 2000


class Status:
    """The statuses of an outbox row."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    ALL = (PENDING, SENDING, SENT, FAILED)


# -------------------------------------------------------------------------- store


def store_messages(session: Session, messages: Sequence[Message], *, now=None) -> int:
    """Put messages in the outbox, each with the calendar of its recipient's open
    deadlines; a message whose key is already there is skipped. Returns how many were new.
    """
    now = now or utcnow()
    unique: dict[str, Message] = {}
    for message in messages:
        unique.setdefault(message.idempotency_key, message)
    keys = list(unique)
    for start in range(0, len(keys), queries.CHUNK):
        chunk = keys[start : start + queries.CHUNK]
        for key in session.scalars(
            select(Notification.idempotency_key).where(Notification.idempotency_key.in_(chunk))
        ):
            unique.pop(key, None)
    if not unique:
        return 0
    calendars = _calendars(session, list(unique.values()), now)
    rows = [
        {
            "idempotency_key": m.idempotency_key,
            "kind": m.kind,
            "recipient": m.recipient,
            "recipient_name": m.recipient_name,
            "cc": ",".join(m.cc),
            "subject": m.subject,
            "body_text": m.body_text,
            "body_html": m.body_html,
            "ics": calendars[m.idempotency_key],
            "covers": list(m.covers),
            "status": Status.PENDING,
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        }
        for m in unique.values()
    ]
    return len(insert_ignoring_duplicates(session, Notification, rows, ["idempotency_key"], ["id"]))


def covered(session: Session, kind: str, day) -> dict[str, set[str]]:
    """What the `kind` messages of `day` already in the outbox say, by recipient address
    (lower case): the lines a later message that day leaves out."""
    out: dict[str, set[str]] = defaultdict(set)
    for recipient, covers in session.execute(
        select(Notification.recipient, Notification.covers).where(
            Notification.kind == kind,
            Notification.idempotency_key.startswith(f"{kind}:{day.isoformat()}:"),
        )
    ):
        out[recipient.lower()].update(covers or ())
    return out


def _calendars(session: Session, messages: Sequence[Message], now: datetime) -> dict[str, str]:
    """Each message's .ics: the open deadlines of the agencies its recipient answers for,
    and those of the items it speaks about (a letter to the Chairman lists other agencies')."""
    agencies_of = queries.agencies_by_address(session)
    items = queries.open_items(
        session,
        agency_codes={c for m in messages for c in agencies_of.get(m.recipient.lower(), [])},
        item_ids={i for m in messages for i in m.item_ids},
    )
    by_agency: dict[str, list[queries.OpenItem]] = defaultdict(list)
    for item in items.values():
        by_agency[item.agency_code].append(item)
    out = {}
    for m in messages:
        codes = agencies_of.get(m.recipient.lower(), [])
        mine = {i.item_id: i for code in codes for i in by_agency[code]}
        mine |= {i: items[i] for i in m.item_ids if i in items}
        owners = {i.agency for i in mine.values()}
        title = next(iter(owners)) if len(owners) == 1 else m.recipient_name
        out[m.idempotency_key] = queries.calendar_of(
            mine.values(), name=f"Đúng hạn — {title}", stamp=now
        )
    return out


# -------------------------------------------------------------------------- claim


@dataclass(frozen=True)
class OutgoingMail:
    """A claimed outbox row: what to send, and the claim (`attempts`) that owns it."""

    id: int
    idempotency_key: str
    kind: str
    recipient: str
    recipient_name: str
    cc: tuple[str, ...]
    subject: str
    body_text: str
    body_html: str
    ics: str
    created_at: datetime
    attempts: int

    @property
    def envelope_recipients(self) -> list[str]:
        return compose.recipients(self.recipient, self.cc)

    def email(self, mail_from: str) -> EmailMessage:
        """The MIME message; `compose.InvalidAddress` if an address cannot be sent to."""
        return compose.email_message(
            idempotency_key=self.idempotency_key,
            kind=self.kind,
            recipient=self.recipient,
            recipient_name=self.recipient_name,
            cc=self.cc,
            subject=self.subject,
            body_text=self.body_text,
            body_html=self.body_html,
            ics_text=self.ics,
            created_at=self.created_at,
            mail_from=mail_from,
        )


_CLAIMED_COLUMNS = (
    Notification.id,
    Notification.idempotency_key,
    Notification.kind,
    Notification.recipient,
    Notification.recipient_name,
    Notification.cc,
    Notification.subject,
    Notification.body_text,
    Notification.body_html,
    Notification.ics,
    Notification.created_at,
    Notification.attempts,
)


def _claimable(now: datetime):
    """Due pending rows, and sending rows whose lease has run out (their sender died)."""
    return and_(
        or_(Notification.status == Status.PENDING, Notification.status == Status.SENDING),
        Notification.next_attempt_at <= now,
    )


def _to_mail(row) -> OutgoingMail:
    (id_, key, kind, recipient, name, cc, subject, text, html, ics, created, attempts) = row
    return OutgoingMail(
        id=id_,
        idempotency_key=key,
        kind=kind,
        recipient=recipient,
        recipient_name=name,
        cc=tuple(a for a in cc.split(",") if a),
        subject=subject,
        body_text=text,
        body_html=html,
        ics=ics,
        created_at=created,
        attempts=attempts,
    )


def claim(engine: Engine, *, now: datetime, lease: timedelta, limit: int) -> list[OutgoingMail]:
    """Take up to `limit` due messages for one sender, oldest first, until `now + lease`.

    PostgreSQL: `SELECT … FOR UPDATE SKIP LOCKED`, so concurrent senders take disjoint
    rows without waiting for each other. SQLite: one conditional `UPDATE … RETURNING`,
    which SQLite runs under its single write lock, so the same holds.
    """
    values = {
        "status": Status.SENDING,
        "attempts": Notification.attempts + 1,
        "next_attempt_at": now + lease,
    }
    due: Select = (
        select(Notification.id)
        .where(_claimable(now))
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(limit)
    )
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            ids = connection.scalars(due.with_for_update(skip_locked=True)).all()
            if not ids:
                return []
            target = Notification.id.in_(ids)
        else:
            target = Notification.id.in_(due.scalar_subquery())
        rows = connection.execute(
            update(Notification)
            .where(target, _claimable(now))
            .values(**values)
            .returning(*_CLAIMED_COLUMNS)
        ).all()
    return sorted((_to_mail(row) for row in rows), key=lambda m: m.id)


def _still_mine(mail: OutgoingMail):
    return and_(
        Notification.id == mail.id,
        Notification.status == Status.SENDING,
        Notification.attempts == mail.attempts,
    )


def _update(engine: Engine, mail: OutgoingMail, **values) -> bool:
    with engine.begin() as connection:
        result = connection.execute(update(Notification).where(_still_mine(mail)).values(**values))
    return result.rowcount == 1


def _clip(error: str) -> str:
    return error if len(error) <= ERROR_LIMIT else error[: ERROR_LIMIT - 1] + "…"


def mark_sent(engine: Engine, mail: OutgoingMail, *, now: datetime, note: str | None) -> bool:
    """The server accepted the message (`note`: recipients it refused, if any)."""
    return _update(
        engine, mail, status=Status.SENT, sent_at=now, last_error=_clip(note) if note else None
    )


def mark_retry(
    engine: Engine, mail: OutgoingMail, *, error: str, retry_at: datetime, max_attempts: int
) -> str:
    """A temporary failure: back to pending at `retry_at`, or failed once the message has
    had `max_attempts` attempts. Returns the status the row got."""
    if mail.attempts >= max_attempts:
        error = f"Đã thử {mail.attempts} lần, không gửi được; lần cuối: {error}"
        _update(engine, mail, status=Status.FAILED, last_error=_clip(error))
        return Status.FAILED
    _update(engine, mail, status=Status.PENDING, next_attempt_at=retry_at, last_error=_clip(error))
    return Status.PENDING


def mark_failed(engine: Engine, mail: OutgoingMail, *, error: str) -> None:
    """A permanent failure (5xx, a malformed address): recorded, never retried."""
    _update(engine, mail, status=Status.FAILED, last_error=_clip(error))


def release(engine: Engine, mails: Iterable[OutgoingMail], *, now: datetime) -> int:
    """Give back claimed messages that were not tried: pending at once, claim not counted."""
    released = 0
    for mail in mails:
        released += _update(
            engine,
            mail,
            status=Status.PENDING,
            next_attempt_at=now,
            attempts=Notification.attempts - 1,
        )
    return released


# --------------------------------------------------------------------- operators


@dataclass(frozen=True)
class OutboxEntry:
    """An outbox row as operators see it."""

    id: int
    kind: str
    status: str
    recipient: str
    subject: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None


def list_messages(
    engine: Engine, *, status: str | None = None, limit: int = 50
) -> list[OutboxEntry]:
    """The latest outbox rows, newest first, optionally of one status."""
    query = select(
        Notification.id,
        Notification.kind,
        Notification.status,
        Notification.recipient,
        Notification.subject,
        Notification.attempts,
        Notification.created_at,
        Notification.next_attempt_at,
        Notification.sent_at,
        Notification.last_error,
    )
    if status is not None:
        query = query.where(Notification.status == status)
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(Notification.id.desc()).limit(limit)).all()
    return [OutboxEntry(*row) for row in rows]


def status_counts(engine: Engine) -> dict[str, int]:
    """How many rows have each status (every status present, zero included)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(Notification.status, func.count()).group_by(Notification.status)
        ).all()
    return {status: 0 for status in Status.ALL} | dict(rows)


def requeue_failed(engine: Engine, ids: Sequence[int] | None, *, now: datetime) -> int:
    """Put failed messages back in the queue with fresh attempts (after an operator fixed
    the cause: an address in the registry, the server's settings). `None`: every one."""
    query = update(Notification).where(Notification.status == Status.FAILED)
    if ids is not None:
        query = query.where(Notification.id.in_(list(ids)))
    with engine.begin() as connection:
        result = connection.execute(
            query.values(status=Status.PENDING, attempts=0, next_attempt_at=now)
        )
    return result.rowcount
