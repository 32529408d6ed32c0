"""Cohere v2 chat (and embed) through ``cohere.AsyncClientV2``.

The SDK (and httpx, its HTTP library) is imported when first needed (the first client made, the first error
mapped), never when the plugin is registered or a provider is created: routing a prompt does not pay for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from llm_router import ApiKeyConfig, KeyedProvider
from llm_router.errors import (
    AuthenticationError,
    BadRequestError,
    ConnectionError,
    ContextLengthExceededError,
    PermissionDeniedError,
    ProviderError,
    RateLimitError,
    ServerError,
    TimeoutError,
    retry_after_from_headers,
    scrub,
)
from llm_router.types import CompletionRequest, CompletionResponse, Message, StreamChunk, ToolCall, Usage
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import cohere

__all__ = ["CohereConfig", "CohereProvider"]

KEY_ENV = "CO_API_KEY"
FINISH = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR": "error",
    "TIMEOUT": "error",
}


class CohereConfig(ApiKeyConfig):
    """Parameters of a ``cohere`` provider entry."""

    model_config = ConfigDict(extra="forbid")
    base_url: str | None = None
    timeout_s: float = Field(60.0, gt=0)
    embed_input_type: str = "search_document"


class CohereProvider(KeyedProvider):
    name: ClassVar[str] = "cohere"
    default_key_env: ClassVar[str | None] = KEY_ENV
    Config: ClassVar[type[BaseModel]] = CohereConfig
    config: CohereConfig

    def warm_up(self) -> None:
        """Import the SDK and httpx now."""
        import cohere  # noqa: F401

        _sdk_errors()

    def client(self) -> cohere.AsyncClientV2:
        return self.keyed_client(self._make_client)

    def _make_client(self, key: str | None) -> cohere.AsyncClientV2:
        import cohere

        kwargs: dict[str, Any] = {"api_key": key or "no-key", "timeout": self.config.timeout_s, "max_retries": 0}
        if self.config.base_url:
            kwargs["base_url"] = self.config.base_url
        return cohere.AsyncClientV2(**kwargs)

    def _params(self, request: CompletionRequest) -> dict[str, Any]:
        timeout = request.timeout_s or self.config.timeout_s
        params: dict[str, Any] = {
            "model": request.model,
            "messages": [to_cohere_message(m) for m in request.messages],
            "request_options": {"timeout_in_seconds": timeout, "max_retries": 0},
        }
        if request.max_tokens is not None:
            params["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.stop:
            params["stop_sequences"] = list(request.stop)
        if request.response_format:
            fmt = dict(request.response_format)
            if fmt.get("type") == "json_schema":  # OpenAI's {"json_schema": {"schema": ...}} → Cohere's json_object
                fmt = {"type": "json_object", "json_schema": (fmt.get("json_schema") or {}).get("schema")}
            params["response_format"] = fmt
        if request.tools:
            params["tools"] = list(request.tools)
        if request.tool_choice in ("required", "none"):
            params["tool_choice"] = str(request.tool_choice).upper()
        return params

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        try:
            raw = await self.client().with_raw_response.chat(**self._params(request))
        except _sdk_errors() as exc:
            raise self._error(exc, request.model) from None
        response = raw.data
        request_id = raw.headers.get("x-request-id") or response.id
        message = response.message
        text = "".join(getattr(part, "text", "") or "" for part in (message.content or ()))
        calls = tuple(
            ToolCall(id=c.id or "", name=c.function.name or "", arguments=c.function.arguments or "{}")
            for c in (message.tool_calls or ())
            if c.function is not None
        )
        reason = str(response.finish_reason) if response.finish_reason else None
        return CompletionResponse(
            text=text,
            model=request.model,
            finish_reason=FINISH.get(reason or "", reason),
            tool_calls=calls,
            usage=_usage(response.usage),
            request_id=request_id,
            raw=response.model_dump(exclude_none=True),
        )

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamChunk]:
        events = self.client().chat_stream(**self._params(request))
        request_id: str | None = None
        try:
            async for event in events:
                kind = event.type
                if kind == "message-start":
                    request_id = getattr(event, "id", None)
                elif kind == "content-delta":
                    content = event.delta.message.content if event.delta and event.delta.message else None
                    text = getattr(content, "text", None) or ""
                    if text:
                        yield StreamChunk(text=text, request_id=request_id)
                elif kind in ("tool-call-start", "tool-call-delta"):
                    call = event.delta.message.tool_calls if event.delta and event.delta.message else None
                    if call is not None:
                        data = call.model_dump(exclude_none=True)
                        data["index"] = event.index
                        yield StreamChunk(tool_calls=(data,), request_id=request_id)
                elif kind == "message-end":
                    delta = event.delta
                    reason = str(delta.finish_reason) if delta and delta.finish_reason else None
                    yield StreamChunk(
                        finish_reason=FINISH.get(reason or "", reason),
                        usage=_usage(delta.usage if delta else None),
                        request_id=request_id,
                    )
        except _sdk_errors() as exc:
            raise self._error(exc, request.model) from None
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    async def embed(self, texts: list[str], model: str) -> list[list[float]]:
        """One embedding vector per text (``embed_input_type`` from the config)."""
        try:
            response = await self.client().embed(
                model=model,
                texts=texts,
                input_type=self.config.embed_input_type,
                embedding_types=["float"],
                request_options={"timeout_in_seconds": self.config.timeout_s, "max_retries": 0},
            )
        except _sdk_errors() as exc:
            raise self._error(exc, model) from None
        vectors = response.embeddings.float_ or []
        return [list(v) for v in vectors]

    def _error(self, exc: Exception, model: str) -> ProviderError:
        return map_error(exc, provider=self.context.name, model=model, key=self.api_key(), key_hint=self.key_hint())


def to_cohere_message(m: Message) -> dict[str, Any]:
    """An OpenAI-style message as a Cohere v2 chat message (the shapes are close)."""
    role = "system" if m.role == "developer" else m.role
    out: dict[str, Any] = {"role": role}
    if m.role == "tool":
        out["tool_call_id"] = m.tool_call_id or ""
        out["content"] = m.text()
        return out
    if m.content is not None:
        out["content"] = m.content
    if m.role == "assistant" and m.tool_calls:
        out["tool_calls"] = [dict(c) for c in m.tool_calls]
    return out


def _usage(usage: Any) -> Usage | None:
    if usage is None:
        return None
    units = usage.billed_units or usage.tokens
    if units is None:
        return None
    return Usage(input_tokens=int(units.input_tokens or 0), output_tokens=int(units.output_tokens or 0))


def _sdk_errors() -> tuple[type[Exception], ...]:
    """What the SDK raises: its ``ApiError`` (an HTTP error answer) and httpx's errors (no answer)."""
    import httpx
    from cohere.core.api_error import ApiError

    return ApiError, httpx.HTTPError


def map_error(exc: Exception, *, provider: str, model: str, key: str | None, key_hint: str) -> ProviderError:
    """The core's error kind for a Cohere SDK failure (no secret in the message)."""
    import httpx
    from cohere.core.api_error import ApiError

    kw: dict[str, Any] = {"provider": provider, "model": model}
    if isinstance(exc, httpx.TimeoutException):
        return TimeoutError("the request timed out", **kw)
    if isinstance(exc, httpx.HTTPError):
        return ConnectionError(f"could not reach the API: {type(exc).__name__}", **kw)
    if not isinstance(exc, ApiError) or exc.status_code is None:
        return ProviderError(scrub(f"{type(exc).__name__}", key), **kw)
    status = exc.status_code
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    body = exc.body if isinstance(exc.body, dict) else {}
    message = scrub(str(body.get("message") or exc.body or f"HTTP {status}"), key)
    kw["status_code"] = status
    kw["request_id"] = headers.get("x-request-id") or headers.get("x-debug-trace-id") or body.get("id")
    if status == 401:
        return AuthenticationError(f"{message} ({key_hint})", **kw)
    if status == 403:
        return PermissionDeniedError(message, **kw)
    if status == 429:
        return RateLimitError(message, retry_after_s=retry_after_from_headers(headers), **kw)
    lowered = message.lower()
    if status in (400, 413, 422) and ("too many tokens" in lowered or ("context" in lowered and "length" in lowered)):
        return ContextLengthExceededError(message, **kw)
    if status in (408, 504):
        return TimeoutError(message, **kw)
    if status >= 500:
        return ServerError(message, **kw)
    return BadRequestError(message, **kw)
