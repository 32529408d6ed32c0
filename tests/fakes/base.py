"""Shared machinery of the fake upstreams: a Starlette app on 127.0.0.1 (random port, uvicorn in a thread),
a queue of scripted answers, and a record of every request received."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

DEFAULT_TEXT = "Hello from the fake upstream."


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any


@dataclass
class Script:
    """What the fake does for the next request."""

    kind: str  # "text" | "error" | "stall"
    text: str = DEFAULT_TEXT
    usage: tuple[int, int] = (12, 7)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    retry_after: float | None = None
    seconds: float = 0.0
    chunk_delay_s: float = 0.0
    finish_reason: str | None = None


def split_text(text: str) -> list[str]:
    """The text in a few stream deltas (word by word, keeping the spaces)."""
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)] or [""]


def sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


class FakeUpstream:
    """Base of the fakes. Subclasses define ``routes`` and the wire format of answers and errors."""

    name = "fake"
    base_path = ""  # appended to the server root for ``base_url``
    request_id_header = "x-request-id"

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.script: deque[Script] = deque()
        self.open_streams = 0
        self.closed_streams = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- the scripting protocol ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_path}"

    def queue_text(
        self,
        text: str = DEFAULT_TEXT,
        *,
        usage: tuple[int, int] = (12, 7),
        tool_calls: Iterable[dict[str, Any]] = (),
        chunk_delay_s: float = 0.0,
        finish_reason: str | None = None,
    ) -> None:
        """Answer the next request with ``text`` (and OpenAI-style ``tool_calls``: id, name, arguments)."""
        self.script.append(
            Script(
                "text",
                text=text,
                usage=usage,
                tool_calls=list(tool_calls),
                chunk_delay_s=chunk_delay_s,
                finish_reason=finish_reason,
            )
        )

    def queue_error(self, kind: str, *, retry_after: float | None = None) -> None:
        """Fail the next request: ``rate_limit``, ``auth``, ``context_length``, ``server``, ``overloaded`` (and
        the kinds a fake adds, e.g. the OpenAI fake's ``auth_echo``)."""
        self.script.append(Script("error", error=kind, retry_after=retry_after))

    def queue_stall(self, seconds: float) -> None:
        """Say nothing for ``seconds`` (or until the client hangs up), then answer with the default text."""
        self.script.append(Script("stall", seconds=seconds))

    def reset(self) -> None:
        self.requests.clear()
        self.script.clear()

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    # -- the server ---------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def start(self) -> FakeUpstream:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        app = Starlette(routes=self.routes())
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1, timeout_keep_alive=5
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            assert self._thread is not None
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for subclasses -----------------------------------------------------------------

    async def record(self, request: Request) -> Recorded:
        body = await request.body()
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = body.decode(errors="replace")
        rec = Recorded(request.method, request.url.path, {k.lower(): v for k, v in request.headers.items()}, data)
        self.requests.append(rec)
        return rec

    async def next_script(self, request: Request | None = None) -> Script:
        """The next scripted behaviour. A stall waits (until the client gives up), then answers the default."""
        script = self.script.popleft() if self.script else Script("text")
        if script.kind == "stall":
            with anyio.move_on_after(script.seconds):
                while request is None or not await request.is_disconnected():  # noqa: ASYNC110 - no event to wait on
                    await anyio.sleep(0.05)
            script = Script("text")
        return script

    def new_request_id(self) -> str:
        return f"req_{uuid.uuid4().hex[:16]}"

    def headers(self, request_id: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {self.request_id_header: request_id, **(extra or {})}

    def json(self, body: Any, request_id: str, status: int = 200, extra: dict[str, str] | None = None) -> Response:
        return JSONResponse(body, status_code=status, headers=self.headers(request_id, extra))

    def event_stream(self, events: Iterable[bytes], request_id: str, delay_s: float) -> Response:
        async def gen() -> AsyncIterator[bytes]:
            self.open_streams += 1
            try:
                for event in events:
                    yield event
                    if delay_s:
                        await anyio.sleep(delay_s)
            finally:
                self.open_streams -= 1
                self.closed_streams += 1

        return StreamingResponse(gen(), media_type="text/event-stream", headers=self.headers(request_id))

    def error_headers(self, script: Script) -> dict[str, str]:
        return {"retry-after": f"{script.retry_after:g}"} if script.retry_after is not None else {}
