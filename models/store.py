"""Set-based statements the engine runs: bulk inserts that ignore duplicates, audit rows.

No per-row ORM objects on hot paths: rows go in as dictionaries, in chunks, through the
dialect's own `INSERT … ON CONFLICT DO NOTHING`, so unique keys (not application checks)
make double creation impossible, also when two sweeps run at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

from models.tables import AuditLog

CHUNK = 500


def utcnow() -> datetime:
    return datetime.now(UTC)


def _insert(session: Session, table: Table):
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"dunghan stores its data in SQLite or PostgreSQL, not {dialect}.")


def insert_ignoring_duplicates(
    session: Session,
    model: type[SQLModel],
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str],
    returning: Sequence[str] = (),
) -> list[tuple]:
    """Insert `rows`, silently skipping those that collide on the unique key `conflict`.

    Returns the `returning` columns of the rows actually inserted (by this statement,
    not by a concurrent one).
    """
    table: Table = model.__table__  # type: ignore[attr-defined]
    if not rows:
        return []
    # One statement, executed with many parameter sets: compiled once and cached, and
    # sent in batches by SQLAlchemy's "insertmanyvalues" (RETURNING included).
    stmt = _insert(session, table).on_conflict_do_nothing(index_elements=list(conflict))
    if not returning:
        session.execute(stmt, list(rows))
        return []
    stmt = stmt.returning(*(table.c[name] for name in returning))
    return [tuple(r) for r in session.execute(stmt, list(rows))]


def upsert(
    session: Session,
    model: type[SQLModel],
    rows: Sequence[dict[str, Any]],
    key: Sequence[str],
) -> None:
    """Insert or update `rows` by the unique key `key` (reference data sync)."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    for start in range(0, len(rows), CHUNK):
        chunk = list(rows[start : start + CHUNK])
        if not chunk:
            continue
        stmt = _insert(session, table).values(chunk)
        updates = {c: stmt.excluded[c] for c in chunk[0] if c not in key}
        if updates:
            stmt = stmt.on_conflict_do_update(index_elements=list(key), set_=updates)
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
        session.execute(stmt)


def audit(
    session: Session,
    actor: str,
    action: str,
    entity: str,
    entity_id: object,
    **detail: Any,
) -> None:
    session.add(
        AuditLog(
            at=utcnow(),
            actor=actor,
            action=action,
            entity=entity,
            entity_id=str(entity_id),
            detail=_jsonable(detail),
        )
    )


def audit_many(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """Bulk audit rows: each a dict with actor, action, entity, entity_id, detail."""
    now = utcnow()
    payload = [
        {**r, "at": now, "entity_id": str(r["entity_id"]), "detail": _jsonable(r["detail"])}
        for r in rows
    ]
    if payload:
        session.execute(AuditLog.__table__.insert(), payload)  # type: ignore[attr-defined]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
