"""``http_client: aiohttp | httpx``: the SDK's two HTTP clients behave the same through the plugin (requests,
answers, streams, error kinds, connection failures) and are closed with the provider."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import re
import socket
import warnings
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import anyio
import pytest
from fakes import FakeAnthropic
from llm_router.errors import ConnectionError, ProviderError, ServerError, TimeoutError
from llm_router.testing import FAKE_KEY, make_provider, request_for
from llm_router.types import StreamChunk
from llm_router_anthropic import AnthropicProvider
from llm_router_anthropic.provider import AnthropicConfig, _sdk_http, map_error

pytestmark = pytest.mark.anyio

MODEL = "claude-haiku-4-5"
TOOL_CALL = {"id": "toolu_7", "name": "get_weather", "arguments": '{"city": "Oslo", "days": 3}'}


def make(base_url: str, http_client: str, **params: Any) -> AnthropicProvider:
    p = make_provider(
        AnthropicProvider,
        {"base_url": base_url, "api_key": FAKE_KEY, "http_client": http_client, **params},
        name="anthropic",
    )
    assert isinstance(p, AnthropicProvider)
    return p


@contextlib.asynccontextmanager
async def provider(base_url: str, http_client: str, **params: Any) -> AsyncIterator[AnthropicProvider]:
    p = make(base_url, http_client, **params)
    try:
        yield p
    finally:
        await p.aclose()


async def read_into(stream: AsyncIterator[StreamChunk], received: list[StreamChunk]) -> None:
    async for chunk in stream:
        received.append(chunk)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


MESSAGE_START = sse(
    "message_start",
    {
        "type": "message_start",
        "message": {
            "id": "msg_raw",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 1},
        },
    },
)
TEXT_START = sse(
    "content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
)
TEXT_DELTA = sse(
    "content_block_delta",
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
)


@contextlib.asynccontextmanager
async def raw_upstream(events: list[bytes], *, complete: bool) -> AsyncIterator[str]:
    """A server that answers every request with ``events`` as a chunked ``text/event-stream``, then either ends
    the body properly (``complete``) or drops the connection in the middle of it."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
        await reader.readexactly(int(length.group(1)) if length else 0)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
            b"request-id: req_raw\r\n\r\n"
        )
        for event in events:
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
        if complete:
            writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def error_facts(exc: ProviderError) -> tuple[Any, ...]:
    """What the router acts on in an error (its request id aside, which the upstream makes per request)."""
    return (type(exc), exc.status_code, exc.message, exc.retryable, getattr(exc, "retry_after_s", None))


# --------------------------------------------------------------------------------------------------
# configuration


def test_http_client_option() -> None:
    assert AnthropicConfig().http_client == "aiohttp"
    assert AnthropicConfig(http_client="httpx").http_client == "httpx"
    with pytest.raises(ValueError, match="http_client"):
        AnthropicConfig(http_client="direct")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_connections"):
        AnthropicConfig(max_connections=0)


@pytest.mark.parametrize("missing", ["extra", "sdk too old"])
async def test_aiohttp_without_the_extra_names_the_pip_command(
    missing: str, upstream: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    if missing == "extra":

        class NoAiohttp:
            def __init__(self, **_: Any) -> None:
                raise RuntimeError(
                    "To use the aiohttp client you must have installed the package with the `aiohttp` extra"
                )

        monkeypatch.setattr(anthropic, "DefaultAioHttpClient", NoAiohttp)
    else:
        monkeypatch.delattr(anthropic, "DefaultAioHttpClient")
    async with provider(upstream.base_url, "aiohttp") as p:
        with pytest.raises(ProviderError) as info:
            await p.complete(request_for(MODEL))
    assert "pip install 'anthropic[aiohttp]" in info.value.message
    assert FAKE_KEY not in str(info.value)
    assert not upstream.requests


# --------------------------------------------------------------------------------------------------
# the same requests, answers and errors over both clients


async def test_both_clients_send_the_same_requests_and_read_the_same_answers(upstream: FakeAnthropic) -> None:
    seen: dict[str, Any] = {}
    for http_client in ("aiohttp", "httpx"):
        async with provider(upstream.base_url, http_client) as p:
            upstream.queue_text("Let me check the weather.", usage=(31, 17), tool_calls=[TOOL_CALL])
            response = await p.complete(request_for(MODEL, max_tokens=64, temperature=0.5))
            sent = upstream.last
            upstream.queue_text("Let me check the weather.", usage=(31, 17), tool_calls=[TOOL_CALL])
            chunks = [c async for c in p.stream(request_for(MODEL, max_tokens=64))]
            streamed = upstream.last
        assert response.request_id
        assert chunks[0].request_id
        assert {c.request_id for c in chunks} == {chunks[0].request_id}
        seen[http_client] = (
            (sent.path, sent.headers, sent.json),
            (streamed.path, streamed.headers, streamed.json),
            response.model_dump(exclude={"request_id", "raw"}),
            {k: v for k, v in (response.raw or {}).items() if k != "id"},
            [c.model_dump(exclude={"request_id"}) for c in chunks],
        )
    assert seen["aiohttp"] == seen["httpx"]
    chunks = seen["aiohttp"][4]
    assert "".join(c["text"] for c in chunks) == "Let me check the weather."
    assert chunks[-1]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["input_tokens"] == 31
    assert chunks[-1]["usage"]["output_tokens"] == 17


@pytest.mark.parametrize(
    ("kind", "retry_after"),
    [
        ("rate_limit", 7),
        ("rate_limit", None),
        ("auth", None),
        ("context_length", None),
        ("server", None),
        ("overloaded", None),
    ],
)
async def test_both_clients_give_the_same_errors(kind: str, retry_after: float | None, upstream: FakeAnthropic) -> None:
    facts: dict[str, list[tuple[Any, ...]]] = {}
    for http_client in ("aiohttp", "httpx"):
        async with provider(upstream.base_url, http_client) as p:
            upstream.queue_error(kind, retry_after=retry_after)
            with pytest.raises(ProviderError) as completed:
                await p.complete(request_for(MODEL))
            upstream.queue_error(kind, retry_after=retry_after)
            with pytest.raises(ProviderError) as streamed:
                await anext(aiter(p.stream(request_for(MODEL))))
        for err in (completed.value, streamed.value):
            assert err.request_id
            assert (err.provider, err.model) == ("anthropic", MODEL)
            assert FAKE_KEY not in str(err)
        facts[http_client] = [error_facts(completed.value), error_facts(streamed.value)]
    assert facts["aiohttp"] == facts["httpx"]
    assert facts["aiohttp"][0] == facts["aiohttp"][1]


# --------------------------------------------------------------------------------------------------
# connection failures


async def test_connection_refused(http_client: str) -> None:
    async with provider(f"http://127.0.0.1:{closed_port()}", http_client) as p:
        with pytest.raises(ConnectionError) as completed:
            await p.complete(request_for(MODEL))
        with pytest.raises(ConnectionError) as streamed:
            await anext(aiter(p.stream(request_for(MODEL))))
    for err in (completed.value, streamed.value):
        assert err.message == "could not reach the API: Connection error."
        assert err.retryable
        assert FAKE_KEY not in str(err)
        assert FAKE_KEY not in repr(err)


def test_a_refusal_reported_as_a_timeout_is_a_connection_error() -> None:
    """The aiohttp transport of SDKs that depend on the ``httpx-aiohttp`` package (rather than vendoring it)
    reports any failure to connect as a connect *timeout*: the plugin still maps a refusal to ConnectionError,
    and a real timeout to TimeoutError."""
    request = _sdk_http().Request("POST", "http://127.0.0.1:1/v1/messages")

    def sdk_timeout(cause: BaseException) -> anthropic.APITimeoutError:
        """What the SDK raises when its transport maps ``cause`` to the HTTP library's ConnectTimeout."""
        transport_error = _sdk_http().ConnectTimeout(str(cause))
        transport_error.__cause__ = cause
        err = anthropic.APITimeoutError(request=request)
        err.__cause__ = transport_error
        return err

    refused = aiohttp.ServerDisconnectedError()
    timed_out = aiohttp.ConnectionTimeoutError("Connection timeout to host http://127.0.0.1:1")
    kw: dict[str, Any] = {"provider": "anthropic", "model": MODEL, "key": FAKE_KEY, "key_hint": "api_key"}
    err = map_error(sdk_timeout(refused), **kw)
    assert isinstance(err, ConnectionError)
    assert err.message == "could not reach the API: Connection error."
    assert isinstance(map_error(sdk_timeout(timed_out), **kw), TimeoutError)
    assert isinstance(map_error(anthropic.APITimeoutError(request=request), **kw), TimeoutError)


async def test_refused_through_the_upstream_aiohttp_transport_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same, end to end: the vendored transport given upstream httpx-aiohttp's mapping."""
    transport = pytest.importorskip("anthropic._vendor.httpx_aiohttp.transport")
    connect_timeout = transport.httpx.ConnectTimeout
    monkeypatch.setitem(transport.AIOHTTP_EXC_MAP, aiohttp.ClientConnectionError, connect_timeout)
    async with provider(f"http://127.0.0.1:{closed_port()}", "aiohttp") as p:
        with pytest.raises(ConnectionError) as info:
            await p.complete(request_for(MODEL))
    assert info.value.message == "could not reach the API: Connection error."
    assert isinstance(info.value.__context__, anthropic.APITimeoutError)  # what the SDK said


async def test_a_stream_that_stalls_midway_times_out(http_client: str, upstream: FakeAnthropic) -> None:
    upstream.queue_text("a b c d e f", chunk_delay_s=2.0)
    received: list[StreamChunk] = []
    async with provider(upstream.base_url, http_client) as p:
        with pytest.raises(TimeoutError) as info:
            await read_into(p.stream(request_for(MODEL, timeout_s=0.3)), received)
    assert not received  # the fake pauses after its first event (message_start, which yields no chunk)
    assert info.value.message == "the stream timed out"
    assert info.value.retryable
    assert info.value.request_id  # read from the response's headers: the stall came after them


async def test_a_stream_cut_midway_is_a_connection_error(http_client: str) -> None:
    received: list[StreamChunk] = []
    server = raw_upstream([MESSAGE_START, TEXT_START, TEXT_DELTA], complete=False)
    async with server as base_url, provider(base_url, http_client) as p:
        with pytest.raises(ConnectionError) as info:
            await read_into(p.stream(request_for(MODEL)), received)
    assert [c.text for c in received] == ["Hello"]
    assert info.value.message.startswith("the connection was lost during the stream: ")
    assert info.value.retryable
    assert info.value.request_id == "req_raw"


async def test_an_error_event_midway_is_typed(http_client: str) -> None:
    error = sse(
        "error",
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}, "request_id": "req_raw"},
    )
    received: list[StreamChunk] = []
    server = raw_upstream([MESSAGE_START, TEXT_START, TEXT_DELTA, error], complete=True)
    async with server as base_url, provider(base_url, http_client) as p:
        with pytest.raises(ServerError) as info:
            await read_into(p.stream(request_for(MODEL)), received)
    assert [c.text for c in received] == ["Hello"]
    assert info.value.message == "Overloaded"
    assert info.value.retryable


# --------------------------------------------------------------------------------------------------
# connections


async def test_max_connections_bounds_the_connections(http_client: str, upstream: FakeAnthropic) -> None:
    async def most_open_streams(max_connections: int) -> int:
        most = 0
        async with provider(upstream.base_url, http_client, max_connections=max_connections) as p:

            async def read() -> None:
                assert [c async for c in p.stream(request_for(MODEL))][-1].usage is not None

            async with anyio.create_task_group() as tg:
                for _ in range(2):
                    upstream.queue_text("one two three", chunk_delay_s=0.1)
                    tg.start_soon(read)
                while len(upstream.requests) < 2 or upstream.open_streams:
                    most = max(most, upstream.open_streams)
                    await anyio.sleep(0.01)
        return most

    assert await most_open_streams(1) == 1
    upstream.reset()
    assert await most_open_streams(2) == 2


async def test_aclose_closes_the_connections(http_client: str, upstream: FakeAnthropic) -> None:
    p = make(upstream.base_url, http_client)
    await p.complete(request_for(MODEL))
    assert [c async for c in p.stream(request_for(MODEL))]
    client = p.client()
    await p.aclose()
    assert client.is_closed()
    del p, client
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
