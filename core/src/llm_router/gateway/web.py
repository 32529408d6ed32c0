"""The web app's pages: the playground at ``/`` and the usage dashboard at ``/dashboard``.

The app's built files (``web/`` built by ``nox -s web`` into ``gateway/static/``, shipped in the wheel) are read
once when the gateway starts and served from memory, gzip-compressed when the browser accepts it, with a strict
Content-Security-Policy: scripts, styles and requests only from the gateway itself, nothing inline, no frames.
The pages need no key; every request they make does (the key is kept in the browser's session storage).
"""

from __future__ import annotations

import gzip
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["CSP", "STATIC_DIR", "WebApp"]

STATIC_DIR = Path(__file__).with_name("static")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
PAGES = ("/", "/dashboard")
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".html": "text/html"}


@dataclass(frozen=True, slots=True)
class _File:
    body: bytes
    gzipped: bytes | None
    media_type: str
    cache: str


def _load(directory: Path) -> dict[str, _File]:
    files: dict[str, _File] = {}
    if not directory.is_dir():
        return files
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if not path.is_file() or rel == "BUILD-SOURCE.json":
            continue
        body = path.read_bytes()
        media = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if media.startswith("text/") or media.endswith("+xml"):
            media += "; charset=utf-8"
        packed = gzip.compress(body, 9, mtime=0) if len(body) > 512 else None
        hashed = rel.startswith("assets/")  # file names with a content hash: cache them for good
        cache = "public, max-age=31536000, immutable" if hashed else "no-cache"
        files["/" + rel] = _File(body, packed if packed and len(packed) < len(body) else None, media, cache)
    return files


class WebApp:
    """Serves the built web app from memory."""

    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self.files = _load(directory)

    def routes(self) -> list[Route]:
        routes = [Route(page, self.page, methods=["GET", "HEAD"]) for page in PAGES]
        routes.append(Route("/assets/{name}", self.asset, methods=["GET", "HEAD"]))
        routes.append(Route("/icon.svg", self.asset, methods=["GET", "HEAD"]))
        return routes

    def _send(self, request: Request, found: _File) -> Response:
        headers = {**SECURITY_HEADERS, "cache-control": found.cache, "vary": "accept-encoding"}
        body = found.body
        if found.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
            body = found.gzipped
            headers["content-encoding"] = "gzip"
        return Response(body, 200, headers=headers, media_type=found.media_type)

    async def page(self, request: Request) -> Response:
        found = self.files.get("/index.html")
        if found is None:
            return Response(
                "The web app is not built: run `nox -s web` (it builds web/ into llm_router/gateway/static).",
                503,
                headers=SECURITY_HEADERS,
                media_type="text/plain; charset=utf-8",
            )
        return self._send(request, found)

    async def asset(self, request: Request) -> Response:
        found = self.files.get(request.url.path)
        if found is None:
            return Response("not found", 404, headers=SECURITY_HEADERS, media_type="text/plain; charset=utf-8")
        return self._send(request, found)
