"""Migrations: each step applies on top of real data, on both databases, and the models match."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tokensmith.persistence import migrate
from tokensmith.persistence.repositories import SqlClientStore
from tokensmith.persistence.tables import metadata
from tokensmith.runtime.services import open_engine
from tokensmith.settings import Settings

pytestmark = pytest.mark.anyio


async def test_upgrade_keeps_existing_clients(settings: Settings) -> None:
    engine = await open_engine(settings)
    try:
        await migrate.upgrade(engine, "0001")
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO clients (client_id, name, is_public, grant_types, redirect_uris, "
                    "scope, auth_method, access_token_format, cors_origins, "
                    "post_logout_redirect_uris, created_at, updated_at) VALUES "
                    """('old', 'Old client', false, '["client_credentials"]', '[]', 'a', """
                    "'client_secret_basic', 'jwt', '[]', '[]', 1, 1)"
                )
            )
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        client = await SqlClientStore(engine).get("old")
        assert client is not None
        assert client.allowed_resources == ()
        assert client.grant_types == ("client_credentials",)
    finally:
        await engine.dispose()


async def test_models_match_the_migrated_schema(settings: Settings) -> None:
    """tables.py and the migrations describe the same schema: nothing left to autogenerate."""
    engine = await open_engine(settings)
    try:
        await migrate.upgrade(engine)

        def diff(connection: sa.Connection) -> list[object]:
            return list(compare_metadata(MigrationContext.configure(connection), metadata))

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()


async def test_the_quick_revision_check_agrees_with_alembic(settings: Settings) -> None:
    """migrate.py reads the revision without Alembic; Alembic must read the same."""
    assert migrate.head_revision() == migrate.scripts_head()
    engine = await open_engine(settings)
    try:
        assert await migrate.current_revision(engine) is None  # an empty database
        for revision in ("0001", "head"):
            await migrate.upgrade(engine, revision)

            def alembic_says(connection: sa.Connection) -> str | None:
                return MigrationContext.configure(connection).get_current_revision()

            async with engine.connect() as conn:
                expected = await conn.run_sync(alembic_says)
            assert await migrate.current_revision(engine) == expected
        assert expected == migrate.HEAD_REVISION
    finally:
        await engine.dispose()
