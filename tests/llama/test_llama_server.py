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
    pytest.mark.timeout(600),  # a real model on a small CPU: several calls of up to 120 s each
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
        assert chunks[-1].finish_reason in ("stop", "length")
        # llama-cpp-python's server (seen with 0.3.x) ignores stream_options.include_usage and sends no usage
        # chunk; when a server does send one, it must be right. The router counts the tokens otherwise (below).
        if chunks[-1].usage is not None:
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
        assert routed.result.usage.output_tokens > 0  # reported by the server, or counted by the router
        assert routed.result.cost == 0


async def test_routed_completion_is_costed_from_usage() -> None:
    async with Router(_policy()) as router:
        result = await router.aroute_and_execute("Name a colour.", max_tokens=8, timeout_s=120)
        assert result.generated_response
        assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0  # the server's own counts
        assert result.cost == 0  # the policy prices this local model at 0
        assert [a.outcome for a in result.attempts] == ["ok"]


async def test_abandoned_stream_leaves_the_provider_usable() -> None:
    from llm_router_openai import OpenAICompatibleProvider

    provider = make_provider(OpenAICompatibleProvider, {"base_url": URL}, name="local")
    try:
        stream = provider.stream(request_for(MODEL, max_tokens=64, timeout_s=120))
        async for chunk in stream:
            if chunk.text:
                break
        await stream.aclose()  # type: ignore[attr-defined]
        response = await provider.complete(request_for(MODEL, max_tokens=4, timeout_s=120))
        assert response.text
    finally:
        await provider.aclose()


async def test_too_long_a_prompt_is_a_typed_error() -> None:
    from llm_router.errors import BadRequestError, ProviderError
    from llm_router_openai import OpenAICompatibleProvider

    provider = make_provider(OpenAICompatibleProvider, {"base_url": URL}, name="local")
    try:
        with pytest.raises(ProviderError) as info:
            await provider.complete(request_for(MODEL, text="word " * 40_000, max_tokens=4, timeout_s=120))
        assert isinstance(info.value, BadRequestError), info.value  # context length (a kind of bad request)
        assert info.value.provider == "local"
    finally:
        await provider.aclose()
