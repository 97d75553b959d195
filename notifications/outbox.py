"""The outbox: every notification is stored before any attempt to send it.

A message's idempotency key (recipient, items, ladder step, day) is unique in the table,
so a rerun or two sweeps at once store each message once, and nothing queued is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from models.store import insert_ignoring_duplicates, utcnow
from models.tables import Notification
from notifications.compose import Message


def store_messages(session: Session, messages: Sequence[Message]) -> int:
    """Put messages in the outbox; a message whose key is already there is skipped."""
    now = utcnow()
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
            "status": "pending",
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        }
        for m in messages
    ]
    return len(insert_ignoring_duplicates(session, Notification, rows, ["idempotency_key"], ["id"]))
