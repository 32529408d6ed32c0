"""Gateway tests: the app on uvicorn in a thread, driven by the official OpenAI SDK and raw HTTP, with the
test plugin's scripted provider as the upstream."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the gateway extra is not installed (pip install 'llm-router[gateway]')")
pytest.importorskip("openai")
pytest.importorskip("llm_router_test_plugin")

from _gateway_helpers import ALICE, Server, policy_text, server_factory
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
    yield from server_factory(tmp_path, lambda extra, _: write_policy(policy_text(extra)))


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    return make_server()
