"""dossier id and agency code compared byte by byte on PostgreSQL (COLLATE "C")

The primary key and the (agency_code, received_at) index of a million dossiers build in
about half the time under "C" as under a locale's collation (C.UTF-8 included: PostgreSQL
before 17 compares it through the C library). Codes sort the same in both for ASCII
codes. SQLite compares bytes already: nothing to do there.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 19:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = ("id", "agency_code")


def upgrade() -> None:
    _retype(sa.String(64), sa.String(64, collation="C"))


def downgrade() -> None:
    _retype(sa.String(64, collation="C"), sa.String(64))


def _retype(existing: sa.String, new: sa.String) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.alter_column(
            "dossier", column, type_=new, existing_type=existing, existing_nullable=False
        )
