"""#20's storage: concurrent presentations of one refresh token answered, not punished.

- ``clients.refresh_grace`` becomes nullable: NULL means the server's ``REFRESH_GRACE`` (on by
  default), a number the client's own window (0: off). Existing clients had 0 only because
  that was the default, so they move to NULL and get the server's window; a client that must
  stay strict is set to 0 again (``tokensmith clients update ID --refresh-grace 0``).
- ``refresh_tokens.rotated_by``: a keyed fingerprint of the credential that rotated the token,
  which a duplicate presentation must match; ``refresh_tokens.duplicates``: how many were
  answered, so that more than a handful count as reuse.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.alter_column(
            "refresh_grace", existing_type=sa.Integer, nullable=True, server_default=None
        )
    op.execute("UPDATE clients SET refresh_grace = NULL WHERE refresh_grace = 0")
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("rotated_by", sa.LargeBinary(32), nullable=True))
        batch.add_column(
            sa.Column("duplicates", sa.Integer, nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("duplicates")
        batch.drop_column("rotated_by")
    op.execute("UPDATE clients SET refresh_grace = 0 WHERE refresh_grace IS NULL")
    with op.batch_alter_table("clients") as batch:
        batch.alter_column(
            "refresh_grace",
            existing_type=sa.Integer,
            nullable=False,
            server_default=sa.text("0"),
        )
