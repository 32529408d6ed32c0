"""OpenAI-compatible request validation, response shapes and errors for the gateway."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from ..errors import (
    AuthenticationError,
    BadRequestError,
    ConnectionError,
    ContentFilteredError,
    ContextLengthExceededError,
    PermissionDeniedError,
    PostprocessError,
    ProviderError,
    RateLimitError,
    ServerError,
    TimeoutError,
)
from ..types import Message, RoutingResult, StreamChunk, Usage

__all__ = ["ChatCompletionRequest", "GatewayHTTPError", "RouterOptions", "error_body", "provider_error"]


def _with_text(messages: list[Message]) -> list[Message]:
    """Refuse a prompt with nothing in it: every message's text empty or only whitespace, and no image, other
    non-text part or tool call either (there is nothing to route, and an upstream would be paid to say so)."""
    for m in messages:
        if (
            m.text().strip()
            or m.tool_calls
            or (isinstance(m.content, list) and any(p.get("type") != "text" for p in m.content))
        ):
            return messages
    raise PydanticCustomError(
        "empty_prompt", "the prompt is empty: every message's content is empty or only whitespace"
    )


_INT64 = 2**63  # JSON integers an upstream request can carry: the encoders refuse larger ones


def _unsendable(value: Any, path: str) -> str | None:
    """Where ``value`` (free-form JSON the gateway forwards: content parts, tool calls, tools, response_format)
    holds a number no upstream request can carry, and what is wrong with it; None when there is none. Such a
    request would fail at the provider as a bad request, after routing, and count against the model's health."""
    if isinstance(value, dict):
        for key, item in value.items():
            if problem := _unsendable(item, f"{path}.{key}"):
                return problem
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if problem := _unsendable(item, f"{path}[{i}]"):
                return problem
    elif isinstance(value, float) and not math.isfinite(value):
        return f"{path} is not a finite number ({value})"
    elif isinstance(value, int) and not -_INT64 <= value < _INT64:
        return f"{path} is an integer out of the 64-bit range"
    return None


def _sendable(value: Any, info: ValidationInfo) -> Any:
    if value is not None and (problem := _unsendable(value, info.field_name or "")):
        raise PydanticCustomError("unsendable", problem)
    return value


def _sendable_messages(messages: list[Message]) -> list[Message]:
    for i, m in enumerate(messages):
        for name in ("content", "tool_calls"):
            value = getattr(m, name)
            if isinstance(value, list) and (problem := _unsendable(value, f"[{i}].{name}")):
                raise PydanticCustomError("unsendable", "messages" + problem)
    return messages


Messages = Annotated[list[Message], Field(min_length=1), AfterValidator(_with_text), AfterValidator(_sendable_messages)]
Sendable = AfterValidator(_sendable)


class RequestCacheOptions(BaseModel):
    """``router.cache``: this request's use of the response cache (``Cache-Control: no-cache / no-store`` too)."""

    model_config = ConfigDict(extra="forbid")

    no_cache: bool = False
    no_store: bool = False
    ttl_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    semantic: bool | None = None


class RouterOptions(BaseModel):
    """The extra ``router`` body field: routing preferences and constraints for this request."""

    model_config = ConfigDict(extra="forbid")

    preferences: dict[str, Any] | None = None
    constraints: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    cache: RequestCacheOptions | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``. Parameters OpenAI accepts that the router does not forward
    (sampling knobs other than temperature, ``user``, ``seed``, …) are accepted and ignored."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    messages: Messages
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int, Field(gt=0)] | None = None
    max_completion_tokens: Annotated[int, Field(gt=0)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    stop: str | list[str] | None = None
    response_format: Annotated[dict[str, Any] | None, Sendable] = None
    tools: Annotated[list[dict[str, Any]] | None, Sendable] = None
    tool_choice: Annotated[str | dict[str, Any] | None, Sendable] = None
    n: Literal[1] | None = None
    router: RouterOptions | None = None
    # accepted, not forwarded
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    seed: int | None = None
    user: str | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    parallel_tool_calls: bool | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    reasoning_effort: str | None = None

    @field_validator("tools")
    @classmethod
    def _tools(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for tool in value or ():
            if tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
                raise ValueError("each tool must be {type: 'function', function: {name, parameters}}")
        return value


class RouteBody(BaseModel):
    """``POST /v1/route``: a chat request's routing fields (``model`` defaults to ``auto``)."""

    model_config = ConfigDict(extra="forbid")

    model: str = "auto"
    messages: Messages
    stream: bool = False
    max_tokens: Annotated[int, Field(gt=0)] | None = None
    max_completion_tokens: Annotated[int, Field(gt=0)] | None = None
    response_format: Annotated[dict[str, Any] | None, Sendable] = None
    tools: Annotated[list[dict[str, Any]] | None, Sendable] = None
    router: RouterOptions | None = None


# --------------------------------------------------------------------------------------------------
# errors


class GatewayHTTPError(Exception):
    """An error answer in OpenAI's format."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        kind: str = "request",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})
        self.kind = kind

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def _loc(loc: Sequence[str | int]) -> str:
    out = ""
    for seg in loc:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif "[" in seg or seg.startswith("function-"):  # pydantic's union-branch labels
            continue
        else:
            out += f".{seg}" if out else seg
    return out


def validation_error(exc: ValidationError, prefix: str = "") -> GatewayHTTPError:
    """A 400 (malformed JSON) or 422 (a field is wrong) naming the first bad field."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] in ("json_invalid", "model_type") and not first["loc"]:
        return GatewayHTTPError(400, f"request body is not a JSON object: {first['msg']}", code="invalid_json")
    params = []
    for err in errors:
        name = _loc([*([prefix] if prefix else []), *err["loc"]])
        msg = "unrecognized request argument" if err["type"] == "extra_forbidden" else err["msg"]
        params.append((name, msg))
    message = "; ".join(f"{p}: {m}" for p, m in params)
    return GatewayHTTPError(422, f"invalid request: {message}", param=params[0][0], code="invalid_value")


UPSTREAM_AUTH_MESSAGE = "the upstream provider rejected the gateway's credentials; the operator has been told"


def provider_error(exc: ProviderError | PostprocessError) -> GatewayHTTPError:
    """OpenAI-style status for a failure after every candidate was tried."""
    if isinstance(exc, PostprocessError):
        return GatewayHTTPError(502, str(exc), type="api_error", code="postprocess_failed", kind="postprocess")
    msg = str(exc)
    kind = exc.kind
    if isinstance(exc, RateLimitError):
        headers = {"retry-after": str(max(1, round(exc.retry_after_s)))} if exc.retry_after_s is not None else {}
        return GatewayHTTPError(
            429, msg, type="rate_limit_error", code="rate_limit_exceeded", headers=headers, kind=kind
        )
    if isinstance(exc, TimeoutError):
        return GatewayHTTPError(504, msg, type="api_error", code="upstream_timeout", kind=kind)
    if isinstance(exc, ContextLengthExceededError):
        return GatewayHTTPError(400, msg, param="messages", code="context_length_exceeded", kind=kind)
    if isinstance(exc, ContentFilteredError):
        return GatewayHTTPError(400, msg, code="content_filter", kind=kind)
    if isinstance(exc, BadRequestError):
        return GatewayHTTPError(400, msg, code="upstream_bad_request", kind=kind)
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        # the upstream's message names the operator's key setting and may echo part of the key: it goes to the
        # operator's log (Gateway._failed), the client learns only what happened
        return GatewayHTTPError(502, UPSTREAM_AUTH_MESSAGE, type="api_error", code="upstream_auth_failed", kind=kind)
    if isinstance(exc, ServerError) and exc.status_code == 503:
        return GatewayHTTPError(503, msg, type="api_error", code="upstream_unavailable", kind=kind)
    if isinstance(exc, ConnectionError | ServerError):
        return GatewayHTTPError(502, msg, type="api_error", code="upstream_error", kind=kind)
    return GatewayHTTPError(502, msg, type="api_error", code="upstream_error", kind=kind)


# --------------------------------------------------------------------------------------------------
# responses


def usage_json(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def completion_json(result: RoutingResult, completion_id: str, created: int) -> dict[str, Any]:
    response = result.response
    message: dict[str, Any] = {"role": "assistant", "content": response.text, "refusal": None}
    finish = response.finish_reason or "stop"
    if response.tool_calls:
        message["tool_calls"] = [
            {"id": t.id, "type": "function", "function": {"name": t.name, "arguments": t.arguments}}
            for t in response.tool_calls
        ]
        if not response.text:
            message["content"] = None
        if response.finish_reason in (None, "stop", "tool_use"):
            finish = "tool_calls"
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": result.selected_model.id,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage_json(result.usage),
        "system_fingerprint": None,
    }


class ChunkWriter:
    """Serialises stream chunks as OpenAI ``chat.completion.chunk`` SSE events."""

    def __init__(self, completion_id: str, model: str, include_usage: bool) -> None:
        self.head = f'{{"id":{json.dumps(completion_id)},"object":"chat.completion.chunk","created":{int(time.time())},'
        self.model = model
        self.include_usage = include_usage
        self.tail = ',"usage":null}' if include_usage else "}"
        self.finish_sent = False

    def _event(self, choices: str, tail: str | None = None) -> bytes:
        return (
            f'data: {self.head}"model":{json.dumps(self.model)},"system_fingerprint":null,'
            f'"choices":{choices}{self.tail if tail is None else tail}\n\n'
        ).encode()

    def role(self) -> bytes:
        return self._event(
            '[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]'
        )

    def chunk(self, chunk: StreamChunk) -> bytes:
        delta: dict[str, Any] = {}
        if chunk.text:
            delta["content"] = chunk.text
        if chunk.tool_calls:
            delta["tool_calls"] = list(chunk.tool_calls)
        finish = chunk.finish_reason
        if finish is not None:
            self.finish_sent = True
        if not delta and finish is None:
            return b""
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._event(json.dumps([choice], separators=(",", ":")))

    def finish(self, reason: str = "stop") -> bytes:
        if self.finish_sent:
            return b""
        self.finish_sent = True
        return self._event(f'[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"{reason}"}}]')

    def usage(self, usage: Usage) -> bytes:
        if not self.include_usage:
            return b""
        return self._event("[]", f',"usage":{json.dumps(usage_json(usage), separators=(",", ":"))}}}')

    @staticmethod
    def error(err: GatewayHTTPError) -> bytes:
        return f"data: {json.dumps(err.body())}\n\n".encode()

    DONE = b"data: [DONE]\n\n"
