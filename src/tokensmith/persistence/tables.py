"""The schema, as SQLAlchemy Core tables. Migrations in ``migrations/versions`` create it.

Times are integer seconds since the epoch (the unit of JWT claims), which behaves the same on
SQLite and PostgreSQL. Secrets appear only as keyed hashes (``*_hash``) or sealed (``*_sealed``).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["metadata"]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Time = sa.BigInteger

server_meta = sa.Table(
    "server_meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.LargeBinary, nullable=False),
)

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.String(128), primary_key=True),
    sa.Column("alg", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("public_jwk", sa.JSON, nullable=False),
    sa.Column("private_sealed", sa.LargeBinary, nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("activated_at", Time, nullable=True),
    sa.Column("retiring_at", Time, nullable=True),
    sa.Column("publish_until", Time, nullable=True),
    # One active and one next key at most, enforced by the database across nodes.
    sa.Index(
        "ux_signing_keys_one_active",
        "state",
        unique=True,
        sqlite_where=sa.text("state = 'active'"),
        postgresql_where=sa.text("state = 'active'"),
    ),
    sa.Index(
        "ux_signing_keys_one_next",
        "state",
        unique=True,
        sqlite_where=sa.text("state = 'next'"),
        postgresql_where=sa.text("state = 'next'"),
    ),
)

clients = sa.Table(
    "clients",
    metadata,
    sa.Column("client_id", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("is_public", sa.Boolean, nullable=False),
    sa.Column("grant_types", sa.JSON, nullable=False),
    sa.Column("redirect_uris", sa.JSON, nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("auth_method", sa.String(32), nullable=False),
    sa.Column("access_token_format", sa.String(8), nullable=False),
    sa.Column("access_token_ttl", sa.Integer, nullable=True),
    sa.Column("refresh_token_ttl", sa.Integer, nullable=True),
    sa.Column("cors_origins", sa.JSON, nullable=False),
    sa.Column("post_logout_redirect_uris", sa.JSON, nullable=False),
    sa.Column("allowed_resources", sa.JSON, nullable=False, server_default=sa.text("'[]'")),
    sa.Column("jwks", sa.JSON, nullable=True),
    sa.Column("refresh_grace", sa.Integer, nullable=True),  # NULL: the server's REFRESH_GRACE
    sa.Column("rate_limit", sa.Integer, nullable=True),
    sa.Column("may_vouch_client_ip", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("dpop_bound_access_tokens", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column(
        "require_pushed_authorization_requests",
        sa.Boolean,
        nullable=False,
        server_default=sa.false(),
    ),
    sa.Column("token_exchange", sa.JSON, nullable=True),
    sa.Column("id_token_encrypted_response_alg", sa.String(32), nullable=True),
    sa.Column("id_token_encrypted_response_enc", sa.String(32), nullable=True),
    sa.Column("userinfo_encrypted_response_alg", sa.String(32), nullable=True),
    sa.Column("userinfo_encrypted_response_enc", sa.String(32), nullable=True),
    sa.Column("secret_hash", sa.LargeBinary(32), nullable=True, index=True),
    sa.Column("previous_secret_hash", sa.LargeBinary(32), nullable=True, index=True),
    sa.Column("previous_secret_expires_at", Time, nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
)

client_assertions = sa.Table(
    "client_assertions",
    metadata,
    sa.Column("client_id", sa.String(128), primary_key=True),
    sa.Column("jti", sa.String(256), primary_key=True),
    sa.Column("expires_at", Time, nullable=False, index=True),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(128), nullable=False, unique=True),
    sa.Column("email", sa.String(320), nullable=True),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("password_changed_at", Time, nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("session_hash", sa.LargeBinary(32), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("auth_time", Time, nullable=False),
    sa.Column("amr", sa.String(64), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False, index=True),
    sa.Column("ended_at", Time, nullable=True),
)

consents = sa.Table(
    "consents",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(128), primary_key=True),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
)

authorization_codes = sa.Table(
    "authorization_codes",
    metadata,
    sa.Column("code_hash", sa.LargeBinary(32), primary_key=True),
    sa.Column("client_id", sa.String(128), nullable=False, index=True),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("redirect_uri", sa.Text, nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("code_challenge", sa.String(128), nullable=False),
    sa.Column("nonce", sa.Text, nullable=True),
    sa.Column("auth_time", Time, nullable=True),
    sa.Column("session_id", sa.String(64), nullable=True),
    sa.Column("resource", sa.Text, nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False, index=True),
    sa.Column("consumed_at", Time, nullable=True),
    sa.Column("replayed_at", Time, nullable=True),
    sa.Column("dpop_jkt", sa.String(64), nullable=True),
)

device_grants = sa.Table(
    "device_grants",
    metadata,
    sa.Column("device_code_hash", sa.LargeBinary(32), primary_key=True),
    # Unique, so that a user code names one grant; a clash at insert draws a new code.
    sa.Column("user_code_hash", sa.LargeBinary(32), nullable=False, unique=True),
    sa.Column("client_id", sa.String(128), nullable=False, index=True),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("resource", sa.Text, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("poll_interval", sa.Integer, nullable=False),
    sa.Column("last_polled_at", Time, nullable=True),
    sa.Column("user_id", sa.String(64), nullable=True),
    sa.Column("auth_time", Time, nullable=True),
    sa.Column("session_id", sa.String(64), nullable=True),
    sa.Column("decided_at", Time, nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False, index=True),
)

refresh_families = sa.Table(
    "refresh_families",
    metadata,
    sa.Column("family_id", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(128), nullable=False, index=True),
    sa.Column("subject", sa.String(128), nullable=False, index=True),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("session_id", sa.String(64), nullable=True, index=True),
    sa.Column("auth_time", Time, nullable=True),
    sa.Column("code_hash", sa.LargeBinary(32), nullable=True),
    sa.Column("created_at", Time, nullable=False, index=True),
    sa.Column("revoked_at", Time, nullable=True),
    sa.Column("revoked_reason", sa.String(64), nullable=True),
    sa.Column("dpop_jkt", sa.String(64), nullable=True),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("token_hash", sa.LargeBinary(32), primary_key=True),
    sa.Column("family_id", sa.String(64), nullable=False, index=True),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("issued_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False),
    sa.Column("rotated_at", Time, nullable=True),
    sa.Column("successor_hash", sa.LargeBinary(32), nullable=True),
    sa.Column("successor_sealed", sa.LargeBinary, nullable=True),
    sa.Column("rotated_by", sa.LargeBinary(32), nullable=True),
    sa.Column("duplicates", sa.Integer, nullable=False, server_default=sa.text("0")),
)

issued_tokens = sa.Table(
    "issued_tokens",
    metadata,
    sa.Column("jti", sa.String(64), primary_key=True),
    sa.Column("token_hash", sa.LargeBinary(32), nullable=True, unique=True),
    sa.Column("client_id", sa.String(128), nullable=False, index=True),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("audience", sa.Text, nullable=False),
    sa.Column("format", sa.String(8), nullable=False),
    sa.Column("family_id", sa.String(64), nullable=True, index=True),
    sa.Column("code_hash", sa.LargeBinary(32), nullable=True, index=True),
    sa.Column("issued_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False, index=True),
    sa.Column("revoked_at", Time, nullable=True),
    sa.Column("claims", sa.JSON, nullable=True),
)

pushed_requests = sa.Table(
    "pushed_requests",
    metadata,
    sa.Column("request_hash", sa.LargeBinary(32), primary_key=True),
    sa.Column("client_id", sa.String(128), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False, index=True),
    sa.Column("used_at", Time, nullable=True),
)

dpop_proofs = sa.Table(
    "dpop_proofs",
    metadata,
    sa.Column("proof_hash", sa.LargeBinary(32), primary_key=True),
    sa.Column("expires_at", Time, nullable=False, index=True),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("owner", sa.String(128), nullable=False, index=True),
    sa.Column("secret_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("allowed_cidrs", sa.JSON, nullable=False),
    sa.Column("rate_limit", sa.Integer, nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=True),
    sa.Column("revoked_at", Time, nullable=True),
    sa.Column("last_used_at", Time, nullable=True),
    sa.Column("replaced_by", sa.String(32), nullable=True),
    sa.Column("audiences", sa.JSON, nullable=True),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", Time, nullable=False, index=True),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(128), nullable=True),
    sa.Column("client_id", sa.String(128), nullable=True, index=True),
    sa.Column("subject", sa.String(128), nullable=True, index=True),
    sa.Column("source_ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(512), nullable=True),
    sa.Column("fingerprint", sa.String(64), nullable=True),
    sa.Column("detail", sa.JSON, nullable=False),
)
