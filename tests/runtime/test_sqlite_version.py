"""A SQLite without UPDATE ... RETURNING (before 3.35) is refused at start-up, in one line,
rather than failing every code exchange and refresh as "database unavailable"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokensmith.errors import StartupError
from tokensmith.runtime import services
from tokensmith.settings import Settings

pytestmark = pytest.mark.anyio


async def test_an_old_sqlite_is_refused_before_anything_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.sqlite3, "sqlite_version_info", (3, 34, 1))
    settings = Settings(_env_file=None, var_dir=tmp_path)  # type: ignore[call-arg]
    with pytest.raises(StartupError, match=r"SQLite 3\.34\.1 is too old: .* 3\.35\.0 or newer"):
        await services.open_engine(settings)
    assert not (tmp_path / "tokensmith.db").exists()


@pytest.mark.backends("sqlite")
async def test_the_sqlite_here_is_new_enough(settings: Settings) -> None:
    engine = await services.open_engine(settings)
    await engine.dispose()
