"""Helpers of the gateway tests: the policy, and the gateway on uvicorn in a thread on a loopback port."""

from __future__ import annotations

import asyncio
import socket
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from llm_router.gateway.ledger import rows

ALICE, BOB, CAROL = "sk-test-alice", "sk-test-bob", "sk-test-carol"

POLICY = """
providers:
  a: {type: scripted, models: [small, large], price_in: 1, price_out: 2}
  b: {type: scripted, models: [only], price_in: 5, price_out: 5}
preferences: {cost: 1}
fallback: {retries: 0, backoff_ms: 1, max_backoff_ms: 5, max_models: 3, timeout_s: 10}
gateway:
  keys:
    - {id: alice, key: "${ALICE_KEY}"}
    - {id: bob, key_sha256: "%s", allowed_models: ["a/small"]}
    - {id: carol, key: "%s", budget_usd_per_day: 0.00002}
  aliases: {cheap: ["a/*"]}
%s
"""


def policy_text(extra: str = "") -> str:
    import hashlib

    return POLICY % (hashlib.sha256(BOB.encode()).hexdigest(), CAROL, textwrap.indent(extra, "  "))


async def until(predicate: Callable[[], object], what: str) -> None:
    """Wait on the running event loop until ``predicate()`` is true (an AssertionError naming ``what`` after
    10 seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10.0
    while loop.time() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    """Poll until ``predicate()`` is truthy (a generous timeout guards against hangs; no timing asserts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class Server:
    """The gateway on uvicorn in a thread, on a loopback port."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.gateway = app.state.gateway
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=10, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> Server:
        self.thread.start()
        wait_for(lambda: self.server.started, "the server to start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()

    def ledger(self) -> list[dict[str, Any]]:
        return list(rows(self.gateway.ledger.path))


def server_factory(
    tmp_path: Path, policy_for: Callable[[str, int], Path], server_cls: type[Server] = Server
) -> Iterator[Callable[..., Server]]:
    """A fixture body (``yield from``): ``make(extra)`` starts a gateway on the policy ``policy_for(extra, i)``
    (``i`` counts the servers made), each with its own ledger in ``tmp_path``; all are stopped afterwards."""
    from llm_router import Router
    from llm_router.gateway import create_app

    servers: list[Server] = []

    def make(extra: str = "") -> Server:
        router = Router(policy_for(extra, len(servers)))
        server = server_cls(create_app(router, ledger_path=tmp_path / f"ledger{len(servers)}.sqlite3")).start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        if s.thread.is_alive():
            s.stop()
