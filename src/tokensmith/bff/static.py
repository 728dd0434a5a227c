"""The SPA's files, served from the BFF's own origin (so its cookies and CSRF rules apply).

Only regular files inside the directory, by a path that resolves there (no ``..``, no symlink
out), of a known type; ``/`` and any directory serve ``index.html``. Nothing whose name, or whose
directory's name, starts with a dot, asked for or reached through a symlink: ``.env.json``,
``.git/`` and an editor's ``.app.js.swp`` sit beside an SPA's build more often than not. Files
are read per request: this is for an SPA's handful of files, not a CDN.
"""

from __future__ import annotations

from pathlib import Path

from tokensmith.bff.http import Send, respond, send_error
from tokensmith.core.proxy_paths import path_is_forwardable

__all__ = ["StaticFiles"]

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
_MAX_FILE = 8 * 1024 * 1024


class StaticFiles:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _inside(self, candidate: Path) -> Path | None:
        target = candidate.resolve()
        if not target.is_relative_to(self.root) or _hidden(target.relative_to(self.root)):
            return None
        return target

    def _file(self, path: str) -> Path | None:
        if not path_is_forwardable(path, path.encode("utf-8")):
            return None
        target = self._inside(self.root / path.lstrip("/"))
        if target is not None and target.is_dir():
            target = self._inside(target / "index.html")  # which may be a link out, too
        if target is None or not target.is_file() or target.suffix not in _TYPES:
            return None
        return target

    async def serve(self, path: str, send: Send) -> None:
        target, body = None, None
        try:
            target = self._file(path)
            if target is not None and target.stat().st_size <= _MAX_FILE:
                body = target.read_bytes()
        except OSError:  # a name longer than the file system takes, a file gone: no such file
            pass
        if target is None or body is None:
            await send_error(send, "not_found", "no such file")
            return
        await respond(send, 200, body, _TYPES[target.suffix])


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)
