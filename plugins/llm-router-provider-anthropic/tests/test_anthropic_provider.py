from __future__ import annotations

import json
from typing import Any

import pytest
from fakes import FakeAnthropic
from llm_router.components import Provider
from llm_router.errors import ServerError
from llm_router.testing import ProviderConformance, make_provider, request_for
from llm_router.types import CompletionRequest, Message
from llm_router_anthropic import AnthropicProvider

pytestmark = pytest.mark.anyio


@pytest.fixture
def model_id() -> str:
    return "claude-haiku-4-5"


class TestAnthropicConformance(ProviderConformance):
    """The contract with the default HTTP client (aiohttp)."""

    key_env = "ANTHROPIC_API_KEY"

    @pytest.fixture
    def provider_class(self) -> type[Provider]:
        return AnthropicProvider


class TestAnthropicConformanceOverHttpx(ProviderConformance):
    """The same contract with the SDK's httpx client (``http_client: httpx``)."""

    key_env = "ANTHROPIC_API_KEY"

    @pytest.fixture
    def provider_class(self) -> type[Provider]:
        return AnthropicProvider

    @pytest.fixture
    def provider_params(self, upstream: FakeAnthropic, api_key: str) -> dict[str, Any]:
        return {"base_url": upstream.base_url, "api_key": api_key, "http_client": "httpx"}


@pytest.fixture
async def anthropic_provider(upstream: FakeAnthropic, api_key: str, http_client: str) -> Any:
    p = make_provider(
        AnthropicProvider,
        {"base_url": upstream.base_url, "api_key": api_key, "http_client": http_client},
        name="anthropic",
    )
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


async def test_translation_to_the_messages_api(
    anthropic_provider: AnthropicProvider, upstream: FakeAnthropic, api_key: str
) -> None:
    messages = (
        Message(role="system", content="Be brief."),
        Message(role="user", content="weather in Oslo?"),
        Message(
            role="assistant",
            content="Checking.",
            tool_calls=[
                {
                    "id": "toolu_0",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        ),
        Message(role="tool", tool_call_id="toolu_0", content="sunny"),
    )
    await anthropic_provider.complete(
        CompletionRequest(
            model="claude-haiku-4-5",
            messages=messages,
            temperature=0.3,
            stop=("END",),
            tools=(TOOL,),
            tool_choice="required",
            max_tokens=100,
        )
    )
    sent = upstream.last
    assert sent.path == "/v1/messages"
    # the SDK sends the key as x-api-key or, in recent versions, as a bearer token
    assert api_key in (
        sent.headers.get("x-api-key"),
        sent.headers.get("authorization", "").removeprefix("Bearer "),
    )
    assert "anthropic-version" in sent.headers
    body = sent.json
    assert body["system"] == "Be brief."
    assert body["max_tokens"] == 100
    assert body["temperature"] == 0.3
    assert body["stop_sequences"] == ["END"]
    assert body["tools"] == [
        {"name": "get_weather", "description": "weather", "input_schema": TOOL["function"]["parameters"]}
    ]
    assert body["tool_choice"] == {"type": "any"}
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"][1] == {
        "type": "tool_use",
        "id": "toolu_0",
        "name": "get_weather",
        "input": {"city": "Oslo"},
    }
    assert body["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_0", "content": "sunny"}]


async def test_max_tokens_defaults_from_the_catalogue(
    anthropic_provider: AnthropicProvider, upstream: FakeAnthropic
) -> None:
    await anthropic_provider.complete(request_for("claude-3-5-haiku"))
    assert upstream.last.json["max_tokens"] == 8192
    await anthropic_provider.complete(request_for("claude-unknown-model"))
    assert upstream.last.json["max_tokens"] == 4096


async def test_tool_use_becomes_tool_calls(anthropic_provider: AnthropicProvider, upstream: FakeAnthropic) -> None:
    upstream.queue_text(
        "Let me check.",
        tool_calls=[{"id": "toolu_1", "name": "get_weather", "arguments": '{"city": "Oslo"}'}],
    )
    response = await anthropic_provider.complete(request_for("claude-haiku-4-5", tools=(TOOL,)))
    assert response.finish_reason == "tool_calls"
    assert response.text == "Let me check."
    assert response.tool_calls[0].id == "toolu_1"
    assert json.loads(response.tool_calls[0].arguments) == {"city": "Oslo"}


async def test_streamed_tool_use(anthropic_provider: AnthropicProvider, upstream: FakeAnthropic) -> None:
    upstream.queue_text("", tool_calls=[{"id": "toolu_1", "name": "get_weather", "arguments": '{"city": "Oslo"}'}])
    chunks = [c async for c in anthropic_provider.stream(request_for("claude-haiku-4-5", tools=(TOOL,)))]
    calls = [t for c in chunks for t in c.tool_calls]
    assert calls[0]["function"]["name"] == "get_weather"
    assert calls[0]["id"] == "toolu_1"
    assert json.loads("".join(t["function"]["arguments"] for t in calls)) == {"city": "Oslo"}
    assert chunks[-1].finish_reason == "tool_calls"


async def test_json_mode_asks_in_the_system_prompt(
    anthropic_provider: AnthropicProvider, upstream: FakeAnthropic
) -> None:
    await anthropic_provider.complete(request_for("claude-haiku-4-5", response_format={"type": "json_object"}))
    assert "JSON" in upstream.last.json["system"]


async def test_overloaded_529_is_a_retryable_server_error(
    anthropic_provider: AnthropicProvider, upstream: FakeAnthropic
) -> None:
    upstream.queue_error("overloaded")
    with pytest.raises(ServerError) as info:
        await anthropic_provider.complete(request_for("claude-haiku-4-5"))
    assert info.value.status_code == 529
    assert info.value.retryable
    assert info.value.request_id
