"""#16's storage: DPoP bindings, pushed authorization requests, token exchange and JWE settings.

- ``clients``: ``dpop_bound_access_tokens`` (RFC 9449 §5.2),
  ``require_pushed_authorization_requests`` (RFC 9126 §6), ``token_exchange`` (the audiences and
  actors its exchanges may name, RFC 8693) and the ID token's and userinfo's encryption choices
  (OIDC Registration §2). All off for existing clients.
- ``issued_tokens.claims``: what a stored token carries besides the registered claims (``cnf``,
  ``act``), so opaque tokens can be bound and introspection can say so.
- ``refresh_families.dpop_jkt``: the key a public client's refresh tokens are bound to;
  ``authorization_codes.dpop_jkt``: the key named at /authorize or /par (RFC 9449 §10).
- ``pushed_requests``: a ``request_uri`` (by keyed hash) and the parameters pushed with it.
- ``dpop_proofs``: proofs seen, by hash of key and ``jti``, until they expire (the replay record
  when Redis is not configured).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column(
                "dpop_bound_access_tokens", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch.add_column(
            sa.Column(
                "require_pushed_authorization_requests",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
        batch.add_column(sa.Column("token_exchange", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("id_token_encrypted_response_alg", sa.String(32), nullable=True))
        batch.add_column(sa.Column("id_token_encrypted_response_enc", sa.String(32), nullable=True))
        batch.add_column(sa.Column("userinfo_encrypted_response_alg", sa.String(32), nullable=True))
        batch.add_column(sa.Column("userinfo_encrypted_response_enc", sa.String(32), nullable=True))
    with op.batch_alter_table("issued_tokens") as batch:
        batch.add_column(sa.Column("claims", sa.JSON(), nullable=True))
    with op.batch_alter_table("refresh_families") as batch:
        batch.add_column(sa.Column("dpop_jkt", sa.String(64), nullable=True))
    with op.batch_alter_table("authorization_codes") as batch:
        batch.add_column(sa.Column("dpop_jkt", sa.String(64), nullable=True))
    op.create_table(
        "pushed_requests",
        sa.Column("request_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("request_hash", name="pk_pushed_requests"),
    )
    op.create_index("ix_pushed_requests_expires_at", "pushed_requests", ["expires_at"])
    op.create_table(
        "dpop_proofs",
        sa.Column("proof_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("proof_hash", name="pk_dpop_proofs"),
    )
    op.create_index("ix_dpop_proofs_expires_at", "dpop_proofs", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_dpop_proofs_expires_at", table_name="dpop_proofs")
    op.drop_table("dpop_proofs")
    op.drop_index("ix_pushed_requests_expires_at", table_name="pushed_requests")
    op.drop_table("pushed_requests")
    with op.batch_alter_table("authorization_codes") as batch:
        batch.drop_column("dpop_jkt")
    with op.batch_alter_table("refresh_families") as batch:
        batch.drop_column("dpop_jkt")
    with op.batch_alter_table("issued_tokens") as batch:
        batch.drop_column("claims")
    with op.batch_alter_table("clients") as batch:
        for name in (
            "userinfo_encrypted_response_enc",
            "userinfo_encrypted_response_alg",
            "id_token_encrypted_response_enc",
            "id_token_encrypted_response_alg",
            "token_exchange",
            "require_pushed_authorization_requests",
            "dpop_bound_access_tokens",
        ):
            batch.drop_column(name)
