"""The SPA's file server: files of the directory only; no traversal, dotfile or symlink out."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tokensmith.bff.static import StaticFiles


def fetch(files: StaticFiles, path: str) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(files.serve(path, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.fixture
def files(tmp_path: Path) -> StaticFiles:
    root = tmp_path / "spa"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<p>app")
    (root / "assets" / "app.js").write_text("app()")
    (root / ".env.json").write_text('{"secret": 1}')
    (root / ".git").mkdir()
    (root / ".git" / "config.txt").write_text("secret")
    (root / "assets" / ".app.js").write_text("secret")
    (tmp_path / "outside.js").write_text("secret")
    (root / "out.js").symlink_to(tmp_path / "outside.js")
    (root / "env.json").symlink_to(root / ".env.json")  # a plain name for a hidden file
    (root / "linked").symlink_to(root / ".git")
    (root / "docs").mkdir()
    (root / "docs" / "index.html").symlink_to(tmp_path / "outside.js")  # an index linked out
    return StaticFiles(root)


def test_the_apps_files_are_served(files: StaticFiles) -> None:
    assert fetch(files, "/") == (200, b"<p>app")
    assert fetch(files, "/assets/")[0] == 404  # a directory without an index.html
    assert fetch(files, "/assets/app.js") == (200, b"app()")


@pytest.mark.parametrize(
    "path",
    [
        "/.env.json",
        "/.git/config.txt",
        "/assets/.app.js",
        "/env.json",
        "/linked/config.txt",
        "/out.js",
        "/../outside.js",
        "/assets/../../outside.js",
        "/%2e%2e/outside.js",
        "/assets/app.js;.css",
        "/index.html\x00.js",
        "/docs/",
        "/docs",
        "/" + "a" * 300 + ".js",  # longer than a file name may be (ENAMETOOLONG)
        "/assets/" + "a" * 300,
    ],
)
def test_anything_outside_or_hidden_is_not_found(files: StaticFiles, path: str) -> None:
    status, body = fetch(files, path)
    assert status == 404 and b"secret" not in body
