"""Indices for deleting a client (its tokens, families and codes), for the purges, and for
finding the client of a reported leaked secret.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_INDICES = [
    ("issued_tokens", "client_id"),
    ("refresh_families", "client_id"),
    ("refresh_families", "created_at"),
    ("authorization_codes", "client_id"),
    ("sessions", "expires_at"),
    ("clients", "secret_hash"),
    ("clients", "previous_secret_hash"),
]


def upgrade() -> None:
    for table, column in _INDICES:
        op.create_index(f"ix_{table}_{column}", table, [column])


def downgrade() -> None:
    for table, column in _INDICES:
        op.drop_index(f"ix_{table}_{column}", table_name=table)
