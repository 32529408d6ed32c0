from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakes import FakeGemini
from fakes.gemini_api import GeminiRecorded
from llm_router.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilteredError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from llm_router.testing import ProviderConformance, collect, make_provider, request_for
from llm_router.types import CompletionRequest, Message
from llm_router_google import GoogleProvider
from llm_router_google.provider import retry_delay, to_contents

pytestmark = pytest.mark.anyio

# every transport the plugin offers: the Gemini API and Vertex AI (express mode: an API key), each over the
# SDK's aiohttp and httpx clients
TRANSPORTS = {
    "gemini-aiohttp": {"http_client": "aiohttp"},
    "gemini-httpx": {"http_client": "httpx"},
    "vertex-aiohttp": {"http_client": "aiohttp", "vertexai": True},
    "vertex-httpx": {"http_client": "httpx", "vertexai": True},
}


@pytest.fixture(autouse=True)
def _no_ambient_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for env in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION"):
        monkeypatch.delenv(env, raising=False)


@pytest.fixture
def model_id() -> str:
    return "gemini-2.5-flash"


@pytest.fixture(params=sorted(TRANSPORTS))
def transport(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(TRANSPORTS[request.param])


@pytest.fixture
def provider_params(upstream: FakeGemini, api_key: str, transport: dict[str, Any]) -> dict[str, Any]:
    return {"base_url": upstream.base_url, "api_key": api_key, **transport}


class TestGoogleConformance(ProviderConformance):
    provider_type = GoogleProvider
    key_env = "GEMINI_API_KEY"


@pytest.fixture
async def gemini(upstream: FakeGemini, api_key: str, transport: dict[str, Any]) -> AsyncIterator[GoogleProvider]:
    p = make_provider(GoogleProvider, {"base_url": upstream.base_url, "api_key": api_key, **transport}, name="google")
    assert isinstance(p, GoogleProvider)
    yield p
    await p.aclose()


TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def pick(obj: dict[str, Any], camel: str) -> Any:
    """A field by its JSON name or its proto name: the API accepts both, and the SDK sends nested objects it
    passes through (a thinking config, a declaration's JSON Schema) under their proto (snake_case) names."""
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    return obj[camel] if camel in obj else obj[snake]


def _sent(upstream: FakeGemini) -> GeminiRecorded:
    sent = upstream.last
    assert isinstance(sent, GeminiRecorded)
    return sent


async def test_wire_request(
    gemini: GoogleProvider, upstream: FakeGemini, api_key: str, transport: dict[str, Any]
) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    await gemini.complete(
        request_for(
            "gemini-2.5-flash",
            max_tokens=40,
            temperature=0.1,
            stop=("END",),
            response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
            tools=(TOOL,),
            tool_choice="required",
        )
    )
    sent = _sent(upstream)
    assert sent.headers["x-goog-api-key"] == api_key
    assert (sent.model, sent.rpc, sent.stream) == ("gemini-2.5-flash", "generateContent", False)
    assert sent.path.endswith(
        "/publishers/google/models/gemini-2.5-flash:generateContent"
        if transport.get("vertexai")
        else "/models/gemini-2.5-flash:generateContent"
    )
    body = sent.json
    assert "model" not in body
    assert body["systemInstruction"]["parts"] == [{"text": "You are terse."}]
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Say hello."}]}]
    generation = body["generationConfig"]
    assert generation["maxOutputTokens"] == 40
    assert generation["temperature"] == 0.1
    assert generation["stopSequences"] == ["END"]
    assert generation["responseMimeType"] == "application/json"
    assert generation["responseJsonSchema"] == schema
    declaration = body["tools"][0]["functionDeclarations"][0]
    assert declaration["name"] == "get_weather"
    assert pick(declaration, "parametersJsonSchema") == TOOL["function"]["parameters"]  # type: ignore[index]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}


async def test_native_options(upstream: FakeGemini, api_key: str) -> None:
    params = {
        "base_url": upstream.base_url,
        "api_key": api_key,
        "thinking_budget": 0,
        "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
        "cached_content": "cachedContents/abc123",
    }
    p = make_provider(GoogleProvider, params, name="google")
    try:
        await p.complete(request_for("gemini-2.5-flash"))
    finally:
        await p.aclose()
    body = upstream.last.json
    assert pick(body["generationConfig"]["thinkingConfig"], "thinkingBudget") == 0
    assert body["safetySettings"] == [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
    assert body["cachedContent"] == "cachedContents/abc123"


async def test_tool_calls_complete_and_stream(gemini: GoogleProvider, upstream: FakeGemini) -> None:
    call = {"id": "ignored", "name": "get_weather", "arguments": '{"city": "Oslo"}'}
    upstream.queue_text("", tool_calls=[call])
    response = await gemini.complete(request_for("gemini-2.5-flash", tools=(TOOL,)))
    assert response.finish_reason == "tool_calls"
    assert response.tool_calls[0].name == "get_weather"
    assert json.loads(response.tool_calls[0].arguments) == {"city": "Oslo"}
    assert response.tool_calls[0].id
    upstream.queue_text("", tool_calls=[call])
    chunks = await collect(gemini.stream(request_for("gemini-2.5-flash", tools=(TOOL,))))
    calls = [t for c in chunks for t in c.tool_calls]
    assert calls[0]["function"]["name"] == "get_weather"
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Oslo"}
    assert chunks[-1].finish_reason == "tool_calls"


async def test_tool_results_go_back_as_function_responses(gemini: GoogleProvider, upstream: FakeGemini) -> None:
    messages = (
        Message(role="user", content="Weather in Oslo?"),
        Message(
            role="assistant",
            content=None,
            tool_calls=[
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}
            ],
        ),
        Message(role="tool", tool_call_id="c1", content='{"temp_c": 3}'),
    )
    await gemini.complete(CompletionRequest(model="gemini-2.5-flash", messages=messages, tools=(TOOL,)))
    contents = upstream.last.json["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 3}}}],
    }


async def test_thought_signatures_go_back_with_their_calls(gemini: GoogleProvider, upstream: FakeGemini) -> None:
    model = "gemini-3-flash-preview"
    upstream.queue_text("", tool_calls=[{"id": "", "name": "get_weather", "arguments": '{"city": "Oslo"}'}])
    first = await gemini.complete(request_for(model, tools=(TOOL,)))
    returned = first.raw["candidates"][0]["content"]["parts"][0]["thoughtSignature"]  # type: ignore[index]
    call = first.tool_calls[0]
    messages = (
        Message(role="user", content="Weather in Oslo?"),
        Message(
            role="assistant",
            tool_calls=[
                {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            ],
        ),
        Message(role="tool", tool_call_id=call.id, content='{"temp_c": 3}'),
    )
    await gemini.complete(CompletionRequest(model=model, messages=messages, tools=(TOOL,)))
    sent = upstream.last.json["contents"][1]["parts"][0]
    assert pick(sent, "thoughtSignature") == returned
    upstream.queue_text("", tool_calls=[{"id": "", "name": "get_weather", "arguments": "{}"}])
    chunks = await collect(gemini.stream(request_for(model, tools=(TOOL,))))
    streamed = next(t for c in chunks for t in c.tool_calls)
    assert streamed["id"] in gemini.signatures()
    unknown = to_contents((Message(role="assistant", tool_calls=[{"id": "other", "function": {"name": "f"}}]),), {})
    assert "thought_signature" not in unknown[0]["parts"][0]


def test_contents_mapping() -> None:
    contents = to_contents(
        (
            Message(role="system", content="sys"),
            Message(
                role="user",
                content=[
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            ),
            Message(role="assistant", content="ok"),
            Message(role="tool", tool_call_id="unknown", name="lookup", content="plain text"),
        )
    )
    assert contents[0] == {
        "role": "user",
        "parts": [{"text": "look"}, {"inline_data": {"mime_type": "image/png", "data": "AAAA"}}],
    }
    assert contents[1] == {"role": "model", "parts": [{"text": "ok"}]}
    assert contents[2]["parts"][0]["function_response"] == {"name": "lookup", "response": {"result": "plain text"}}


async def test_stream_wire_and_final_usage(gemini: GoogleProvider, upstream: FakeGemini) -> None:
    upstream.queue_text("alpha beta gamma", usage=(30, 3))
    chunks = await collect(gemini.stream(request_for("gemini-2.5-flash")))
    sent = _sent(upstream)
    assert (sent.rpc, sent.stream) == ("streamGenerateContent", True)
    assert [c.text for c in chunks if c.text] == ["alpha", " beta", " gamma"]
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1, "usage is reported once, on the last chunk"
    assert (chunks[-1].usage.input_tokens, chunks[-1].usage.output_tokens) == (30, 3)  # type: ignore[union-attr]
    assert chunks[-1].finish_reason == "stop"
    assert all(c.request_id == chunks[0].request_id for c in chunks)


async def test_gemini_error_shapes(gemini: GoogleProvider, upstream: FakeGemini, api_key: str) -> None:
    upstream.queue_error("rate_limit", retry_after=34.4)
    with pytest.raises(RateLimitError) as rate:
        await gemini.complete(request_for("gemini-2.5-flash"))
    assert rate.value.retry_after_s == pytest.approx(34.4)
    assert "RESOURCE_EXHAUSTED" in str(rate.value)
    upstream.queue_error("rate_limit")
    with pytest.raises(RateLimitError) as rate:
        await gemini.complete(request_for("gemini-2.5-flash"))
    assert rate.value.retry_after_s is None
    upstream.queue_error("unauthenticated")
    with pytest.raises(AuthenticationError) as auth:
        await gemini.complete(request_for("gemini-2.5-flash"))
    assert auth.value.status_code == 401
    assert "GEMINI_API_KEY" in str(auth.value)
    upstream.queue_error("permission")
    with pytest.raises(PermissionDeniedError):
        await gemini.complete(request_for("gemini-2.5-flash"))
    upstream.queue_error("bad_request")
    with pytest.raises(BadRequestError) as bad:
        await gemini.complete(request_for("gemini-2.5-flash"))
    assert not bad.value.retryable
    upstream.queue_error("overloaded")
    with pytest.raises(ServerError) as overloaded:
        await gemini.complete(request_for("gemini-2.5-flash"))
    assert overloaded.value.status_code == 503
    assert overloaded.value.retryable


async def test_safety_blocks(gemini: GoogleProvider, upstream: FakeGemini) -> None:
    upstream.queue_blocked()
    with pytest.raises(ContentFilteredError) as blocked:
        await gemini.complete(request_for("gemini-2.5-flash"))
    assert "SAFETY" in str(blocked.value)
    upstream.queue_blocked()
    with pytest.raises(ContentFilteredError):
        await collect(gemini.stream(request_for("gemini-2.5-flash")))
    upstream.queue_text("partial", finish_reason="SAFETY")
    response = await gemini.complete(request_for("gemini-2.5-flash"))
    assert response.finish_reason == "content_filter"


async def test_embeddings(gemini: GoogleProvider, upstream: FakeGemini) -> None:
    vectors = await gemini.embed(["a", "bcd"], "gemini-embedding-001")
    assert len(vectors) == 2
    assert vectors[0] != vectors[1]
    sent = _sent(upstream)
    assert sent.rpc in ("batchEmbedContents", "embedContent")
    assert [r["content"]["parts"][0]["text"] for r in sent.json["requests"]] == ["a", "bcd"]


def test_retry_delay_reads_protobuf_durations() -> None:
    info = "type.googleapis.com/google.rpc.RetryInfo"
    assert retry_delay([{"@type": info, "retryDelay": "45.837906927s"}]) == pytest.approx(45.837906927)
    assert retry_delay([{"@type": info, "retryDelay": "7s"}]) == 7
    assert retry_delay([{"@type": "type.googleapis.com/google.rpc.Help"}]) is None
    assert retry_delay(None) is None


def test_key_from_either_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    p = make_provider(GoogleProvider, {}, name="google")
    reason = p.unavailable_reason()
    assert reason is not None
    assert "GEMINI_API_KEY" in reason
    assert "GOOGLE_API_KEY" in reason
    monkeypatch.setenv("GOOGLE_API_KEY", "g-key")
    assert p.api_key() == "g-key"
    monkeypatch.setenv("GEMINI_API_KEY", "m-key")
    assert p.api_key() == "g-key", "GOOGLE_API_KEY wins, as in the SDK"
    monkeypatch.delenv("GOOGLE_API_KEY")
    assert p.api_key() == "m-key"
    vertex = make_provider(GoogleProvider, {"vertexai": True, "project": "my-project"}, name="google")
    monkeypatch.delenv("GEMINI_API_KEY")
    assert vertex.unavailable_reason() is None
