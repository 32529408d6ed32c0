"""The online learner on ``state: {backend: redis}``: two routers on one real Redis learn from every rating
once, whichever of them decided the request or heard its feedback."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
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


@contextlib.asynccontextmanager
async def routers(tmp_path: Path, url: str, ttl: float = 3600) -> AsyncIterator[tuple[Router, Router]]:
    """Two routers of one policy on one Redis, warmed up (their state connected), closed at the end."""
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY % {"url": url, "ttl": ttl}, encoding="utf-8")
    a, b = Router(path), Router(path)
    await a.awarm_up()
    await b.awarm_up()
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()


def test_two_routers_learn_every_rating_once(tmp_path: Path, redis: RedisServer) -> None:
    async def scenario() -> None:
        async with routers(tmp_path, redis.url) as (a, b):
            la, lb = learner(a), learner(b)
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

    asyncio.run(scenario())


def test_expired_and_unknown_request_ids_are_told_apart(tmp_path: Path, redis: RedisServer) -> None:
    async def scenario() -> None:
        async with routers(tmp_path, redis.url, ttl=0.3) as (a, b):
            d = await a.aroute("hello there")
            await until(lambda: not a.state.link.pending, "a's parked decision to reach Redis")
            await asyncio.sleep(0.6)
            with pytest.raises(FeedbackError, match="has expired"):
                await b.afeedback({"request_id": d.request_id, "rating": 0.5})
            with pytest.raises(FeedbackError, match="is unknown"):
                await b.afeedback({"request_id": "nope", "rating": 0.5})

    asyncio.run(scenario())


def test_a_bad_log_entry_is_named_in_a_warning_and_never_blocks_the_log(
    tmp_path: Path, redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    import redis as redis_py

    async def scenario() -> None:
        async with routers(tmp_path, redis.url) as (a, b):
            la, lb = learner(a), learner(b)
            plain = redis_py.Redis.from_url(redis.url)
            phi = np.zeros(3).tobytes()  # another dimension than the arms', written by a foreign instance
            bad = [
                {"op": "load", "phi": json.dumps({"key": "no-such-snapshot", "dim": 2, "features": []}),
                 "model": "", "r": "0", "dim": "0", "ridge": "1"},
                {"op": "load", "phi": "not json", "model": "", "r": "0", "dim": "0", "ridge": "1"},
                {"op": "obs", "model": "small", "phi": base64.b64encode(phi).decode(), "r": "x", "dim": "3",
                 "ridge": "1"},
                {"op": "what", "model": "", "phi": "", "r": "0", "dim": "0", "ridge": "1"},
            ]  # fmt: skip
            d = await a.aroute("hello after the bad entries")
            await until(lambda: not a.state.link.pending, "a's parked decision to reach Redis")
            for fields in bad:
                plain.xadd(la.store.log_key, fields)
            await b.afeedback({"request_id": d.request_id, "rating": 0.8})
            model = d.selected.id
            for one in (la, lb):  # the rating after the bad entries reaches both instances
                await until(lambda one=one: (arm := one.store.arm(model)) is not None and arm.n == 1, "the rating")
            skipped = [r.getMessage() for r in caplog.records if "not applied" in r.getMessage()]
            assert len(skipped) == 2 * len(bad), skipped  # each instance names each bad entry once
            assert any("op 'what'" in m and "unknown op" in m for m in skipped)
            assert any("no-such-snapshot is gone" in m for m in skipped)

    with caplog.at_level(logging.WARNING, logger="llm_router_learned.online_redis"):
        asyncio.run(scenario())
