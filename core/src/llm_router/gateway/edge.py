"""The gateway's outermost layer, in front of Starlette: what every answer needs whatever produced it.

* Every answer carries ``x-request-id``: the client's own when it sent a sane one (1 to 128 visible ASCII
  characters), else a fresh id. The request's header is set to that id before the app sees it, so the
  endpoints, the ledger and the completion id (``chatcmpl-<id>``) use the same one.
* Request bodies larger than ``gateway.max_body_bytes`` are refused with a 413 in OpenAI's error format
  before they are parsed: at once when ``Content-Length`` says so (nothing of the body is read), else (a
  chunked body) as soon as the bytes received pass the limit.
* :func:`header_value`: any text made safe as a header value (the ``x-router-*`` headers carry model ids and
  task names from the policy, which may be any Unicode).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..ids import new_request_id
from .openai_types import GatewayHTTPError, error_body

__all__ = ["Edge", "body_too_large", "header_value"]

HEADER_LIMIT = 512
_SANE_ID = re.compile(rb"[\x21-\x7e]{1,128}")
# printable ASCII but '%' (which escapes) stays as it is in a header value; the rest is percent-encoded
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def header_value(text: str, limit: int = HEADER_LIMIT) -> bytes:
    """``text`` as an HTTP header value: printable ASCII kept; anything else (non-ASCII, control characters
    such as CR and LF, ``%`` itself, and spaces at either end) percent-encoded as UTF-8 (``up/模型`` →
    ``up/%E6%A8%A1%E5%9E%8B``); at most ``limit`` bytes, never cut inside an escape."""
    if len(text) <= limit and text.isascii() and text.isprintable() and "%" not in text and text.strip() == text:
        return text.encode("ascii")
    encoded = quote(text, safe=_SAFE)
    stripped = encoded.strip(" ")
    if stripped != encoded:  # a header value may not start or end with whitespace
        start = len(encoded) - len(encoded.lstrip(" "))
        end = len(encoded.rstrip(" "))
        encoded = "%20" * start + stripped + "%20" * (len(encoded) - end)
    if len(encoded) > limit:
        encoded = encoded[:limit]
        escape = encoded.rfind("%", limit - 2)
        if escape != -1:
            encoded = encoded[:escape]
        encoded = encoded.rstrip(" ")
    return encoded.encode("ascii")


def body_too_large(limit: int) -> GatewayHTTPError:
    return GatewayHTTPError(
        413,
        f"the request body is larger than this gateway accepts ({limit:,} bytes; gateway.max_body_bytes)",
        code="request_too_large",
        kind="request",
    )


def _request_id(scope: Scope) -> bytes:
    """The client's ``x-request-id`` when it is sane, else a fresh one; the scope's headers are set to it."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == b"x-request-id":
            if _SANE_ID.fullmatch(value):
                return value
            break
    else:
        fresh = new_request_id().encode("ascii")
        scope["headers"] = [*headers, (b"x-request-id", fresh)]
        return fresh
    fresh = new_request_id().encode("ascii")
    scope["headers"] = [(n, v) for n, v in headers if n != b"x-request-id"] + [(b"x-request-id", fresh)]
    return fresh


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server refuses such requests itself
    return None


class Edge:
    """ASGI middleware: ``x-request-id`` on every answer, and the request body limit (see the module)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, on_too_large: Callable[[], None] | None = None) -> None:
        self.app = app
        self.limit = max_body_bytes
        self.on_too_large = on_too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", ())
                # ASGI response header names are lower-case (Starlette's always are): no .lower() per header
                for name, _ in headers:
                    if name == b"x-request-id":
                        break
                else:
                    message = {**message, "headers": [*headers, (b"x-request-id", request_id)]}
            await send(message)

        length = _content_length(scope)
        if length is not None and length > self.limit:
            await self._refuse(send_with_id)  # before a byte of the body is read
            return
        if length is not None:  # the server delivers no more than Content-Length says
            await self.app(scope, receive, send_with_id)
            return
        await self.app(scope, self._counting(receive), send_with_id)

    def _counting(self, receive: Receive) -> Receive:
        """``receive`` for a body of unknown length: fails with a 413 once the bytes pass the limit."""
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    if self.on_too_large is not None:
                        self.on_too_large()
                    raise body_too_large(self.limit)
            return message

        return counted

    async def _refuse(self, send: Send) -> None:
        if self.on_too_large is not None:
            self.on_too_large()
        err = body_too_large(self.limit)
        body = json.dumps(error_body(err.message, err.type, err.param, err.code)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": err.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
