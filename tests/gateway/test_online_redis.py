"""The online learner on ``state: {backend: redis}``: two routers on one real Redis learn from every rating
once, whichever of them decided the request or heard its feedback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _gateway_helpers import until
from llm_router import FeedbackError, Router
from services import RedisServer, redis_server

pytest.importorskip("redis", reason="the redis extra is not installed (pip install 'llm-router[redis]')")
pytest.importorskip("llm_router_learned")
pytest.importorskip("llm_router_test_plugin")

POLICY = """
providers:
  a: {type: scripted, models: [small, large], price_in: 1, price_out: 2}
score:
  - online_quality: {explore: 0, ttl_s: %(ttl)s}
  - cost
preferences: {online_quality: 1}
state: {backend: redis, url: '%(url)s', refresh_ms: 20}
"""


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def learner(router: Router) -> Any:
    return next(s for name, s in router.scorers if name == "online_quality")


def routers(tmp_path: Path, url: str, ttl: float = 3600) -> tuple[Router, Router]:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY % {"url": url, "ttl": ttl}, encoding="utf-8")
    return Router(path), Router(path)


def test_two_routers_learn_every_rating_once(tmp_path: Path, redis: RedisServer) -> None:
    a, b = routers(tmp_path, redis.url)

    async def scenario() -> None:
        await a.awarm_up()
        await b.awarm_up()
        la, lb = learner(a), learner(b)
        try:
            decisions = [await a.aroute(f"hello number {i}") for i in range(3)]
            await until(lambda: not a.state.link.pending, "a's parked decisions to reach Redis")
            for d in decisions:  # rated through b: b never saw these decisions itself
                await b.afeedback({"request_id": d.request_id, "rating": 0.9})
            model = decisions[0].selected.id
            for one in (la, lb):
                await until(lambda one=one: (arm := one.store.arm(model)) is not None and arm.n == 3, "3 ratings")
            assert np.allclose(la.store.arm(model).A_inv, lb.store.arm(model).A_inv)
            assert np.allclose(la.store.arm(model).b, lb.store.arm(model).b)
            with pytest.raises(FeedbackError, match="rated already"):
                await a.afeedback({"request_id": decisions[0].request_id, "rating": 0.1})
            with pytest.raises(FeedbackError, match="is unknown"):
                await a.afeedback({"request_id": "never-decided", "rating": 0.1})
            # an export imported on one instance is every instance's state; a reset empties both
            la.export(tmp_path / "arms.npz")
            lb.reset()
            for one in (la, lb):
                await until(lambda one=one: one.store.arm(model) is None, "the reset")
            assert la.import_file(tmp_path / "arms.npz") == 1
            await until(lambda: (arm := lb.store.arm(model)) is not None and arm.n == 3, "b to load the export")
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(scenario())


def test_expired_and_unknown_request_ids_are_told_apart(tmp_path: Path, redis: RedisServer) -> None:
    a, b = routers(tmp_path, redis.url, ttl=0.3)

    async def scenario() -> None:
        await a.awarm_up()
        await b.awarm_up()
        try:
            d = await a.aroute("hello there")
            await until(lambda: not a.state.link.pending, "a's parked decision to reach Redis")
            await asyncio.sleep(0.6)
            with pytest.raises(FeedbackError, match="has expired"):
                await b.afeedback({"request_id": d.request_id, "rating": 0.5})
            with pytest.raises(FeedbackError, match="is unknown"):
                await b.afeedback({"request_id": "nope", "rating": 0.5})
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(scenario())
