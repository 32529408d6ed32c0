"""Cache tests: a real redis-server (Debian's), started on a free port in a temporary directory and killed after;
the test plugin's scripted provider as the upstream."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from services import redis_server

pytest.importorskip("llm_router_test_plugin")

from llm_router_test_plugin import plugin as tp


@pytest.fixture(autouse=True)
def _reset_test_plugin() -> None:
    tp.SCRIPTS.clear()
    tp.CALLS.clear()
    tp.EVENTS.clear()
    tp.CANCELLED.clear()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A redis-server of this machine on a free loopback port, without persistence (``services.redis_server``)."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: apt-get install -y redis-server (.ci/run does)")
    pytest.importorskip("redis")
    with redis_server() as server:
        yield server.url
