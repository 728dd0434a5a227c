"""Refresh-token grace window: a per-client window, and the sealed successor kept for it.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column("refresh_grace", sa.Integer, nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("successor_sealed", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("successor_sealed")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("refresh_grace")
