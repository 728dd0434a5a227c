"""Clients: the right to name a caller's address (``client_ip``) at /api-keys/verify.

Off for every existing client: a gateway that sends ``client_ip`` needs
``tokensmith clients update <id> --may-vouch-client-ip`` after this migration.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column(
                "may_vouch_client_ip", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("may_vouch_client_ip")
