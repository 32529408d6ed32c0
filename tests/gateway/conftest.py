"""Gateway tests: the app on uvicorn in a thread, driven by the official OpenAI SDK and raw HTTP, with the
test plugin's scripted provider as the upstream."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the gateway extra is not installed (pip install 'llm-router[gateway]')")
pytest.importorskip("openai")
pytest.importorskip("llm_router_test_plugin")

from _gateway_helpers import ALICE, Server, policy_text
from llm_router import Router
from llm_router.gateway import create_app
from llm_router_test_plugin import plugin as tp


@pytest.fixture(autouse=True)
def _reset_test_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALICE_KEY", ALICE)
    tp.SCRIPTS.clear()
    tp.CALLS.clear()
    tp.EVENTS.clear()
    tp.CANCELLED.clear()


@pytest.fixture
def make_server(tmp_path: Path, write_policy: Callable[[str], Path]) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def make(extra: str = "") -> Server:
        router = Router(write_policy(policy_text(extra)))
        server = Server(create_app(router, ledger_path=tmp_path / f"ledger{len(servers)}.sqlite3")).start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        if s.thread.is_alive():
            s.stop()


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    return make_server()
