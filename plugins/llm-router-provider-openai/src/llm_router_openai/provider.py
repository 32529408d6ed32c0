"""OpenAI chat completions (and embeddings) through ``openai.AsyncOpenAI``.

``openai`` talks to api.openai.com; ``openai_compatible`` to any host speaking the same wire format
(vLLM, llama.cpp server, Ollama, Groq, Together, OpenRouter, Gemini's OpenAI endpoint). A policy may declare
several such hosts under different names, each contributing its own models to the catalogue.

Chat completions go through one of three transports (``http_client``): the SDK over its aiohttp client (the
default for ``openai``), the SDK over its httpx client, or ``direct`` (the default for ``openai_compatible``):
the plugin speaks the chat completions wire format
itself over one shared ``aiohttp.ClientSession`` per key (:class:`DirectClient`), without the SDK on the request
path. Both build the same request body (:meth:`OpenAIProvider._body`), read answers with the same code
(:func:`completion_from_json`) and map HTTP errors with the same function (:func:`status_error`).

The SDK and aiohttp are imported when first needed (the first client made, the first error mapped), never
when the plugin is registered or a provider is created: routing a prompt does not pay for them.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from importlib import import_module, metadata
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from llm_router import ApiKeyConfig, KeyedProvider
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
    causes,
    retry_after_from_headers,
    scrub,
)
from llm_router.types import (
    Capabilities,
    CompletionRequest,
    CompletionResponse,
    Message,
    ModelInfo,
    ModelPrice,
    StreamChunk,
    ToolCall,
    Usage,
)
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import aiohttp
    import openai
    from multidict import CIMultiDict
    from yarl import URL

__all__ = ["DirectClient", "HostedModel", "OpenAICompatibleProvider", "OpenAIConfig", "OpenAIProvider"]

log = logging.getLogger("llm_router_openai")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
try:
    _VERSION = metadata.version("llm-router-provider-openai")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree without an install
    _VERSION = "0"
USER_AGENT = f"llm-router-openai/{_VERSION}"

# JSON for the direct transport: orjson when it is installed, else the standard library (compact, UTF-8, no
# NaN: what the SDK's HTTP library sends).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _json_dumps(obj: Any) -> bytes:
    return _ENCODER.encode(obj).encode()


_dumps: Callable[[Any], bytes] = _json_dumps
_loads: Callable[[bytes], Any] = json.loads
try:
    _orjson: Any = import_module("orjson")
except ImportError:  # pragma: no cover - depends on the environment
    pass
else:  # pragma: no cover - depends on the environment (orjson writes NaN as null where json refuses it)
    _dumps, _loads = _orjson.dumps, _orjson.loads

_DRAIN_S = 0.1
"""How long a finished stream may take to deliver the end of its body after ``[DONE]`` (then the connection
goes back to the pool; past it the connection is closed instead). The SDK waits as long."""


class HostedPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input_per_mtok: float = Field(0.0, ge=0)
    output_per_mtok: float = Field(0.0, ge=0)
    source: str = "policy"


class HostedModel(BaseModel):
    """A model an OpenAI-compatible host serves, added to the catalogue as ``<provider name>/<model>``."""

    model_config = ConfigDict(extra="forbid")
    model: str
    context_window: int = Field(8192, gt=0)
    max_output_tokens: int | None = Field(None, gt=0)
    price: HostedPrice = Field(default_factory=HostedPrice)
    capabilities: Capabilities = Field(default_factory=Capabilities)
    quality: dict[str, float] = Field(default_factory=dict)
    ttft_ms: float = Field(300.0, ge=0)
    tokens_per_second: float = Field(40.0, gt=0)


class OpenAIConfig(ApiKeyConfig):
    """Parameters of an ``openai`` provider entry."""

    model_config = ConfigDict(extra="forbid")
    base_url: str | None = None
    organization: str | None = None
    timeout_s: float = Field(60.0, gt=0, description="per-request timeout unless the request sets one")
    max_connections: int | None = Field(None, gt=0)
    http_client: Literal["aiohttp", "httpx", "direct"] = Field(
        "aiohttp",
        description="how chat completions are sent: through the SDK over its aiohttp-backed client (default: "
        "measured ~20 % less time per call than httpx, see docs/gateway.md) or its httpx one; or `direct`: "
        "the plugin speaks the chat completions wire format itself over one shared aiohttp session per key, "
        "skipping the SDK (its request building, header machinery, response and error classes) on the request "
        "path. `direct` sends the same JSON bodies, maps failures to the same error kinds and messages, and "
        "parses the same SSE streams (usage chunk, error events); it sends no `x-stainless-*` headers and no "
        "`Authorization` header when there is no key. Embeddings always go through the SDK.",
    )
    headers: dict[str, str] = Field(default_factory=dict, description="extra HTTP headers on every request")
    models: list[HostedModel] = Field(default_factory=list, description="models to add to the catalogue")


class OpenAICompatibleConfig(OpenAIConfig):
    """Parameters of an ``openai_compatible`` entry: ``base_url`` is required; a key only if the host needs one.

    ``http_client`` defaults to ``direct`` here: for a self-hosted or OpenAI-compatible host the SDK adds
    nothing the host needs and costs the gateway throughput (docs/gateway.md); ``aiohttp`` / ``httpx`` keep the
    SDK on the request path."""

    base_url: str
    http_client: Literal["aiohttp", "httpx", "direct"] = Field(
        "direct",
        description="how chat completions are sent: `direct` (default for openai_compatible: the plugin speaks the "
        "chat completions wire format over one shared aiohttp session, without the SDK on the request path; same "
        "bodies, error kinds and stream parsing as the SDK, no `x-stainless-*` headers, no `Authorization` header "
        "without a key), or through the SDK over its aiohttp (`aiohttp`) or httpx (`httpx`) client. Embeddings "
        "always go through the SDK.",
    )


class OpenAIProvider(KeyedProvider):
    """The OpenAI API (chat completions, embeddings)."""

    name: ClassVar[str] = "openai"
    Config: ClassVar[type[BaseModel]] = OpenAIConfig
    default_key_env: ClassVar[str | None] = "OPENAI_API_KEY"
    config: OpenAIConfig

    # -- configuration --------------------------------------------------------------------------

    def models(self) -> Sequence[ModelInfo]:
        out = []
        for m in self.config.models:
            out.append(
                ModelInfo(
                    id=f"{self.context.name}/{m.model}",
                    provider=self.context.name,
                    model=m.model,
                    price=ModelPrice(
                        input_per_mtok=m.price.input_per_mtok,
                        output_per_mtok=m.price.output_per_mtok,
                        source=m.price.source,
                    ),
                    context_window=m.context_window,
                    max_output_tokens=m.max_output_tokens or m.context_window,
                    capabilities=m.capabilities,
                    quality=dict(m.quality),
                    ttft_ms=m.ttft_ms,
                    tokens_per_second=m.tokens_per_second,
                )
            )
        return out

    @property
    def _raw_response(self) -> type[Any]:
        """The HTTP response class of the SDK's HTTP library (``cast_to`` for a raw ``post``): ``httpx`` or,
        in recent SDKs, ``httpx2``; found from the SDK's default client class rather than named here."""
        return _sdk_response()

    def warm_up(self) -> None:
        """Import the SDK and its HTTP library now (and aiohttp for the ``aiohttp`` and ``direct`` transports)."""
        _sdk_response()
        if self.config.http_client != "httpx":
            import aiohttp  # noqa: F401

    def client(self) -> openai.AsyncOpenAI:
        """The SDK client for the current key (with ``http_client: direct``, for embeddings only)."""
        return self.keyed_client(self._make_client)

    def direct_client(self) -> DirectClient:
        """The ``http_client: direct`` transport for the current key (made on first use, closed by
        :meth:`aclose`, kept beside the SDK client)."""
        return self.keyed_client(self._make_direct, slot="direct")

    def _make_client(self, key: str | None) -> openai.AsyncOpenAI:
        import openai

        http_client: Any = None
        if self.config.http_client in ("aiohttp", "direct"):
            try:
                http_client = openai.DefaultAioHttpClient()
            except RuntimeError as exc:  # the SDK says which package is missing
                raise ProviderError(
                    f"http_client: aiohttp needs `pip install 'openai[aiohttp]'` ({exc})",
                    provider=self.context.name,
                ) from None
        elif self.config.max_connections:
            import httpx2  # the SDK's own HTTP library

            http_client = openai.DefaultAsyncHttpxClient(
                limits=httpx2.Limits(max_connections=self.config.max_connections)
            )
        return openai.AsyncOpenAI(
            api_key=key or "no-key",
            organization=self.config.organization,
            base_url=self.config.base_url,
            timeout=self.config.timeout_s,
            max_retries=0,
            default_headers=self.config.headers or None,
            http_client=http_client,
        )

    def _make_direct(self, key: str | None) -> DirectClient:
        """What the SDK would send, minus its ``x-stainless-*`` telemetry: like the SDK, ``OPENAI_BASE_URL``,
        ``OPENAI_ORG_ID`` and ``OPENAI_PROJECT_ID`` apply when the policy sets no base URL / organization."""
        from multidict import CIMultiDict

        config = self.config
        base_url = (config.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        headers: CIMultiDict[str] = CIMultiDict(
            {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}
        )
        if key:
            headers["Authorization"] = f"Bearer {key}"
        organization = config.organization or os.environ.get("OPENAI_ORG_ID")
        if organization:
            headers["OpenAI-Organization"] = organization
        project = os.environ.get("OPENAI_PROJECT_ID")
        if project:
            headers["OpenAI-Project"] = project
        for name, value in config.headers.items():
            headers[name] = value  # replaces a default of the same name, whatever its case
        return DirectClient(f"{base_url}/chat/completions", headers, limit=config.max_connections or 0)

    # -- requests ---------------------------------------------------------------------------------

    def _params(self, request: CompletionRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.model,
            "messages": [_message(m) for m in request.messages],
            "timeout": request.timeout_s or self.config.timeout_s,
        }
        if request.max_tokens is not None:
            params["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.stop:
            params["stop"] = list(request.stop)
        if request.response_format is not None:
            params["response_format"] = request.response_format
        if request.tools:
            params["tools"] = list(request.tools)
        if request.tool_choice is not None:
            params["tool_choice"] = request.tool_choice
        if request.extra:
            params["extra_body"] = dict(request.extra)
        return params

    def _body(self, request: CompletionRequest, *, stream: bool = False) -> dict[str, Any]:
        """The JSON body of a chat completion as it goes on the wire: :meth:`_params` without the SDK's
        ``timeout`` option, the stream switches when ``stream``, and ``request.extra`` merged in last (its keys
        win), as the SDK merges ``extra_body``."""
        params = self._params(request)
        del params["timeout"]
        extra = params.pop("extra_body", None)
        if stream:
            params["stream"] = True
            params["stream_options"] = {"include_usage": True}
        if extra:
            params.update(extra)
        return params

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        """One chat completion.

        Through the SDK, the body is sent with its own ``client.post`` (its documented way to make a raw
        request): the SDK still does the HTTP, auth, headers and error types, but skips re-validating a body
        the router has already validated and building typed models of the answer, which halves its cost per
        call (measured: docs/gateway.md). With ``http_client: direct`` the plugin makes the POST itself."""
        if self.config.http_client == "direct":
            return await self._complete_direct(request)
        import openai

        body = self._body(request)
        try:
            response = await self.client().post(
                "/chat/completions",
                cast_to=self._raw_response,
                body=body,
                options={"timeout": request.timeout_s or self.config.timeout_s},
            )
        except openai.OpenAIError as exc:
            raise self._error(exc, request.model) from None
        except (TypeError, ValueError) as exc:  # the body cannot be encoded (e.g. an object or NaN in `extra`)
            raise self._unsendable(exc, request.model) from None
        try:
            data = json.loads(response.content)
        except ValueError:
            raise ServerError("the response is not JSON", provider=self.context.name, model=request.model) from None
        return completion_from_json(
            data, _request_id(response.headers), provider=self.context.name, model=request.model
        )

    async def _complete_direct(self, request: CompletionRequest) -> CompletionResponse:
        import aiohttp

        client = self.direct_client()
        payload = self._encode(request, stream=False)
        try:
            response = await client.session.post(
                client.url, data=payload, timeout=_total_timeout(request.timeout_s or self.config.timeout_s)
            )
        except (aiohttp.ClientError, OSError) as exc:  # OSError includes TimeoutError
            raise self._transport_error(exc, request.model) from None
        try:
            raw = await response.read()
        except (aiohttp.ClientError, OSError) as exc:
            raise self._transport_error(exc, request.model) from None
        finally:
            response.release()
        if not 200 <= response.status < 300:
            raise self._status_error(response.status, response.headers, _json_or_text(raw), request.model)
        try:
            data = _loads(raw)
        except ValueError:
            raise ServerError("the response is not JSON", provider=self.context.name, model=request.model) from None
        return completion_from_json(
            data, _request_id(response.headers), provider=self.context.name, model=request.model
        )

    def stream(self, request: CompletionRequest) -> AsyncIterator[StreamChunk]:
        """The answer in chunks; the last one carries the usage. Closing the iterator early (or cancelling
        the task reading it) closes the upstream request."""
        if self.config.http_client == "direct":
            return self._stream_direct(request)
        return self._stream_sdk(request)

    async def _stream_sdk(self, request: CompletionRequest) -> AsyncIterator[StreamChunk]:
        import openai

        params = {**self._params(request), "stream": True, "stream_options": {"include_usage": True}}
        try:
            raw = await self.client().chat.completions.with_raw_response.create(**params)
            request_id = _request_id(raw.headers)
            stream = raw.parse()
        except openai.OpenAIError as exc:
            raise self._error(exc, request.model) from None
        except (TypeError, ValueError) as exc:
            raise self._unsendable(exc, request.model) from None
        try:
            async for event in stream:
                usage = _usage(event.usage) if getattr(event, "usage", None) else None
                if not event.choices:
                    if usage is not None:
                        yield StreamChunk(usage=usage, request_id=request_id)
                    continue
                choice = event.choices[0]
                delta = choice.delta
                calls = tuple(c.model_dump(exclude_none=True) for c in (delta.tool_calls or ()))
                if delta.content or calls or choice.finish_reason or usage:
                    yield StreamChunk(
                        text=delta.content or "",
                        finish_reason=choice.finish_reason,
                        tool_calls=calls,
                        usage=usage,
                        request_id=request_id,
                    )
        except openai.OpenAIError as exc:
            raise self._error(exc, request.model) from None
        except ValueError:  # an event whose data is not JSON (the SDK lets json's error through)
            raise ServerError(
                "a stream event is not JSON", provider=self.context.name, model=request.model, request_id=request_id
            ) from None
        finally:
            await stream.close()

    async def _stream_direct(self, request: CompletionRequest) -> AsyncIterator[StreamChunk]:
        import aiohttp

        client = self.direct_client()
        payload = self._encode(request, stream=True)
        model = request.model
        try:
            response = await client.session.post(
                client.url, data=payload, timeout=_read_timeout(request.timeout_s or self.config.timeout_s)
            )
        except (aiohttp.ClientError, OSError) as exc:
            raise self._transport_error(exc, model) from None
        try:
            if not 200 <= response.status < 300:
                try:
                    raw = await response.read()
                except (aiohttp.ClientError, OSError) as exc:
                    raise self._transport_error(exc, model) from None
                raise self._status_error(response.status, response.headers, _json_or_text(raw), model)
            request_id = _request_id(response.headers)
            parser = SSEParser()
            try:
                async for data in response.content.iter_any():
                    for event in parser.feed(data):
                        if event.startswith(b"[DONE]"):
                            await _drain(response)
                            return
                        try:
                            obj = _loads(event)
                        except ValueError:
                            raise ServerError(
                                "a stream event is not JSON",
                                provider=self.context.name,
                                model=model,
                                request_id=request_id,
                            ) from None
                        if isinstance(obj, dict) and obj.get("error"):
                            raise stream_error_event(
                                obj["error"], provider=self.context.name, model=model, key=self.api_key()
                            )
                        chunk = chunk_from_json(obj, request_id)
                        if chunk is not None:
                            yield chunk
            except (aiohttp.ClientError, OSError) as exc:
                raise self._transport_error(exc, model) from None
        finally:
            response.release()  # back to the pool when the body was read to its end, else the connection closes

    def _encode(self, request: CompletionRequest, *, stream: bool) -> bytes:
        try:
            return _dumps(self._body(request, stream=stream))
        except (TypeError, ValueError) as exc:
            raise self._unsendable(exc, request.model) from None

    async def embed(self, texts: list[str], model: str) -> list[list[float]]:
        """One embedding vector per text (always through the SDK)."""
        import openai

        try:
            result = await self.client().embeddings.create(input=texts, model=model, encoding_format="float")
        except openai.OpenAIError as exc:
            raise self._error(exc, model) from None
        return [list(d.embedding) for d in sorted(result.data, key=lambda d: d.index)]

    # -- errors -----------------------------------------------------------------------------------

    def _error(self, exc: openai.OpenAIError, model: str) -> ProviderError:
        return map_error(exc, provider=self.context.name, model=model, key=self.api_key(), key_hint=self.key_hint())

    def _status_error(self, status: int, headers: Mapping[str, str], body: object, model: str) -> ProviderError:
        return status_error(
            status, headers, body, provider=self.context.name, model=model, key=self.api_key(), key_hint=self.key_hint()
        )

    def _unsendable(self, exc: Exception, model: str) -> ProviderError:
        """The body cannot be encoded as JSON (the encoder's own words follow)."""
        detail = scrub(f"{type(exc).__name__}: {exc}", self.api_key())
        return BadRequestError(f"the request cannot be sent: {detail}", provider=self.context.name, model=model)

    def _transport_error(self, exc: BaseException, model: str) -> ProviderError:
        """A failure of the direct transport below HTTP: the same kinds the SDK maps its own to."""
        if isinstance(exc, builtins.TimeoutError):  # asyncio's, and aiohttp's ServerTimeoutError family
            return TimeoutError("the request timed out", provider=self.context.name, model=model)
        detail = scrub(str(exc) or type(exc).__name__, self.api_key())
        return ConnectionError(f"could not reach the API: {detail}", provider=self.context.name, model=model)


class DirectClient:
    """The ``http_client: direct`` transport for one API key: the chat completions URL, the headers of every
    request (the key among them: never shown by ``repr``) and one ``aiohttp.ClientSession``, made on first use
    inside the running event loop (and bound to that loop). :meth:`close` closes it; the provider's
    ``aclose()`` calls it.

    Connections: a ``TCPConnector`` with ``limit=max_connections`` (0: unlimited), kept alive between
    requests. Proxies from ``HTTP(S)_PROXY``/``NO_PROXY`` are resolved once here rather than per request
    (aiohttp's ``trust_env`` would look them up in a thread for every request). No cookie jar: requests of
    different callers must not share state."""

    __slots__ = ("_limit", "_proxy", "_proxy_auth", "_session", "headers", "url")

    def __init__(self, url: str, headers: CIMultiDict[str], *, limit: int = 0) -> None:
        from aiohttp.helpers import get_env_proxy_for_url
        from yarl import URL

        self.url = url
        self.headers = headers
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._proxy: URL | None = None
        self._proxy_auth: aiohttp.BasicAuth | None = None
        with contextlib.suppress(LookupError):
            self._proxy, self._proxy_auth = get_env_proxy_for_url(URL(url))

    @property
    def session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            import aiohttp

            session = self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit),
                headers=self.headers,
                cookie_jar=aiohttp.DummyCookieJar(),
                proxy=self._proxy,
                proxy_auth=self._proxy_auth,
            )
        return session

    @property
    def closed(self) -> bool:
        return self._session is None or self._session.closed

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def __repr__(self) -> str:
        return f"DirectClient({self.url!r}, open={not self.closed})"


class SSEParser:
    """Splits a server-sent event stream into the data of its events, incrementally, by the WHATWG rules the
    openai SDK follows: a line ends with LF, CRLF or CR; ``data:`` lines (one space after the colon dropped)
    of an event are joined with LF; a blank line ends the event; comments (``:``) and the other fields
    (``event``, ``id``, ``retry``) are ignored. An event without data is skipped; one cut off by the end of the
    stream is dropped."""

    __slots__ = ("_data", "_skip_lf", "_tail")

    def __init__(self) -> None:
        self._tail = b""
        self._data: list[bytes] = []
        self._skip_lf = False

    def feed(self, chunk: bytes) -> list[bytes]:
        """The data of every event ``chunk`` completes (usually one)."""
        if self._skip_lf and chunk:  # the previous chunk ended with CR: an LF here completes that CRLF
            self._skip_lf = False
            if chunk[0] == 10:
                chunk = chunk[1:]
        buf = self._tail + chunk if self._tail else chunk
        if b"\r" in buf:
            self._skip_lf = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, self._tail = buf.split(b"\n")
        events: list[bytes] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(b"\n".join(self._data))
                    self._data = []
            elif line.startswith(b"data"):
                name, _, value = line.partition(b":")
                if name == b"data":
                    self._data.append(value[1:] if value.startswith(b" ") else value)
        return events


def _message(m: Message) -> dict[str, Any]:
    """``m`` as the API's message object: ``m.model_dump(exclude_none=True)``, built by hand for the usual text
    message (a fifth of the cost)."""
    if type(m) is Message and type(m.content) is str and m.tool_calls is None:
        out: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.name is not None:
            out["name"] = m.name
        if m.tool_call_id is not None:
            out["tool_call_id"] = m.tool_call_id
        return out
    return m.model_dump(exclude_none=True)


@functools.cache
def _sdk_response() -> type[Any]:
    import openai

    module = next(k.__module__ for k in openai.DefaultAsyncHttpxClient.__mro__ if k.__name__ == "AsyncClient")
    response: type[Any] = import_module(module.split(".")[0]).Response
    return response


def _request_id(headers: Mapping[str, str]) -> str | None:
    return headers.get("x-request-id") or headers.get("request-id")


@functools.lru_cache(maxsize=32)
def _total_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """A whole request (connection, answer and body) within ``seconds``."""
    import aiohttp

    return aiohttp.ClientTimeout(total=seconds)


@functools.lru_cache(maxsize=32)
def _read_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """A stream: a connection within ``seconds``, then no more than ``seconds`` of silence between reads (the
    SDK's semantics; a total limit would cut long answers off)."""
    import aiohttp

    return aiohttp.ClientTimeout(total=None, connect=seconds, sock_read=seconds)


async def _drain(response: aiohttp.ClientResponse) -> None:
    """Read what follows ``[DONE]`` (normally only the end of the chunked body) so that the connection can be
    reused; give up after ``_DRAIN_S`` (the connection is then closed)."""
    import aiohttp

    if response.content.at_eof():
        return
    with contextlib.suppress(aiohttp.ClientError, OSError):  # OSError includes the timeout
        async with asyncio.timeout(_DRAIN_S):
            await response.content.read()


def _json_or_text(raw: bytes) -> object:
    """An error answer's body as the SDK keeps it: the parsed JSON, else the (stripped) text."""
    try:
        return _loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()


def completion_from_json(data: Any, request_id: str | None, *, provider: str, model: str) -> CompletionResponse:
    """A :class:`CompletionResponse` from a ``chat.completion`` object (both transports)."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices:
        raise ServerError("the response has no choices", provider=provider, model=model, request_id=request_id)
    choice = choices[0]
    message = choice.get("message") or {}
    tool_calls = tuple(
        ToolCall(id=c.get("id", ""), name=c["function"].get("name", ""), arguments=c["function"].get("arguments", ""))
        for c in (message.get("tool_calls") or ())
        if c.get("function")
    )
    usage = data.get("usage")
    return CompletionResponse(
        text=message.get("content") or "",
        model=data.get("model") or model,
        finish_reason=choice.get("finish_reason"),
        tool_calls=tool_calls,
        usage=Usage(input_tokens=usage.get("prompt_tokens") or 0, output_tokens=usage.get("completion_tokens") or 0)
        if usage
        else None,
        request_id=request_id,
        raw=data,
    )


def chunk_from_json(data: Any, request_id: str | None) -> StreamChunk | None:
    """The :class:`StreamChunk` of one ``chat.completion.chunk`` event, or ``None`` when it carries nothing
    (the direct transport; the SDK path builds the same chunks from the SDK's models)."""
    if not isinstance(data, dict):
        return None
    raw_usage = data.get("usage")
    usage = (
        Usage(input_tokens=raw_usage.get("prompt_tokens") or 0, output_tokens=raw_usage.get("completion_tokens") or 0)
        if isinstance(raw_usage, dict)
        else None
    )
    choices = data.get("choices")
    if not choices:
        return StreamChunk(usage=usage, request_id=request_id) if usage is not None else None
    choice = choices[0]
    delta = choice.get("delta") or {}
    content = delta.get("content")
    calls = tuple(_without_none(c) for c in (delta.get("tool_calls") or ()) if isinstance(c, dict))
    finish_reason = choice.get("finish_reason")
    if content or calls or finish_reason or usage:
        return StreamChunk(
            text=content or "", finish_reason=finish_reason, tool_calls=calls, usage=usage, request_id=request_id
        )
    return None


def _without_none(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` without ``None`` values, nested dicts included (what ``model_dump(exclude_none=True)`` gives)."""
    return {k: _without_none(v) if isinstance(v, dict) else v for k, v in d.items() if v is not None}


def _usage(usage: Any) -> Usage | None:
    if usage is None:
        return None
    return Usage(input_tokens=usage.prompt_tokens or 0, output_tokens=usage.completion_tokens or 0)


def stream_error_event(error: object, *, provider: str, model: str, key: str | None) -> ProviderError:
    """The error for a stream event carrying ``error`` (a data event ``{"error": {...}}``): the SDK raises
    its plain ``APIError`` for it, which :func:`map_error` turns into a :class:`ProviderError` named after
    it; the direct transport gives the same."""
    message = error.get("message") if isinstance(error, Mapping) else None
    if not message or not isinstance(message, str):
        message = "An error occurred during streaming"  # the SDK's words
    return ProviderError(scrub(f"APIError: {message}", key), provider=provider, model=model)


def map_error(exc: Exception, *, provider: str, model: str, key: str | None, key_hint: str) -> ProviderError:
    """The core's error kind for an OpenAI SDK failure (no secret in the message)."""
    import openai

    kw: dict[str, Any] = {"provider": provider, "model": model}
    if isinstance(exc, openai.APITimeoutError):
        if _failed_to_connect(exc):  # what the SDK over httpx says for the same failure
            return ConnectionError("could not reach the API: Connection error.", **kw)
        return TimeoutError("the request timed out", **kw)
    if isinstance(exc, openai.APIConnectionError):
        return ConnectionError(f"could not reach the API: {scrub(str(exc), key)}", **kw)
    if not isinstance(exc, openai.APIStatusError):
        return ProviderError(scrub(f"{type(exc).__name__}: {exc}", key), **kw)
    return status_error(
        exc.status_code, exc.response.headers, exc.body, provider=provider, model=model, key=key, key_hint=key_hint
    )


def _failed_to_connect(exc: BaseException) -> bool:
    """Whether a timeout the SDK reports is a connection that failed without timing out (refused, reset,
    closed by the server, DNS).

    The SDK's aiohttp transport (``openai._vendor.httpx_aiohttp``) maps every ``aiohttp.ClientConnectionError``
    to ``httpx.ConnectTimeout``, a refused connection included (its table picks the most derived *target*
    class, and ``ConnectError`` does not derive from ``ConnectTimeout``), so the SDK raises ``APITimeoutError``
    for it. The aiohttp error is still the cause of the cause: when it is not a timeout itself, the router
    sees a ``ConnectionError``, as with the httpx client and the direct transport."""
    try:
        import aiohttp
    except ImportError:  # the httpx client: its errors are mapped as they are
        return False
    return any(
        isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(cause, builtins.TimeoutError)
        for cause in causes(exc)
    )


def status_error(
    status: int,
    headers: Mapping[str, str],
    body: object,
    *,
    provider: str,
    model: str,
    key: str | None,
    key_hint: str,
) -> ProviderError:
    """The core's error kind for an HTTP error answer (both transports; no secret in the message).

    ``body`` is the answer's parsed JSON (``{"error": {"message", "type", "code", ...}}``, or the inner error
    object as the SDK keeps it), else its text; ``headers`` give the request id and ``retry-after``."""
    kw: dict[str, Any] = {
        "provider": provider,
        "model": model,
        "status_code": status,
        "request_id": _request_id(headers),
    }
    body = body if isinstance(body, dict) else {}
    err = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    code = str(err.get("code") or "")
    message = scrub(str(err.get("message") or f"Error code: {status}"), key)
    if status == 401:
        return AuthenticationError(f"{message} ({key_hint})", **kw)
    if status == 403:
        return PermissionDeniedError(message, **kw)
    if status == 429:
        if code == "insufficient_quota":
            return PermissionDeniedError(message, **kw)
        return RateLimitError(message, retry_after_s=retry_after_from_headers(headers), **kw)
    if status in (400, 413, 422):
        lowered = message.lower()
        if (
            code == "context_length_exceeded"
            or "context length" in lowered
            or "context_length" in lowered
            or "too many tokens" in lowered
            or status == 413
        ):
            return ContextLengthExceededError(message, **kw)
        if code == "content_filter" or "content management policy" in lowered:
            return ContentFilteredError(message, **kw)
        return BadRequestError(message, **kw)
    if status == 408:
        return TimeoutError(message, **kw)
    if status >= 500:
        return ServerError(message, **kw)
    return BadRequestError(message, **kw) if 400 <= status < 500 else ProviderError(message, **kw)


class OpenAICompatibleProvider(OpenAIProvider):
    """Any host speaking the OpenAI chat completions wire format. ``base_url`` is required; a key is
    needed only if ``api_key`` or ``api_key_env`` is set (local servers usually take none)."""

    name: ClassVar[str] = "openai_compatible"
    Config: ClassVar[type[BaseModel]] = OpenAICompatibleConfig
    default_key_env: ClassVar[str | None] = None

    def unavailable_reason(self) -> str | None:
        if (self.config.api_key is not None or self.config.api_key_env) and self.api_key() is None:
            return self.key_hint()
        return None
