"""``http_client: direct``: the plugin's own HTTP client for chat completions, against the same fake upstream
as the SDK tests, and compared with the SDK path request by request (bodies, answers, errors, streams)."""

from __future__ import annotations

import json
import socket
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from fakes import FakeOpenAI
from llm_router.errors import (
    AuthenticationError,
    BadRequestError,
    ConnectionError,
    ContentFilteredError,
    ContextLengthExceededError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ServerError,
    TimeoutError,
)
from llm_router.testing import FAKE_KEY, make_provider, request_for
from llm_router.types import CompletionRequest, Message, StreamChunk
from llm_router_openai import OpenAICompatibleProvider, OpenAIProvider
from llm_router_openai.provider import DirectClient, OpenAICompatibleConfig, OpenAIConfig, SSEParser
from starlette.requests import Request
from starlette.responses import Response

pytestmark = pytest.mark.anyio

MODEL = "gpt-4o-mini"
TRANSPORTS = ("aiohttp", "direct")


@dataclass
class Raw:
    status: int
    body: bytes
    headers: dict[str, str]
    media_type: str
    events: list[bytes] | None = None
    delay_s: float = 0.0


class ScriptedOpenAI(FakeOpenAI):
    """The shared fake OpenAI API, plus answers it cannot script: any status and body (``queue_raw``), raw SSE
    events (``queue_events``); and the client port of every chat request (``peers``: one port, one
    connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: deque[Raw] = deque()
        self.peers: list[int] = []

    def queue_raw(
        self,
        status: int,
        body: bytes | dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
        media_type: str = "application/json",
    ) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        self.raw.append(Raw(status, data, {"x-request-id": "req_fixed", **(headers or {})}, media_type))

    def queue_events(self, events: list[bytes], delay_s: float = 0.0) -> None:
        self.raw.append(Raw(200, b"", {"x-request-id": "req_fixed"}, "text/event-stream", events, delay_s))

    def reset(self) -> None:
        super().reset()
        self.raw.clear()
        self.peers.clear()

    async def chat(self, request: Request) -> Response:
        self.peers.append(request.client.port if request.client else 0)
        if not self.raw:
            return await super().chat(request)
        await self.record(request)
        raw = self.raw.popleft()
        if raw.events is None:
            return Response(raw.body, status_code=raw.status, headers=raw.headers, media_type=raw.media_type)
        return self.event_stream(raw.events, raw.headers["x-request-id"], raw.delay_s)  # the shared fake's SSE


@pytest.fixture(scope="module")
def scripted_openai() -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI() as fake:
        yield fake


@pytest.fixture
def upstream(scripted_openai: ScriptedOpenAI) -> ScriptedOpenAI:
    scripted_openai.reset()
    return scripted_openai


@pytest.fixture
def model_id() -> str:
    return MODEL


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sse(data: Any) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n".encode()


def chunk_event(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


# -- helpers: one provider per transport ----------------------------------------------------------------


def make(upstream: ScriptedOpenAI, transport: str, **params: Any) -> OpenAIProvider:
    p = make_provider(
        OpenAIProvider,
        {"base_url": upstream.base_url, "api_key": FAKE_KEY, "http_client": transport, **params},
        name="openai",
    )
    assert isinstance(p, OpenAIProvider)
    return p


@pytest.fixture
async def sdk(upstream: ScriptedOpenAI) -> AsyncIterator[OpenAIProvider]:
    p = make(upstream, "aiohttp", organization="org-1", headers={"x-team": "router"})
    yield p
    await p.aclose()


@pytest.fixture
async def direct(upstream: ScriptedOpenAI) -> AsyncIterator[OpenAIProvider]:
    p = make(upstream, "direct", organization="org-1", headers={"x-team": "router"})
    yield p
    await p.aclose()


async def collect(stream: AsyncIterator[StreamChunk]) -> list[StreamChunk]:
    return [c async for c in stream]


async def read_into(stream: AsyncIterator[StreamChunk], received: list[StreamChunk]) -> None:
    """Read ``stream``, keeping the chunks that arrived before it failed."""
    async for chunk in stream:
        received.append(chunk)


def without_ids(chunks: list[StreamChunk]) -> list[dict[str, Any]]:
    return [c.model_dump(exclude={"request_id"}) for c in chunks]


TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}

REQUESTS = {
    "plain": request_for(MODEL),
    "parameters": request_for(
        MODEL, max_tokens=33, temperature=0.5, stop=("END",), response_format={"type": "json_object"}
    ),
    "tools": CompletionRequest(
        model=MODEL,
        messages=(
            Message(role="user", content="weather in Zürich?"),
            Message(
                role="assistant",
                tool_calls=[
                    {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
                ],
            ),
            Message(role="tool", tool_call_id="call_0", content="sunny"),
        ),
        tools=(TOOL,),
        tool_choice="auto",
        timeout_s=10,
    ),
    "extra": request_for(MODEL, extra={"seed": 7, "temperature": 0.1}, temperature=0.9),
}


# -- completions --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(REQUESTS))
async def test_direct_sends_the_sdk_body(
    case: str, sdk: OpenAIProvider, direct: OpenAIProvider, upstream: ScriptedOpenAI
) -> None:
    request = REQUESTS[case]
    via_sdk = await sdk.complete(request)
    sdk_body = upstream.last.json
    via_direct = await direct.complete(request)
    assert upstream.last.path == "/v1/chat/completions"
    assert upstream.last.json == sdk_body
    assert via_direct.model_dump(exclude={"request_id", "raw"}) == via_sdk.model_dump(exclude={"request_id", "raw"})
    assert via_direct.text == "Hello from the fake upstream."
    assert via_direct.request_id
    assert via_direct.request_id.startswith("req_")


async def test_direct_body_values(direct: OpenAIProvider, upstream: ScriptedOpenAI) -> None:
    await direct.complete(REQUESTS["parameters"])
    body = upstream.last.json
    assert body == {
        "model": MODEL,
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}],
        "max_tokens": 33,
        "temperature": 0.5,
        "stop": ["END"],
        "response_format": {"type": "json_object"},
    }


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_extra_is_merged_into_the_body(transport: str, upstream: ScriptedOpenAI) -> None:
    """``request.extra`` keys are top-level body keys (and win); no ``extra_body`` key reaches the API."""
    p = make(upstream, transport)
    try:
        await p.complete(REQUESTS["extra"])
        assert "extra_body" not in upstream.last.json
        assert upstream.last.json["seed"] == 7
        assert upstream.last.json["temperature"] == 0.1
        await collect(p.stream(REQUESTS["extra"]))
        assert "extra_body" not in upstream.last.json
        assert upstream.last.json["seed"] == 7
    finally:
        await p.aclose()


async def test_direct_headers(direct: OpenAIProvider, upstream: ScriptedOpenAI) -> None:
    await direct.complete(request_for(MODEL))
    headers = upstream.last.headers
    assert headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert headers["openai-organization"] == "org-1"
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    assert headers["user-agent"].startswith("llm-router-openai/")
    assert headers["x-team"] == "router"
    assert not [h for h in headers if h.startswith("x-stainless")]


async def test_direct_policy_headers_replace_defaults(upstream: ScriptedOpenAI) -> None:
    p = make(upstream, "direct", headers={"user-agent": "my-gateway/2", "Accept": "application/json; v=2"})
    try:
        await p.complete(request_for(MODEL))
    finally:
        await p.aclose()
    assert upstream.last.headers["user-agent"] == "my-gateway/2"
    assert upstream.last.headers["accept"] == "application/json; v=2"


async def test_direct_without_a_key_sends_no_authorization(upstream: ScriptedOpenAI) -> None:
    p = make_provider(
        OpenAICompatibleProvider, {"base_url": upstream.base_url + "/", "http_client": "direct"}, name="local"
    )
    try:
        response = await p.complete(request_for(MODEL))
    finally:
        await p.aclose()
    assert response.text == "Hello from the fake upstream."
    assert "authorization" not in upstream.last.headers
    assert upstream.last.path == "/v1/chat/completions"  # the trailing slash of base_url is dropped


async def test_openai_compatible_goes_direct_by_default(upstream: ScriptedOpenAI) -> None:
    p = make_provider(OpenAICompatibleProvider, {"base_url": upstream.base_url}, name="local")
    try:
        await p.complete(request_for(MODEL))
        chunks = [c async for c in p.stream(request_for(MODEL))]
    finally:
        await p.aclose()
    assert "".join(c.text for c in chunks)
    for sent in upstream.requests:
        assert sent.headers["user-agent"].startswith("llm-router-openai/"), "not the direct transport"
        assert not [h for h in sent.headers if h.startswith("x-stainless")]


async def test_direct_environment_like_the_sdk(upstream: ScriptedOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without base_url / organization in the policy, the SDK's variables apply, as with the SDK."""
    monkeypatch.setenv("OPENAI_BASE_URL", upstream.base_url)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-env")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-env")
    for transport in TRANSPORTS:
        p = make_provider(OpenAIProvider, {"api_key": FAKE_KEY, "http_client": transport}, name="openai")
        try:
            await p.complete(request_for(MODEL))
        finally:
            await p.aclose()
        assert upstream.last.headers["openai-organization"] == "org-env", transport
        assert upstream.last.headers["openai-project"] == "proj-env", transport
    assert len(upstream.requests) == 2


async def test_direct_tool_calls(direct: OpenAIProvider, upstream: ScriptedOpenAI) -> None:
    upstream.queue_text("", tool_calls=[{"id": "call_1", "name": "get_weather", "arguments": '{"city": "Oslo"}'}])
    response = await direct.complete(REQUESTS["tools"])
    assert response.finish_reason == "tool_calls"
    assert response.text == ""
    (call,) = response.tool_calls
    assert (call.id, call.name, json.loads(call.arguments)) == ("call_1", "get_weather", {"city": "Oslo"})
    body = upstream.last.json
    assert body["tools"] == [TOOL]
    assert body["tool_choice"] == "auto"
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "call_0", "content": "sunny"}


async def test_direct_usage_and_model(direct: OpenAIProvider, upstream: ScriptedOpenAI) -> None:
    upstream.queue_text("Bonjour", usage=(21, 5))
    response = await direct.complete(request_for(MODEL))
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (21, 5)
    assert response.model == MODEL
    assert response.finish_reason == "stop"
    assert response.raw is not None
    assert response.raw["object"] == "chat.completion"


# -- errors: the same kinds and messages as the SDK path -----------------------------------------------


ERROR_CASES: dict[str, tuple[type[ProviderError], Any]] = {
    "auth": (AuthenticationError, ("error", "auth")),
    "rate_limit": (RateLimitError, ("error", "rate_limit", 7)),
    "context_length": (ContextLengthExceededError, ("error", "context_length")),
    "server": (ServerError, ("error", "server")),
    "overloaded": (ServerError, ("error", "overloaded")),
    "forbidden": (
        PermissionDeniedError,
        ("raw", 403, {"error": {"message": "Country not supported", "type": "request_forbidden", "code": None}}),
    ),
    "insufficient_quota": (
        PermissionDeniedError,
        ("raw", 429, {"error": {"message": "You exceeded your current quota", "code": "insufficient_quota"}}),
    ),
    "retry_after_ms": (
        RateLimitError,
        ("raw", 429, {"error": {"message": "Slow down", "code": "rate_limit_exceeded"}}, {"retry-after-ms": "1500"}),
    ),
    "content_filter": (
        ContentFilteredError,
        ("raw", 400, {"error": {"message": "Flagged by the content management policy", "code": "content_filter"}}),
    ),
    "too_large": (ContextLengthExceededError, ("raw", 413, {"error": {"message": "Request too large"}})),
    "bad_request": (BadRequestError, ("raw", 400, {"error": {"message": "Invalid value for 'temperature'"}})),
    "not_found": (BadRequestError, ("raw", 404, {"error": {"message": "The model does not exist"}})),
    "request_timeout": (TimeoutError, ("raw", 408, {"error": {"message": "Request timed out"}})),
    "html_500": (ServerError, ("raw", 502, b"<html><body>Bad gateway</body></html>", {}, "text/html")),
    "empty_503": (ServerError, ("raw", 503, b"", {}, "text/plain")),
    "bare_error_object": (AuthenticationError, ("raw", 401, {"message": "no wrapper", "code": "invalid_api_key"})),
    "key_echoed": (
        AuthenticationError,
        ("raw", 401, {"error": {"message": f"Incorrect API key provided: {FAKE_KEY}.", "code": "invalid_api_key"}}),
    ),
}


def queue(upstream: ScriptedOpenAI, spec: Any) -> None:
    if spec[0] == "error":
        upstream.queue_error(spec[1], retry_after=spec[2] if len(spec) > 2 else None)
    else:
        _, status, body, *rest = spec
        headers = rest[0] if rest else {}
        media_type = rest[1] if len(rest) > 1 else "application/json"
        upstream.queue_raw(status, body, headers=headers, media_type=media_type)


def comparable(err: ProviderError) -> tuple[Any, ...]:
    # the fake's scripted errors get a fresh request id per request; the raw ones a fixed one
    text = str(err).replace(err.request_id or "<none>", "<id>")
    return (type(err), text, err.status_code, getattr(err, "retry_after_s", None), err.retryable)


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
async def test_direct_errors_match_the_sdk(
    case: str, sdk: OpenAIProvider, direct: OpenAIProvider, upstream: ScriptedOpenAI
) -> None:
    kind, spec = ERROR_CASES[case]
    found: list[ProviderError] = []
    for provider in (sdk, direct):
        queue(upstream, spec)
        with pytest.raises(ProviderError) as info:
            await provider.complete(request_for(MODEL))
        found.append(info.value)
    via_sdk, via_direct = found
    assert type(via_direct) is kind
    assert comparable(via_direct) == comparable(via_sdk)
    assert via_direct.request_id
    assert (via_direct.provider, via_direct.model) == ("openai", MODEL)
    assert FAKE_KEY not in str(via_direct)
    assert FAKE_KEY not in repr(via_direct)
    assert FAKE_KEY not in str(via_direct.args)


async def test_direct_error_values(direct: OpenAIProvider, upstream: ScriptedOpenAI) -> None:
    upstream.queue_error("auth")
    with pytest.raises(AuthenticationError) as auth:
        await direct.complete(request_for(MODEL))
    assert auth.value.status_code == 401
    assert "Incorrect API key provided." in str(auth.value)
    assert "set OPENAI_API_KEY (or providers.openai.api_key in the policy)" in str(auth.value)

    upstream.queue_error("rate_limit", retry_after=7)
    with pytest.raises(RateLimitError) as limited:
        await direct.complete(request_for(MODEL))
    assert limited.value.retry_after_s == pytest.approx(7)
    assert limited.value.retryable

    queue(upstream, ERROR_CASES["retry_after_ms"][1])
    with pytest.raises(RateLimitError) as limited_ms:
        await direct.complete(request_for(MODEL))
    assert limited_ms.value.retry_after_s == pytest.approx(1.5)
    assert limited_ms.value.request_id == "req_fixed"

    queue(upstream, ERROR_CASES["insufficient_quota"][1])
    with pytest.raises(PermissionDeniedError) as quota:
        await direct.complete(request_for(MODEL))
    assert quota.value.message == "You exceeded your current quota"
    assert not quota.value.retryable

    upstream.queue_error("context_length")
    with pytest.raises(ContextLengthExceededError) as too_long:
        await direct.complete(request_for(MODEL))
    assert too_long.value.status_code == 400
    assert "maximum context length" in too_long.value.message

    upstream.queue_error("server")
    with pytest.raises(ServerError) as server:
        await direct.complete(request_for(MODEL))
    assert server.value.status_code == 500
    assert server.value.retryable

    queue(upstream, ERROR_CASES["html_500"][1])
    with pytest.raises(ServerError) as html:
        await direct.complete(request_for(MODEL))
    assert html.value.message == "Error code: 502"

    queue(upstream, ERROR_CASES["key_echoed"][1])
    with pytest.raises(AuthenticationError) as echoed:
        await direct.complete(request_for(MODEL))
    assert "Incorrect API key provided: ***." in echoed.value.message


# Every transport reports a refused connection as a connection error (502 at the gateway), not a timeout (504):
# the SDK over aiohttp raises APITimeoutError for it (its vendored transport maps every
# aiohttp.ClientConnectionError to httpx.ConnectTimeout), which the plugin maps back by the cause.
@pytest.mark.parametrize("transport", ["aiohttp", "httpx", "direct"])
async def test_connection_refused(transport: str, upstream: ScriptedOpenAI) -> None:
    p = make_provider(
        OpenAIProvider,
        {"base_url": f"http://127.0.0.1:{closed_port()}/v1", "api_key": FAKE_KEY, "http_client": transport},
        name="openai",
    )
    try:
        with pytest.raises(ConnectionError) as info:
            await p.complete(request_for(MODEL))
        with pytest.raises(ConnectionError) as streamed:
            await collect(p.stream(request_for(MODEL)))
    finally:
        await p.aclose()
    for err in (info.value, streamed.value):
        assert err.kind == "connection"
        assert err.message.startswith("could not reach the API: ")
        assert err.retryable
        assert FAKE_KEY not in str(err)
        assert FAKE_KEY not in repr(err)


def test_sdk_timeouts_are_told_from_refusals_by_their_cause() -> None:
    """A refusal the SDK reports as APITimeoutError is a ConnectionError; a real timeout stays a TimeoutError."""
    import sys

    import aiohttp
    import openai
    from llm_router_openai.provider import _sdk_response, map_error

    http = sys.modules[_sdk_response().__module__.split(".")[0]]  # the SDK's HTTP library: httpx or httpx2
    request = http.Request("POST", "http://127.0.0.1:1/v1/chat/completions")

    def sdk_timeout(cause: BaseException | None) -> openai.APITimeoutError:
        err = openai.APITimeoutError(request=request)
        if cause is not None:
            transport_error = http.ConnectTimeout(str(cause))
            transport_error.__cause__ = cause
            err.__cause__ = transport_error
        return err

    kw: dict[str, Any] = {"provider": "openai", "model": MODEL, "key": FAKE_KEY, "key_hint": "api_key"}
    refused = map_error(sdk_timeout(aiohttp.ServerDisconnectedError()), **kw)
    assert isinstance(refused, ConnectionError)
    assert refused.message == "could not reach the API: Connection error."
    timed_out = aiohttp.ConnectionTimeoutError("Connection timeout to host http://127.0.0.1:1")
    assert isinstance(map_error(sdk_timeout(timed_out), **kw), TimeoutError)
    assert isinstance(map_error(sdk_timeout(None), **kw), TimeoutError)


async def test_direct_timeout_falls_back_to_the_config(upstream: ScriptedOpenAI) -> None:
    p = make(upstream, "direct", timeout_s=0.3)
    upstream.queue_stall(3)
    try:
        with pytest.raises(TimeoutError) as info:
            await p.complete(CompletionRequest(model=MODEL, messages=(Message(role="user", content="hi"),)))
    finally:
        await p.aclose()
    assert info.value.message == "the request timed out"
    assert info.value.retryable


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_non_json_answer(transport: str, upstream: ScriptedOpenAI) -> None:
    p = make(upstream, transport)
    try:
        upstream.queue_raw(200, b"<html>maintenance</html>", media_type="text/html")
        with pytest.raises(ServerError) as not_json:
            await p.complete(request_for(MODEL))
        upstream.queue_raw(200, {"id": "x", "choices": []})
        with pytest.raises(ServerError) as no_choices:
            await p.complete(request_for(MODEL))
    finally:
        await p.aclose()
    assert not_json.value.message == "the response is not JSON"
    assert no_choices.value.message == "the response has no choices"
    assert no_choices.value.request_id == "req_fixed"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_body_that_cannot_be_encoded(transport: str, upstream: ScriptedOpenAI) -> None:
    p = make(upstream, transport)
    try:
        with pytest.raises(BadRequestError) as info:
            await p.complete(request_for(MODEL, extra={"logit_bias": object()}))
        with pytest.raises(BadRequestError):
            await collect(p.stream(request_for(MODEL, extra={"logit_bias": object()})))
    finally:
        await p.aclose()
    assert info.value.message.startswith("the request cannot be sent: TypeError: ")
    assert not info.value.retryable
    assert not upstream.requests


# -- streaming -------------------------------------------------------------------------------------------


async def test_direct_stream_matches_the_sdk(
    sdk: OpenAIProvider, direct: OpenAIProvider, upstream: ScriptedOpenAI
) -> None:
    found = []
    for provider in (sdk, direct):
        upstream.queue_text("one two three", usage=(9, 4))
        found.append((await collect(provider.stream(REQUESTS["parameters"])), upstream.last.json))
    (sdk_chunks, sdk_body), (chunks, body) = found
    assert body == sdk_body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert without_ids(chunks) == without_ids(sdk_chunks)
    assert [c.text for c in chunks if c.text] == ["one", " two", " three"]
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.input_tokens, chunks[-1].usage.output_tokens) == (9, 4)
    assert chunks[-1].text == ""
    request_ids = {c.request_id for c in chunks}
    assert len(request_ids) == 1
    assert next(iter(request_ids), "").startswith("req_")


async def test_direct_streamed_tool_calls_match_the_sdk(
    sdk: OpenAIProvider, direct: OpenAIProvider, upstream: ScriptedOpenAI
) -> None:
    found = []
    for provider in (sdk, direct):
        upstream.queue_text("", tool_calls=[{"id": "call_1", "name": "get_weather", "arguments": '{"city":"Oslo"}'}])
        found.append(await collect(provider.stream(REQUESTS["tools"])))
    sdk_chunks, chunks = found
    assert without_ids(chunks) == without_ids(sdk_chunks)
    calls = [t for c in chunks for t in c.tool_calls]
    assert calls[0] == {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert calls[1] == {"index": 0, "function": {"arguments": '{"city":"Oslo"}'}}
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]


STREAM_ERRORS = {
    "with_message": {"message": "The server had an error while processing your request.", "type": "server_error"},
    "without_message": {"type": "server_error", "code": None},
    "key_echoed": {"message": f"bad key {FAKE_KEY}"},
}


@pytest.mark.parametrize("case", sorted(STREAM_ERRORS))
async def test_direct_stream_error_event(
    case: str, sdk: OpenAIProvider, direct: OpenAIProvider, upstream: ScriptedOpenAI
) -> None:
    events = [sse(chunk_event({"role": "assistant", "content": "partial"})), sse({"error": STREAM_ERRORS[case]})]
    found = []
    for provider in (sdk, direct):
        upstream.queue_events(events)
        received: list[StreamChunk] = []
        with pytest.raises(ProviderError) as info:
            await read_into(provider.stream(request_for(MODEL)), received)
        assert [c.text for c in received] == ["partial"]
        found.append(info.value)
    via_sdk, via_direct = found
    assert (type(via_direct), str(via_direct)) == (type(via_sdk), str(via_sdk))
    assert type(via_direct) is ProviderError
    expected = {
        "with_message": "APIError: The server had an error while processing your request.",
        "without_message": "APIError: An error occurred during streaming",
        "key_echoed": "APIError: bad key ***",
    }[case]
    assert via_direct.message == expected
    assert FAKE_KEY not in repr(via_direct)
    assert await anyio_wait(lambda: upstream.open_streams == 0)


async def anyio_wait(predicate: Any, limit_s: float = 5.0) -> bool:
    with anyio.move_on_after(limit_s):
        while not predicate():  # noqa: ASYNC110 - a plain predicate
            await anyio.sleep(0.02)
    return bool(predicate())


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_stream_event_that_is_not_json(transport: str, upstream: ScriptedOpenAI) -> None:
    p = make(upstream, transport)
    upstream.queue_events([sse(chunk_event({"content": "a"})), b"data: {not json\n\n"])
    try:
        with pytest.raises(ServerError) as info:
            await collect(p.stream(request_for(MODEL)))
    finally:
        await p.aclose()
    assert info.value.message == "a stream event is not JSON"
    assert info.value.request_id == "req_fixed"


async def test_direct_stream_wire_details(direct: OpenAIProvider, upstream: ScriptedOpenAI) -> None:
    """Comments, ``event:``/``id:``/``retry:`` lines, CRLF line ends, split events, multi-line data;
    nothing after ``[DONE]`` is read as an event."""
    first = json.dumps(chunk_event({"content": "Hel"})).encode()
    multi = json.dumps(chunk_event({"content": "lo"}), indent=1).encode().replace(b"\n", b"\ndata: ")
    events = [
        b": keep-alive\n\n",
        b"event: message\r\nid: 1\r\nretry: 100\r\ndata: " + first[:20],
        first[20:] + b"\r",
        b"\n\r\n",
        b"data: " + multi + b"\n\n",
        b"event: ping\n\n",
        sse(chunk_event({}, "stop")),
        b"data:"
        + json.dumps({"id": "x", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}).encode(),
        b"\n\n",
        sse("[DONE]"),
        b"data: not json, after the end\n\n",
    ]
    upstream.queue_events(events)
    chunks = await collect(direct.stream(request_for(MODEL)))
    assert [c.text for c in chunks] == ["Hel", "lo", "", ""]
    assert chunks[2].finish_reason == "stop"
    assert chunks[3].usage is not None
    assert (chunks[3].usage.input_tokens, chunks[3].usage.output_tokens) == (3, 2)
    assert {c.request_id for c in chunks} == {"req_fixed"}


@pytest.mark.parametrize("kind", ["rate_limit", "auth", "server"])
async def test_direct_stream_http_errors(
    kind: str, sdk: OpenAIProvider, direct: OpenAIProvider, upstream: ScriptedOpenAI
) -> None:
    found = []
    for provider in (sdk, direct):
        upstream.queue_error(kind, retry_after=3 if kind == "rate_limit" else None)
        with pytest.raises(ProviderError) as info:
            await collect(provider.stream(request_for(MODEL)))
        found.append(info.value)
    assert comparable(found[1]) == comparable(found[0])
    if kind == "rate_limit":
        assert isinstance(found[1], RateLimitError)
        assert found[1].retry_after_s == pytest.approx(3)


async def test_direct_stream_timeout_is_between_reads(upstream: ScriptedOpenAI) -> None:
    """A stream may last longer than the timeout while it keeps sending; a silence longer than it fails."""
    p = make(upstream, "direct")
    try:
        upstream.queue_text(" ".join("abcdefghijklmnop"), chunk_delay_s=0.05)
        chunks = await collect(p.stream(request_for(MODEL, timeout_s=0.5)))
        assert "".join(c.text for c in chunks) == " ".join("abcdefghijklmnop")  # ~0.9 s in all
        upstream.queue_events([sse(chunk_event({"content": "a"})), sse(chunk_event({"content": "b"}))], delay_s=2)
        received: list[StreamChunk] = []
        with pytest.raises(TimeoutError):
            await read_into(p.stream(request_for(MODEL, timeout_s=0.3)), received)
        assert [c.text for c in received] == ["a"]
    finally:
        await p.aclose()


# -- connections -----------------------------------------------------------------------------------------


async def test_direct_reuses_connections(upstream: ScriptedOpenAI) -> None:
    p = make(upstream, "direct", max_connections=1)
    try:
        await p.complete(request_for(MODEL))
        await p.complete(request_for(MODEL))
        await collect(p.stream(request_for(MODEL)))  # read to [DONE]: the connection goes back to the pool
        await p.complete(request_for(MODEL))
        upstream.queue_error("server")
        with pytest.raises(ServerError):
            await p.complete(request_for(MODEL))
        await p.complete(request_for(MODEL))
    finally:
        await p.aclose()
    assert len(upstream.peers) == 6
    assert len(set(upstream.peers)) == 1, upstream.peers


async def test_direct_waits_briefly_for_the_end_of_a_finished_stream(upstream: ScriptedOpenAI) -> None:
    """After ``[DONE]`` the end of the body may come a little later: reading it keeps the connection."""
    p = make(upstream, "direct")
    events = [sse(chunk_event({"content": "a"}, "stop")), sse("[DONE]")]
    try:
        upstream.queue_events(events, delay_s=0.03)  # the body ends 30 ms after [DONE]
        chunks = await collect(p.stream(request_for(MODEL)))
        await p.complete(request_for(MODEL))
    finally:
        await p.aclose()
    assert [c.text for c in chunks] == ["a"]
    assert upstream.peers[0] == upstream.peers[1]


async def test_direct_early_close_releases_the_connection(upstream: ScriptedOpenAI) -> None:
    """With one connection allowed, a stream closed early must give it up: the next call would wait for it."""
    p = make(upstream, "direct", max_connections=1)
    try:
        upstream.queue_text("a b c d e f g h i j k l m n o p", chunk_delay_s=0.5)
        stream = p.stream(request_for(MODEL))
        iterator = stream.__aiter__()
        first = await iterator.__anext__()
        while not first.text:
            first = await iterator.__anext__()
        await iterator.aclose()  # type: ignore[attr-defined]
        assert await anyio_wait(lambda: upstream.open_streams == 0)
        assert upstream.closed_streams >= 1
        response = await p.complete(request_for(MODEL, timeout_s=2))
        assert response.text == "Hello from the fake upstream."
    finally:
        await p.aclose()
    assert upstream.peers[0] != upstream.peers[1], "an abandoned stream's connection must not be reused"


async def test_direct_cancel_releases_the_connection(upstream: ScriptedOpenAI) -> None:
    p = make(upstream, "direct", max_connections=1)
    try:
        upstream.queue_text("a b c d e f g h", chunk_delay_s=0.5)
        with anyio.move_on_after(0.3):
            await collect(p.stream(request_for(MODEL)))
        assert await anyio_wait(lambda: upstream.open_streams == 0)
        response = await p.complete(request_for(MODEL, timeout_s=2))
        assert response.text == "Hello from the fake upstream."
    finally:
        await p.aclose()


async def test_direct_aclose_closes_the_session(upstream: ScriptedOpenAI) -> None:
    p = make(upstream, "direct")
    await p.complete(request_for(MODEL))
    client = p.direct_client()
    session = client.session
    assert not session.closed
    await p.aclose()
    assert session.closed
    assert client.closed
    # usable again after closing: a new client and session
    await p.complete(request_for(MODEL))
    assert p.direct_client() is not client
    await p.aclose()
    assert p.direct_client().closed


async def test_direct_embeddings_use_the_sdk(upstream: ScriptedOpenAI) -> None:
    p = make(upstream, "direct")
    await p.complete(request_for(MODEL))
    vectors = await p.embed(["a", "bcd"], "text-embedding-3-small")
    assert len(vectors) == 2
    assert len(vectors[0]) == 4
    assert upstream.last.path == "/v1/embeddings"
    sdk_client = p.client()
    session = p.direct_client().session
    assert p.client() is sdk_client  # cached
    await p.aclose()
    assert sdk_client.is_closed()
    assert session.closed


async def test_direct_honours_proxy_variables(upstream: ScriptedOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    p = make(upstream, "direct")
    try:
        with pytest.raises(ConnectionError):
            await p.complete(request_for(MODEL))
    finally:
        await p.aclose()
    assert not upstream.requests
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    p = make(upstream, "direct")
    try:
        assert (await p.complete(request_for(MODEL))).text == "Hello from the fake upstream."
    finally:
        await p.aclose()


def test_direct_client_repr_hides_the_key(upstream: ScriptedOpenAI) -> None:
    p = make(upstream, "direct")
    client = p.direct_client()
    assert isinstance(client, DirectClient)
    assert client.url == f"{upstream.base_url}/chat/completions"
    assert FAKE_KEY not in repr(client)
    assert FAKE_KEY not in repr(p)
    assert client.closed  # no session before the first request


def test_http_client_option() -> None:
    assert OpenAIConfig().http_client == "aiohttp"
    assert OpenAICompatibleConfig(base_url="http://h/v1").http_client == "direct"  # the default for self-hosting
    assert OpenAICompatibleConfig(base_url="http://h/v1", http_client="aiohttp").http_client == "aiohttp"
    assert OpenAIConfig(http_client="direct").http_client == "direct"
    with pytest.raises(ValueError, match="http_client"):
        OpenAIConfig(http_client="urllib3")  # type: ignore[arg-type]


# -- the SSE parser ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"data: a\n\n"], [b"a"]),
        ([b"data: a\n", b"\ndata: b\n\n"], [b"a", b"b"]),
        ([b"data: a\r\n\r\n"], [b"a"]),
        ([b"data: a\r", b"\n\r", b"\n"], [b"a"]),  # CRLF split between chunks is one line end
        ([b"data: a\r", b"\ndata: b\r\n\r\n"], [b"a\nb"]),  # ... not a line end and a blank line
        ([b"data: a\r\rdata: b\r\r"], [b"a", b"b"]),  # CR alone ends lines too
        ([b"data: a\ndata: b\n\n"], [b"a\nb"]),  # data lines of one event are joined
        ([b"data:a\ndata:  b\n\n"], [b"a\n b"]),  # one leading space dropped, no more
        ([b": comment\nevent: x\nid: 3\nretry: 5\n\n"], []),  # no data: no event
        ([b"data\n\n"], [b""]),  # a field name alone has an empty value
        ([b"datum: x\n\n"], []),
        ([b"data: cut off at the end"], []),
        ([b"da", b"ta", b": ", b"x", b"\n", b"\n"], [b"x"]),
    ],
)
def test_sse_parser(chunks: list[bytes], expected: list[bytes]) -> None:
    parser = SSEParser()
    events = [e for chunk in chunks for e in parser.feed(chunk)]
    assert events == expected


@pytest.mark.parametrize(
    "message",
    [
        Message(role="user", content="hello"),
        Message(role="system", content=""),
        Message(role="user", content="hi", name="alice"),
        Message(role="tool", content='{"ok": true}', tool_call_id="call_1"),
        Message(role="assistant", content=None, tool_calls=[{"id": "c1", "type": "function", "function": {}}]),
        Message(role="assistant", content="text", tool_calls=[{"id": "c1", "type": "function"}]),
        Message(role="user", content=[{"type": "text", "text": "look"}, {"type": "image_url", "image_url": None}]),
    ],
)
def test_wire_message_is_the_model_dump(message: Message) -> None:
    """The body's message objects (built by hand for plain text messages) are what pydantic's dump gives."""
    from llm_router_openai.provider import _message

    assert _message(message) == message.model_dump(exclude_none=True)
    assert list(_message(message)) == list(message.model_dump(exclude_none=True))
