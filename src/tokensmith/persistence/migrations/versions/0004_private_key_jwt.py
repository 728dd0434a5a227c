"""private_key_jwt: a JWKS per client, and the client-assertion ids already seen.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("jwks", sa.JSON, nullable=True))
    op.create_table(
        "client_assertions",
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("jti", sa.String(length=256), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name=op.f("pk_client_assertions")),
    )
    op.create_index(
        op.f("ix_client_assertions_expires_at"), "client_assertions", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_client_assertions_expires_at"), table_name="client_assertions")
    op.drop_table("client_assertions")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("jwks")
