"""Applying and checking Alembic migrations from code, on the async engine's connection.

Every server start and CLI command checks the schema's revision, and loading Alembic costs a
quarter of a second: the check reads Alembic's table with plain SQL against ``HEAD_REVISION``,
and Alembic itself is loaded only to upgrade (tests/persistence/test_migrations.py holds both to
what Alembic says).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from tokensmith.persistence.database import unbounded_engine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["HEAD_REVISION", "current_revision", "head_revision", "scripts_head", "upgrade"]

# The newest migration in migrations/versions/; a new migration changes it.
HEAD_REVISION = "0013"

_SCRIPTS = Path(__file__).parent / "migrations"


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


def head_revision() -> str:
    return HEAD_REVISION


def scripts_head() -> str:
    """The head revision as Alembic reads it from the migration scripts."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision recorded in the database; None before the first migration."""

    def read(connection: Connection) -> str | None:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        rows = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        if len(rows) > 1:
            raise RuntimeError("the database records more than one migration head")
        return str(rows[0][0]) if rows else None

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    def run(connection: Connection) -> None:
        from alembic import command

        config = _config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    unbounded = unbounded_engine(engine)
    try:
        async with (unbounded or engine).begin() as connection:
            await connection.run_sync(run)
    finally:
        if unbounded is not None:
            await unbounded.dispose()
