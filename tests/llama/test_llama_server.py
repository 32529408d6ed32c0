"""A real llama.cpp server behind the openai_compatible provider (`nox -s llama` starts it)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from llm_router import Router
from llm_router.testing import make_provider, request_for

URL = os.environ.get("LLM_ROUTER_LLAMA_URL")
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not URL, reason="set LLM_ROUTER_LLAMA_URL (nox -s llama)"),
]
MODEL = "gemma-3-270m"


def _policy() -> dict[str, Any]:
    return {
        "providers": {
            "local": {
                "type": "openai_compatible",
                "base_url": URL,
                "models": [{"model": MODEL, "context_window": 32768}],
            }
        },
        "classify": [{"rules": {"threshold": 0.0}}],
        "routes": [{"models": [f"local/{MODEL}"]}],
        "fallback": {"retries": 0},
    }


async def test_complete_and_stream_with_usage() -> None:
    from llm_router_openai import OpenAICompatibleProvider

    provider = make_provider(OpenAICompatibleProvider, {"base_url": URL}, name="local")
    try:
        response = await provider.complete(request_for(MODEL, max_tokens=16, timeout_s=120))
        assert response.text
        assert response.usage is not None
        assert response.usage.output_tokens > 0
        chunks = [c async for c in provider.stream(request_for(MODEL, max_tokens=16, timeout_s=120))]
        assert "".join(c.text for c in chunks)
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.output_tokens > 0
    finally:
        await provider.aclose()


async def test_routed_streaming_request() -> None:
    async with Router(_policy()) as router:
        routed = await router.astream("Say hello in three words.", max_tokens=16, timeout_s=120)
        text = "".join([c.text async for c in routed])
        assert text
        assert routed.result is not None
        assert routed.result.selected_model.id == f"local/{MODEL}"
        assert routed.result.cost == 0
