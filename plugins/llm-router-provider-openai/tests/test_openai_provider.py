from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fakes import FakeOpenAI
from llm_router.components import Provider
from llm_router.testing import ProviderConformance, make_provider, request_for
from llm_router.types import CompletionRequest, Message
from llm_router_openai import OpenAICompatibleProvider, OpenAIProvider

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def upstream(fake_openai: FakeOpenAI) -> FakeOpenAI:
    fake_openai.reset()
    return fake_openai


@pytest.fixture
def model_id() -> str:
    return "gpt-4o-mini"


class TestOpenAIConformance(ProviderConformance):
    """The provider contract over each transport: the SDK's aiohttp client (the default), its httpx client, and
    ``direct`` (the wire format over aiohttp, no SDK)."""

    key_env = "OPENAI_API_KEY"

    @pytest.fixture(params=["aiohttp", "httpx", "direct"])
    def http_client(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    def provider_class(self) -> type[Provider]:
        return OpenAIProvider

    @pytest.fixture
    def provider_params(self, upstream: FakeOpenAI, api_key: str, http_client: str) -> dict[str, Any]:
        return {"base_url": upstream.base_url, "api_key": api_key, "http_client": http_client}


class TestOpenAICompatibleConformance(ProviderConformance):
    key_env = "LOCAL_LLM_KEY"

    @pytest.fixture(params=["aiohttp", "direct"])
    def http_client(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    def provider_class(self) -> type[Provider]:
        return OpenAICompatibleProvider

    @pytest.fixture
    def provider_params(self, upstream: FakeOpenAI, api_key: str, http_client: str) -> dict[str, Any]:
        return {
            "base_url": upstream.base_url,
            "api_key": api_key,
            "api_key_env": "LOCAL_LLM_KEY",
            "http_client": http_client,
        }


@pytest.fixture
async def openai_provider(upstream: FakeOpenAI, api_key: str) -> Any:
    p = make_provider(
        OpenAIProvider,
        {
            "base_url": upstream.base_url,
            "api_key": api_key,
            "headers": {"x-team": "router"},
            "organization": "org-1",
        },
        name="openai",
    )
    yield p
    await p.aclose()


async def test_parameters_reach_the_wire(openai_provider: OpenAIProvider, upstream: FakeOpenAI) -> None:
    req = request_for(
        "gpt-4o-mini", max_tokens=33, temperature=0.5, stop=("END",), response_format={"type": "json_object"}
    )
    await openai_provider.complete(req)
    sent = upstream.last
    assert sent.path == "/v1/chat/completions"
    body = sent.json
    assert body["max_tokens"] == 33
    assert body["temperature"] == 0.5
    assert body["stop"] == ["END"]
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}
    assert sent.headers["x-team"] == "router"
    assert sent.headers["openai-organization"] == "org-1"
    assert sent.headers["x-stainless-retry-count"] == "0"


async def test_stream_asks_for_usage(openai_provider: OpenAIProvider, upstream: FakeOpenAI) -> None:
    chunks = [c async for c in openai_provider.stream(request_for("gpt-4o-mini"))]
    assert upstream.last.json["stream_options"] == {"include_usage": True}
    assert chunks[-1].usage is not None
    assert chunks[-1].request_id


TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


async def test_tools_pass_through(openai_provider: OpenAIProvider, upstream: FakeOpenAI) -> None:
    upstream.queue_text("", tool_calls=[{"id": "call_1", "name": "get_weather", "arguments": '{"city": "Oslo"}'}])
    messages = (
        Message(role="user", content="weather?"),
        Message(
            role="assistant",
            tool_calls=[{"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}],
        ),
        Message(role="tool", tool_call_id="call_0", content="sunny"),
    )
    response = await openai_provider.complete(
        CompletionRequest(model="gpt-4o-mini", messages=messages, tools=(TOOL,), tool_choice="auto")
    )
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls[0].name == "get_weather"
    assert json.loads(response.tool_calls[0].arguments) == {"city": "Oslo"}
    body = upstream.last.json
    assert body["tools"] == [TOOL]
    assert body["tool_choice"] == "auto"
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "call_0", "content": "sunny"}


async def test_streamed_tool_calls(openai_provider: OpenAIProvider, upstream: FakeOpenAI) -> None:
    upstream.queue_text("", tool_calls=[{"id": "call_1", "name": "get_weather", "arguments": '{"city":"Oslo"}'}])
    chunks = [c async for c in openai_provider.stream(request_for("gpt-4o-mini", tools=(TOOL,)))]
    calls = [t for c in chunks for t in c.tool_calls]
    assert calls[0]["function"]["name"] == "get_weather"
    assert "".join(t["function"].get("arguments", "") for t in calls) == '{"city":"Oslo"}'


async def test_embeddings(openai_provider: OpenAIProvider, upstream: FakeOpenAI) -> None:
    vectors = await openai_provider.embed(["a", "bcd"], "text-embedding-3-small")
    assert len(vectors) == 2
    assert vectors[0] != vectors[1]
    assert len(vectors[0]) == 4
    assert upstream.last.path == "/v1/embeddings"
    assert upstream.last.json["input"] == ["a", "bcd"]


def test_compatible_host_contributes_models() -> None:
    p = make_provider(
        OpenAICompatibleProvider,
        {
            "base_url": "http://127.0.0.1:1/v1",
            "models": [
                {
                    "model": "gemma-3-270m",
                    "context_window": 32768,
                    "price": {"input_per_mtok": 0.01, "output_per_mtok": 0.02},
                }
            ],
        },
        name="local",
    )
    (info,) = p.models()
    assert info.id == "local/gemma-3-270m"
    assert info.context_window == 32768
    assert info.price.output_per_mtok == 0.02
    assert p.unavailable_reason() is None  # local hosts need no key


def test_compatible_requires_base_url() -> None:
    with pytest.raises(ValueError, match="base_url"):
        make_provider(OpenAICompatibleProvider, {})


def test_key_falls_back_to_the_sdk_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    p = make_provider(OpenAIProvider, {}, name="openai")
    assert p.unavailable_reason() == "set OPENAI_API_KEY (or providers.openai.api_key in the policy)"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    assert p.unavailable_reason() is None
