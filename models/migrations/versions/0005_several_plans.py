"""several plans: a loaded plan keeps its text and may be retired; obligations dropped by
a later version of their plan are marked, not deleted

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 09:00:00

Existing rows stay what they were: the plan row already carries its code (the 2025 plan
of Nghệ An, `nghe-an-2025-kstthc`, in every database so far) and its obligations and
items keep pointing at it. Its text is filled in the first time the engine opens the
database, from the default plan file with the same code.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("plan", schema=None) as batch_op:
        batch_op.add_column(sa.Column("document", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("source_file", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch_op.add_column(sa.Column("retired_on", sa.Date(), nullable=True))
    with op.batch_alter_table("obligation", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("removed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("obligation", schema=None) as batch_op:
        batch_op.drop_column("removed_at")
    with op.batch_alter_table("plan", schema=None) as batch_op:
        batch_op.drop_column("retired_on")
        batch_op.drop_column("source_file")
        batch_op.drop_column("digest")
        batch_op.drop_column("document")
