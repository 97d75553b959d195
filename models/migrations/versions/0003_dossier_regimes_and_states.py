"""dossiers: the regime of their receipt date, the states the law knows, the two clocks

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:00:00

Existing rows are filled from what they hold: the regime by receipt date (Decree 61/2018
until 30/6/2025, Decree 118/2025 from 1/7/2025), the due date from receipt and the portal's
appointment taken as the stored legal due date (exact for dossiers without a supplement),
the state from their dates. Re-importing the exports recomputes every column exactly.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dossier", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("supplement_requests", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("appointment_at", sa.DateTime(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "regime",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                server_default="",
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("first_due", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("due_766", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("apology_timely", sa.Boolean(), nullable=True))
        batch_op.add_column(
            sa.Column("reschedules", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "state",
                sqlmodel.sql.sqltypes.AutoString(length=24),
                server_default="received",
                nullable=False,
            )
        )
    op.execute(
        """
        UPDATE dossier SET
            supplement_requests = CASE WHEN supplement_requested_at IS NULL THEN 0 ELSE 1 END,
            regime = CASE WHEN received_at < '2025-07-01' THEN 'ND61' ELSE 'ND118' END,
            first_due = legal_due,
            due_766 = legal_due,
            reschedules = CASE WHEN apology_at IS NULL THEN 0 ELSE 1 END,
            state = CASE
                WHEN completed_at IS NOT NULL THEN 'completed'
                WHEN supplement_requested_at IS NOT NULL AND supplement_received_at IS NULL
                    THEN 'awaiting_supplement'
                WHEN apology_at IS NOT NULL THEN 'rescheduled'
                ELSE 'received'
            END
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("dossier", schema=None) as batch_op:
        for column in (
            "state",
            "reschedules",
            "apology_timely",
            "due_766",
            "first_due",
            "regime",
            "appointment_at",
            "closed_at",
            "supplement_requests",
        ):
            batch_op.drop_column(column)
