from __future__ import annotations

import json
from typing import Any

import pytest
from fakes import FakeCohere
from llm_router.testing import ProviderConformance, make_provider, request_for, serve_upstream
from llm_router_cohere import CohereProvider

pytestmark = pytest.mark.anyio


fake_cohere, upstream = serve_upstream(FakeCohere, "fake_cohere")


@pytest.fixture
def model_id() -> str:
    return "command-r"


class TestCohereConformance(ProviderConformance):
    provider_type = CohereProvider
    key_env = "CO_API_KEY"


@pytest.fixture
async def cohere_provider(upstream: FakeCohere, api_key: str) -> Any:
    p = make_provider(CohereProvider, {"base_url": upstream.base_url, "api_key": api_key}, name="cohere")
    yield p
    await p.aclose()


TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


async def test_parameters_reach_the_wire(cohere_provider: CohereProvider, upstream: FakeCohere, api_key: str) -> None:
    await cohere_provider.complete(
        request_for(
            "command-r",
            max_tokens=40,
            temperature=0.1,
            stop=("END",),
            response_format={"type": "json_object"},
            tools=(TOOL,),
            tool_choice="required",
        )
    )
    sent = upstream.last
    assert sent.path == "/v2/chat"
    assert sent.headers["authorization"] == f"Bearer {api_key}"
    body = sent.json
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}
    assert body["max_tokens"] == 40
    assert body["temperature"] == 0.1
    assert body["stop_sequences"] == ["END"]
    assert body["response_format"] == {"type": "json_object"}
    assert body["tools"] == [TOOL]
    assert body["tool_choice"] == "REQUIRED"


async def test_tool_calls(cohere_provider: CohereProvider, upstream: FakeCohere) -> None:
    upstream.queue_text("", tool_calls=[{"id": "c1", "name": "get_weather", "arguments": '{"city": "Oslo"}'}])
    response = await cohere_provider.complete(request_for("command-r", tools=(TOOL,)))
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls[0].name == "get_weather"
    assert json.loads(response.tool_calls[0].arguments) == {"city": "Oslo"}
    upstream.queue_text("", tool_calls=[{"id": "c1", "name": "get_weather", "arguments": '{"city": "Oslo"}'}])
    chunks = [c async for c in cohere_provider.stream(request_for("command-r", tools=(TOOL,)))]
    calls = [t for c in chunks for t in c.tool_calls]
    assert calls[0]["function"]["name"] == "get_weather"
    assert chunks[-1].finish_reason == "tool_calls"


async def test_embeddings(cohere_provider: CohereProvider, upstream: FakeCohere) -> None:
    vectors = await cohere_provider.embed(["a", "bcd"], "embed-v4.0")
    assert len(vectors) == 2
    assert vectors[0] != vectors[1]
    assert upstream.last.path == "/v2/embed"
    assert upstream.last.json["texts"] == ["a", "bcd"]
    assert upstream.last.json["embedding_types"] == ["float"]
