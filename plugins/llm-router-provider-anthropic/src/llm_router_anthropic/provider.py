"""The Anthropic Messages API through ``anthropic.AsyncAnthropic``.

Requests arrive OpenAI-style (system messages, ``tool_calls``, ``tool`` messages, function tools); this
module translates them to the Messages API (``system`` parameter, content blocks, ``tool_use`` /
``tool_result`` blocks, required ``max_tokens``) and the answers back.

Requests go through the SDK over its aiohttp-backed client or its httpx one (``http_client``); both give the same
answers and the same error kinds (:func:`map_error`).

The SDK is imported when first needed (the first client made, the first error mapped), never when the plugin is
registered or a provider is created: routing a prompt does not pay for it.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Mapping
from functools import cache, lru_cache
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from llm_router import ApiKeyConfig, Catalogue, KeyedProvider
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
    causes,
    retry_after_from_headers,
    scrub,
)
from llm_router.types import CompletionRequest, CompletionResponse, Message, StreamChunk, ToolCall, Usage
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import anthropic

__all__ = ["AnthropicConfig", "AnthropicProvider"]

KEY_ENV = "ANTHROPIC_API_KEY"
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}
JSON_INSTRUCTION = "Respond with a single JSON value only, with no text before or after it."


@cache
def _sdk_http() -> ModuleType:
    """The SDK's HTTP library (``httpx`` or, in recent SDKs, ``httpx2``), found from its default client class
    rather than named here: a stream's body is read after the SDK has returned it, so a connection lost or a read
    timing out mid-stream surfaces as that library's TransportError, not as an SDK error."""
    import anthropic

    module = next(k.__module__ for k in anthropic.DefaultAsyncHttpxClient.__mro__ if k.__name__ == "AsyncClient")
    return import_module(module.split(".")[0])


class AnthropicConfig(ApiKeyConfig):
    """Parameters of an ``anthropic`` provider entry."""

    model_config = ConfigDict(extra="forbid")
    base_url: str | None = None
    timeout_s: float = Field(60.0, gt=0)
    max_tokens: int | None = Field(None, gt=0, description="default max_tokens (default: the catalogue's, else 4096)")
    max_connections: int | None = Field(
        None, gt=0, description="connections per key at most (default: the SDK's limit, 1000)"
    )
    http_client: Literal["aiohttp", "httpx"] = Field(
        "aiohttp",
        description="the SDK's HTTP client: its aiohttp-backed one (default: measured ~27 % less CPU per call and "
        "~32 % less per streamed request than httpx, see docs/gateway.md; needs the `anthropic[aiohttp]` extra, "
        "a dependency of this plugin) or its httpx one. Both send the same requests and give the same answers "
        "and error kinds.",
    )
    headers: dict[str, str] = Field(default_factory=dict)


@lru_cache(maxsize=1)
def _catalogue() -> Catalogue:
    return Catalogue.builtin()


class AnthropicProvider(KeyedProvider):
    name: ClassVar[str] = "anthropic"
    default_key_env: ClassVar[str | None] = KEY_ENV
    Config: ClassVar[type[BaseModel]] = AnthropicConfig
    config: AnthropicConfig

    def warm_up(self) -> None:
        """Import the SDK and its HTTP library now (and aiohttp for ``http_client: aiohttp``)."""
        _sdk_http()
        if self.config.http_client == "aiohttp":
            with contextlib.suppress(ImportError):  # a missing extra is reported by the first call
                import aiohttp  # noqa: F401

    def client(self) -> anthropic.AsyncAnthropic:
        """The SDK client for the current key (made on first use, closed by :meth:`aclose`)."""
        return self.keyed_client(self._make_client)

    def _make_client(self, key: str | None) -> anthropic.AsyncAnthropic:
        import anthropic

        options: dict[str, Any] = {}
        if self.config.max_connections:
            limits = anthropic.DEFAULT_CONNECTION_LIMITS  # an instance of the SDK's own HTTP library's Limits
            options["limits"] = type(limits)(
                max_connections=self.config.max_connections,
                max_keepalive_connections=min(self.config.max_connections, limits.max_keepalive_connections or 100),
                keepalive_expiry=limits.keepalive_expiry,
            )
        http_client: Any = None
        if self.config.http_client == "aiohttp":
            make = getattr(anthropic, "DefaultAioHttpClient", None)  # anthropic >= 0.55
            try:
                if make is None:
                    raise RuntimeError(f"anthropic {anthropic.__version__} has no aiohttp client")
                http_client = make(**options)
            except RuntimeError as exc:  # the SDK says which package is missing
                raise ProviderError(
                    f"http_client: aiohttp needs `pip install 'anthropic[aiohttp]>=0.55'` ({exc})",
                    provider=self.context.name,
                ) from None
        elif options:
            http_client = anthropic.DefaultAsyncHttpxClient(**options)
        return anthropic.AsyncAnthropic(
            api_key=key or "no-key",
            base_url=self.config.base_url,
            timeout=self.config.timeout_s,
            max_retries=0,
            default_headers=self.config.headers or None,
            http_client=http_client,
        )

    def default_max_tokens(self, model: str) -> int:
        if self.config.max_tokens:
            return self.config.max_tokens
        info = _catalogue().get(f"anthropic/{model}")
        return info.max_output_tokens if info is not None else 4096

    def _params(self, request: CompletionRequest) -> dict[str, Any]:
        system, messages = to_anthropic_messages(request.messages)
        if request.response_format and request.response_format.get("type") in ("json_object", "json_schema"):
            schema = (request.response_format.get("json_schema") or {}).get("schema")
            extra = f" It must match this JSON Schema: {json.dumps(schema)}" if schema else ""
            system = f"{system}\n\n{JSON_INSTRUCTION}{extra}".strip()
        params: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "max_tokens": request.max_tokens or self.default_max_tokens(request.model),
            "timeout": request.timeout_s or self.config.timeout_s,
        }
        if system:
            params["system"] = system
        extra_body: dict[str, Any] = dict(request.extra)
        if request.temperature is not None:
            # the wire API takes temperature in [0, 1]; recent SDKs no longer name it, so it rides in the body
            extra_body["temperature"] = min(request.temperature, 1.0)
        if request.stop:
            params["stop_sequences"] = list(request.stop)
        if request.tools:
            params["tools"] = [to_anthropic_tool(t) for t in request.tools]
        if request.tool_choice is not None and request.tools:
            choice = to_anthropic_tool_choice(request.tool_choice)
            if choice is not None:
                params["tool_choice"] = choice
        if extra_body:
            params["extra_body"] = extra_body
        return params

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        import anthropic

        try:
            raw = await self.client().messages.with_raw_response.create(**self._params(request))
            message = await raw.parse()
        except anthropic.AnthropicError as exc:
            raise self._error(exc, request.model) from None
        texts, calls = [], []
        for block in message.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                calls.append(ToolCall(id=block.id, name=block.name, arguments=json.dumps(block.input)))
        return CompletionResponse(
            text="".join(texts),
            model=message.model or request.model,
            finish_reason=FINISH.get(str(message.stop_reason), message.stop_reason),
            tool_calls=tuple(calls),
            usage=Usage(input_tokens=message.usage.input_tokens, output_tokens=message.usage.output_tokens),
            request_id=raw.headers.get("request-id") or getattr(message, "_request_id", None),
            raw=message.model_dump(exclude_none=True),
        )

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamChunk]:
        import anthropic

        try:
            raw = await self.client().messages.with_raw_response.create(**self._params(request), stream=True)
            request_id = raw.headers.get("request-id")
            stream = await raw.parse()
        except anthropic.AnthropicError as exc:
            raise self._error(exc, request.model) from None
        input_tokens = 0
        tool_index: dict[int, int] = {}
        try:
            async for event in stream:
                if event.type == "message_start":
                    input_tokens = event.message.usage.input_tokens or 0
                elif event.type == "content_block_start" and event.content_block.type == "tool_use":
                    position = tool_index.setdefault(event.index, len(tool_index))
                    yield StreamChunk(
                        tool_calls=(
                            {
                                "index": position,
                                "id": event.content_block.id,
                                "type": "function",
                                "function": {"name": event.content_block.name, "arguments": ""},
                            },
                        ),
                        request_id=request_id,
                    )
                elif event.type == "content_block_delta":
                    if event.delta.type == "text_delta":
                        yield StreamChunk(text=event.delta.text, request_id=request_id)
                    elif event.delta.type == "input_json_delta":
                        yield StreamChunk(
                            tool_calls=(
                                {
                                    "index": tool_index.get(event.index, 0),
                                    "function": {"arguments": event.delta.partial_json},
                                },
                            ),
                            request_id=request_id,
                        )
                elif event.type == "message_delta":
                    reason = event.delta.stop_reason
                    yield StreamChunk(
                        finish_reason=FINISH.get(str(reason), reason),
                        usage=Usage(input_tokens=input_tokens, output_tokens=event.usage.output_tokens),
                        request_id=request_id,
                    )
        except anthropic.AnthropicError as exc:
            raise self._error(exc, request.model) from None
        except _sdk_http().TransportError as exc:  # the connection broke or a read timed out mid-stream
            raise stream_transport_error(
                exc, provider=self.context.name, model=request.model, key=self.api_key(), request_id=request_id
            ) from None
        finally:
            await stream.close()

    def _error(self, exc: anthropic.AnthropicError, model: str) -> ProviderError:
        return map_error(exc, provider=self.context.name, model=model, key=self.api_key(), key_hint=self.key_hint())


# --------------------------------------------------------------------------------------------------
# translation


def _text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _content_blocks(content: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [_text_block(content)] if content else []
    blocks = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            blocks.append(_text_block(str(part.get("text", ""))))
        elif kind == "image_url":
            url = str((part.get("image_url") or {}).get("url", ""))
            if url.startswith("data:") and ";base64," in url:
                media_type, data = url[5:].split(";base64,", 1)
                blocks.append({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
            else:
                blocks.append({"type": "image", "source": {"type": "url", "url": url}})
        else:
            blocks.append(dict(part))
    return blocks


def to_anthropic_messages(messages: tuple[Message, ...] | list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """The system prompt and the Messages API ``messages`` for OpenAI-style messages."""
    system: list[str] = []
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if out and out[-1]["role"] == role:  # the API wants user and assistant turns to alternate
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for m in messages:
        if m.role in ("system", "developer"):
            system.append(m.text())
        elif m.role == "tool":
            add("user", [{"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.text()}])
        elif m.role == "assistant":
            blocks = _content_blocks(m.content)
            for call in m.tool_calls or ():
                fn = call.get("function") or {}
                try:
                    arguments = json.loads(fn.get("arguments") or "{}")
                except ValueError:
                    arguments = {"_raw": fn.get("arguments")}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": fn.get("name", ""),
                        "input": arguments,
                    }
                )
            add("assistant", blocks)
        else:
            add("user", _content_blocks(m.content))
    return "\n\n".join(s for s in system if s), out


def to_anthropic_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI-style function tool as an Anthropic tool (other shapes pass through unchanged)."""
    if tool.get("type") == "function" and "function" in tool:
        fn = tool["function"]
        out = {
            "name": fn["name"],
            "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
        }
        if fn.get("description"):
            out["description"] = fn["description"]
        return out
    return dict(tool)


def to_anthropic_tool_choice(choice: str | Mapping[str, Any]) -> dict[str, Any] | None:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, Mapping):
        if choice.get("type") == "function":
            return {"type": "tool", "name": choice["function"]["name"]}
        return dict(choice)
    return None


# --------------------------------------------------------------------------------------------------
# errors


def map_error(exc: Exception, *, provider: str, model: str, key: str | None, key_hint: str) -> ProviderError:
    """The core's error kind for an Anthropic SDK failure (no secret in the message)."""
    import anthropic

    kw: dict[str, Any] = {"provider": provider, "model": model}
    if isinstance(exc, anthropic.APITimeoutError):
        if _failed_to_connect(exc):  # what the SDK says for a connection error, whichever transport failed
            return ConnectionError("could not reach the API: Connection error.", **kw)
        return TimeoutError("the request timed out", **kw)
    if isinstance(exc, anthropic.APIConnectionError):
        return ConnectionError(f"could not reach the API: {scrub(str(exc), key)}", **kw)
    if not isinstance(exc, anthropic.APIStatusError):
        return ProviderError(scrub(f"{type(exc).__name__}: {exc}", key), **kw)
    status = exc.status_code
    headers = exc.response.headers
    body = exc.body if isinstance(exc.body, dict) else {}
    err = body.get("error") if isinstance(body.get("error"), dict) else {}
    kind = str(err.get("type") or "")
    message = scrub(str(err.get("message") or exc.message), key)
    kw["status_code"] = status
    kw["request_id"] = exc.request_id or headers.get("request-id") or body.get("request_id")
    if status == 401 or kind == "authentication_error":
        return AuthenticationError(f"{message} ({key_hint})", **kw)
    if status == 403 or kind == "permission_error":
        return PermissionDeniedError(message, **kw)
    if status == 429 or kind == "rate_limit_error":
        return RateLimitError(message, retry_after_s=retry_after_from_headers(headers), **kw)
    if status == 413 or "prompt is too long" in message or "context window" in message.lower():
        return ContextLengthExceededError(message, **kw)
    if status >= 500 or kind in ("api_error", "overloaded_error"):  # 529 overloaded: retryable
        return ServerError(message, **kw)
    if status == 408:
        return TimeoutError(message, **kw)
    return BadRequestError(message, **kw)


def _failed_to_connect(exc: BaseException) -> bool:
    """Whether a timeout the SDK reports is a connection that failed without timing out (refused, reset, DNS).

    The aiohttp transport of SDKs that use the ``httpx-aiohttp`` package maps every
    ``aiohttp.ClientConnectionError`` to a connect *timeout*; the transport the SDK vendors in recent versions
    maps it to a connection error, as httpx does. Either way the router sees a ``ConnectionError``."""
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is None:
        return False
    return any(
        isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(cause, builtins.TimeoutError)
        for cause in causes(exc)
    )


def stream_transport_error(
    exc: Exception, *, provider: str, model: str, key: str | None, request_id: str | None
) -> ProviderError:
    """The core's error kind for a transport failure while a stream's body is read (either HTTP client)."""
    kw: dict[str, Any] = {"provider": provider, "model": model, "request_id": request_id}
    if isinstance(exc, _sdk_http().TimeoutException):
        return TimeoutError("the stream timed out", **kw)
    detail = scrub(str(exc) or type(exc).__name__, key)
    return ConnectionError(f"the connection was lost during the stream: {detail}", **kw)
