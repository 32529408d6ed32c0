"""End to end: a built-in google/* model routed through the google plugin (google-genai) to the fake Gemini API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fakes import FakeGemini
from llm_router import Router

pytest.importorskip("llm_router_google")

pytestmark = pytest.mark.anyio
KEY = "gemini-e2e-secret-key-0000"
MODEL = "google/gemini-2.5-flash-lite"  # no retirement date known: stays routable


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as f:
        yield f


@pytest.fixture
def router(fake: FakeGemini) -> Iterator[Router]:
    fake.reset()
    policy: dict[str, Any] = {
        "providers": {"google": {"type": "google", "base_url": fake.base_url, "api_key": KEY}},
        "classify": [{"rules": {"threshold": 0.0}}],
        "routes": [{"models": [MODEL]}],
        "fallback": {"retries": 1, "backoff_ms": 1},
    }
    with Router(policy) as r:
        yield r


async def test_complete_stream_and_retry_after_a_rate_limit(router: Router, fake: FakeGemini) -> None:
    fake.queue_text("Bonjour", usage=(100, 10))
    result = await router.aroute_and_execute("Translate 'hello' into French")
    assert result.selected_model.id == MODEL
    assert result.response.text == "Bonjour"
    info = router.catalogue.get(MODEL)
    assert info is not None
    assert result.cost == pytest.approx((100 * info.price.input_per_mtok + 10 * info.price.output_per_mtok) / 1e6)
    assert fake.last.path.endswith("/models/gemini-2.5-flash-lite:generateContent")

    fake.queue_error("rate_limit", retry_after=0.01)
    fake.queue_text("second try")
    result = await router.aroute_and_execute("hello")
    assert result.response.text == "second try"
    assert [a.outcome for a in result.attempts] == ["error", "ok"]
    assert result.attempts[0].error_kind == "rate_limit"

    fake.queue_text("one two three", usage=(20, 3))
    routed = await router.astream("hello")
    text = "".join([chunk.text async for chunk in routed])
    assert text == "one two three"
    assert routed.result is not None
    assert (routed.result.usage.input_tokens, routed.result.usage.output_tokens) == (20, 3)
