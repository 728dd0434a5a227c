"""Device authorizations (RFC 8628): the device_grants table.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_grants",
        sa.Column("device_code_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("user_code_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("resource", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("poll_interval", sa.Integer(), nullable=False),
        sa.Column("last_polled_at", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("auth_time", sa.BigInteger(), nullable=True),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_code_hash", name="pk_device_grants"),
        sa.UniqueConstraint("user_code_hash", name="uq_device_grants_user_code_hash"),
    )
    op.create_index("ix_device_grants_client_id", "device_grants", ["client_id"])
    op.create_index("ix_device_grants_expires_at", "device_grants", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_device_grants_expires_at", table_name="device_grants")
    op.drop_index("ix_device_grants_client_id", table_name="device_grants")
    op.drop_table("device_grants")
