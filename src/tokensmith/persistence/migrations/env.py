"""Alembic environment: runs on the connection that ``tokensmith.persistence.migrate`` hands in."""

from __future__ import annotations

from alembic import context

from tokensmith.persistence.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `tokensmith migrate`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
