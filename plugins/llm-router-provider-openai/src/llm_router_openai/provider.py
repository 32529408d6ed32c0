"""OpenAI chat completions (and embeddings) through ``openai.AsyncOpenAI``.

``openai`` talks to api.openai.com; ``openai_compatible`` to any host speaking the same wire format
(vLLM, llama.cpp server, Ollama, Groq, Together, OpenRouter, Gemini's OpenAI endpoint). A policy may declare
several such hosts under different names, each contributing its own models to the catalogue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from importlib import import_module
from typing import Any, ClassVar, Literal

import openai
from llm_router.components import ApiKeyConfig, KeyedProvider
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

__all__ = ["HostedModel", "OpenAICompatibleProvider", "OpenAIConfig", "OpenAIProvider"]

log = logging.getLogger("llm_router_openai")


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
    http_client: Literal["aiohttp", "httpx"] = Field(
        "aiohttp",
        description="the SDK's HTTP client: its aiohttp-backed one (default: measured ~20 % less time per call "
        "than httpx, see docs/gateway.md) or its httpx one",
    )
    headers: dict[str, str] = Field(default_factory=dict, description="extra HTTP headers on every request")
    models: list[HostedModel] = Field(default_factory=list, description="models to add to the catalogue")


class OpenAICompatibleConfig(OpenAIConfig):
    """Parameters of an ``openai_compatible`` entry: ``base_url`` is required; a key only if the host needs one."""

    base_url: str


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
        return _SDK_RESPONSE

    def client(self) -> openai.AsyncOpenAI:
        return self.keyed_client(self._make_client)

    def _make_client(self, key: str | None) -> openai.AsyncOpenAI:
        http_client: Any = None
        if self.config.http_client == "aiohttp":
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

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        """One chat completion.

        The body is sent with the SDK's own ``client.post`` (its documented way to make a raw request): the
        SDK still does the HTTP, auth, headers and error types, but skips re-validating a body the router has
        already validated and building typed models of the answer, which halves its cost per call
        (measured: docs/gateway.md)."""
        params = self._params(request)
        timeout = params.pop("timeout")
        body = {**params, **params.pop("extra_body", {})}
        try:
            response = await self.client().post(
                "/chat/completions", cast_to=self._raw_response, body=body, options={"timeout": timeout}
            )
            data = json.loads(response.content)
        except openai.OpenAIError as exc:
            raise self._error(exc, request.model) from None
        except ValueError:
            raise ServerError("the response is not JSON", provider=self.context.name, model=request.model) from None
        request_id = response.headers.get("x-request-id") or response.headers.get("request-id")
        choices = data.get("choices") or []
        if not choices:
            raise ServerError(
                "the response has no choices",
                provider=self.context.name,
                model=request.model,
                request_id=request_id,
            )
        choice = choices[0]
        message = choice.get("message") or {}
        tool_calls = tuple(
            ToolCall(
                id=c.get("id", ""), name=c["function"].get("name", ""), arguments=c["function"].get("arguments", "")
            )
            for c in (message.get("tool_calls") or ())
            if c.get("function")
        )
        usage = data.get("usage")
        return CompletionResponse(
            text=message.get("content") or "",
            model=data.get("model") or request.model,
            finish_reason=choice.get("finish_reason"),
            tool_calls=tool_calls,
            usage=Usage(input_tokens=usage.get("prompt_tokens") or 0, output_tokens=usage.get("completion_tokens") or 0)
            if usage
            else None,
            request_id=request_id,
            raw=data,
        )

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamChunk]:
        params = {**self._params(request), "stream": True, "stream_options": {"include_usage": True}}
        try:
            raw = await self.client().chat.completions.with_raw_response.create(**params)
            request_id = raw.headers.get("x-request-id") or raw.headers.get("request-id")
            stream = raw.parse()
        except openai.OpenAIError as exc:
            raise self._error(exc, request.model) from None
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
        finally:
            await stream.close()

    async def embed(self, texts: list[str], model: str) -> list[list[float]]:
        """One embedding vector per text."""
        try:
            result = await self.client().embeddings.create(input=texts, model=model, encoding_format="float")
        except openai.OpenAIError as exc:
            raise self._error(exc, model) from None
        return [list(d.embedding) for d in sorted(result.data, key=lambda d: d.index)]

    # -- errors -----------------------------------------------------------------------------------

    def _error(self, exc: openai.OpenAIError, model: str) -> ProviderError:
        return map_error(exc, provider=self.context.name, model=model, key=self.api_key(), key_hint=self.key_hint())


def _message(m: Message) -> dict[str, Any]:
    return m.model_dump(exclude_none=True)


_SDK_RESPONSE: type[Any] = import_module(
    next(k.__module__ for k in openai.DefaultAsyncHttpxClient.__mro__ if k.__name__ == "AsyncClient").split(".")[0]
).Response


def _usage(usage: Any) -> Usage | None:
    if usage is None:
        return None
    return Usage(input_tokens=usage.prompt_tokens or 0, output_tokens=usage.completion_tokens or 0)


def map_error(exc: Exception, *, provider: str, model: str, key: str | None, key_hint: str) -> ProviderError:
    """The core's error kind for an OpenAI SDK failure (no secret in the message)."""
    kw: dict[str, Any] = {"provider": provider, "model": model}
    if isinstance(exc, openai.APITimeoutError):
        return TimeoutError("the request timed out", **kw)
    if isinstance(exc, openai.APIConnectionError):
        return ConnectionError(f"could not reach the API: {scrub(str(exc), key)}", **kw)
    if not isinstance(exc, openai.APIStatusError):
        return ProviderError(scrub(f"{type(exc).__name__}: {exc}", key), **kw)
    status = exc.status_code
    headers = exc.response.headers
    kw["status_code"] = status
    kw["request_id"] = exc.request_id or headers.get("x-request-id") or headers.get("request-id")
    body = exc.body if isinstance(exc.body, dict) else {}
    err = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    code = str(err.get("code") or "")
    message = scrub(str(err.get("message") or exc.message), key)
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
