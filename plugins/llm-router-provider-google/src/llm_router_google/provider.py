"""Google Gemini through the official ``google-genai`` SDK (``genai.Client(...).aio``).

The Gemini Developer API by default (key from ``GOOGLE_API_KEY`` or ``GEMINI_API_KEY``, as the SDK reads
them); Vertex AI with ``vertexai: true`` (an API key in express mode, or ``project`` + ``location`` with
Google's application default credentials). Chat messages in the router's (OpenAI-style) shape become Gemini
``contents``: ``system`` / ``developer`` messages the ``system_instruction``, ``assistant`` turns ``model``
turns, tool calls ``functionCall`` parts and tool results ``functionResponse`` parts.

The SDK and its HTTP libraries are imported when first needed (the first client made, the first error
mapped), never when the plugin is registered or a provider is created.
"""

from __future__ import annotations

import base64
import builtins
import contextvars
import json
import re
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, MutableMapping, Sequence
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
    scrub,
)
from llm_router.types import CompletionRequest, CompletionResponse, Message, StreamChunk, ToolCall, Usage
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from google.genai.client import AsyncClient

__all__ = ["GoogleConfig", "GoogleProvider", "map_error", "to_contents"]

KEY_ENVS = ("GOOGLE_API_KEY", "GEMINI_API_KEY")  # the SDK's order: GOOGLE_API_KEY wins when both are set
FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
_SIGNATURES_KEPT = 10_000

_OPENED: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("llm_router_google_opened", default=None)
"""While a stream starts, the HTTP responses opened for it (seen by the HTTP clients' hooks), so that a stream
the caller abandons can close its upstream response at once: the SDK keeps the response in a reference cycle
(its iterator holds the response that holds the iterator), so dropping the SDK's iterator alone leaves the
connection open until the garbage collector runs."""


def _opened(response: Any) -> None:
    opened = _OPENED.get()
    if opened is not None:
        opened.append(response)


async def _on_aiohttp_request_end(session: Any, context: Any, params: Any) -> None:
    _opened(params.response)


async def _on_httpx_response(response: Any) -> None:
    _opened(response)


async def _close(response: Any) -> None:
    """Close an HTTP response of either library (the connection is dropped, not reused)."""
    closing = getattr(response, "aclose", None)
    if closing is not None:
        await closing()
    else:
        response.close()


class GoogleConfig(ApiKeyConfig):
    """Parameters of a ``google`` provider entry."""

    model_config = ConfigDict(extra="forbid")
    vertexai: bool = Field(False, description="call Vertex AI instead of the Gemini Developer API")
    project: str | None = Field(
        None, description="Vertex AI: the Google Cloud project (with application default credentials)"
    )
    location: str | None = Field(None, description="Vertex AI: the region, e.g. us-central1 (default: global)")
    base_url: str | None = Field(None, description="another endpoint (a proxy, a regional or test server)")
    api_version: str | None = Field(
        None, description="the API version in the path (the SDK's default: v1beta / v1beta1)"
    )
    timeout_s: float = Field(60.0, gt=0, description="per-request timeout unless the request sets one")
    http_client: Literal["aiohttp", "httpx"] = Field(
        "aiohttp",
        description="the SDK's HTTP library: aiohttp (its default when installed) or httpx (its httpx2 client)",
    )
    headers: dict[str, str] = Field(default_factory=dict, description="extra HTTP headers on every request")
    thinking_budget: int | None = Field(
        None, ge=-1, description="thinking tokens per request (0 switches thinking off on 2.5 Flash; -1: dynamic)"
    )
    safety_settings: list[dict[str, str]] = Field(
        default_factory=list,
        description="Gemini safety settings, e.g. [{category: HARM_CATEGORY_HARASSMENT, threshold: BLOCK_ONLY_HIGH}]",
    )
    cached_content: str | None = Field(None, description="a cached content name (cachedContents/...) to reuse")
    embed_task_type: str | None = Field(None, description="embeddings: the task type, e.g. RETRIEVAL_DOCUMENT")


class _Client:
    """The SDK's async client with a ``close()`` the provider's ``aclose()`` awaits."""

    __slots__ = ("aio", "http")

    def __init__(self, aio: AsyncClient, http: Any) -> None:
        self.aio = aio
        self.http = http

    async def close(self) -> None:
        await self.aio.aclose()
        closing = getattr(self.http, "aclose", None) or self.http.close
        await closing()

    def __repr__(self) -> str:
        return "<google-genai client>"


class GoogleProvider(KeyedProvider):
    """Gemini models (generateContent, streamGenerateContent, batchEmbedContents)."""

    name: ClassVar[str] = "google"
    default_key_env: ClassVar[str | None] = "GEMINI_API_KEY"
    default_key_envs: ClassVar[tuple[str, ...]] = KEY_ENVS
    Config: ClassVar[type[BaseModel]] = GoogleConfig
    config: GoogleConfig

    _signatures: OrderedDict[str, str] | None = None

    def signatures(self) -> OrderedDict[str, str]:
        """Thought signatures of the function calls this provider returned, by call id (the last 10,000): a
        thinking model (Gemini 3) wants each call's signature back with the call in the next turn, and an
        OpenAI-style conversation carries only the call's id."""
        if self._signatures is None:
            self._signatures = OrderedDict()
        return self._signatures

    # -- keys -------------------------------------------------------------------------------------

    def key_hint(self) -> str:
        if self.config.vertexai and self.config.project:
            return (
                "Vertex AI with a project uses application default credentials: set GOOGLE_APPLICATION_CREDENTIALS "
                "to a service-account key file or run `gcloud auth application-default login`"
            )
        return super().key_hint()

    def unavailable_reason(self) -> str | None:
        if self.config.vertexai and self.config.project:
            return None  # application default credentials, resolved by google-auth on the first call
        return super().unavailable_reason()

    # -- clients ------------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Import the SDK and its HTTP library now."""
        from google import genai  # noqa: F401

        _sdk_errors()

    def client(self) -> AsyncClient:
        return self.keyed_client(self._make_client).aio

    def _make_client(self, key: str | None) -> _Client:
        from google import genai
        from google.genai import types

        config = self.config
        http: dict[str, Any] = {}
        if config.http_client == "httpx":
            import httpx2  # the SDK's own httpx

            http["httpx_async_client"] = httpx2.AsyncClient(event_hooks={"response": [_on_httpx_response]})
        else:
            import aiohttp

            trace = aiohttp.TraceConfig()
            trace.on_request_end.append(_on_aiohttp_request_end)
            http["aiohttp_client"] = aiohttp.ClientSession(trace_configs=[trace])
        options = types.HttpOptions(
            base_url=config.base_url,
            api_version=config.api_version,
            headers=dict(config.headers) or None,
            timeout=int(config.timeout_s * 1000),
            retry_options=types.HttpRetryOptions(attempts=1),  # retries are the router's job
            **http,
        )
        kwargs: dict[str, Any] = {"http_options": options}
        if config.vertexai:
            kwargs["vertexai"] = True
            if config.project:
                kwargs.update(project=config.project, location=config.location or "global")
            else:
                kwargs["api_key"] = key
        else:
            kwargs["api_key"] = key or "no-key"
        return _Client(genai.Client(**kwargs).aio, next(iter(http.values())))

    # -- requests ---------------------------------------------------------------------------------

    def _config(self, request: CompletionRequest) -> dict[str, Any]:
        """The ``GenerateContentConfig`` of a request (snake_case, as the SDK takes it)."""
        timeout = request.timeout_s or self.config.timeout_s
        system = [m.text() for m in request.messages if m.role in ("system", "developer")]
        config: dict[str, Any] = {
            "http_options": {"timeout": max(1, int(timeout * 1000))},
            "automatic_function_calling": {"disable": True},
        }
        if system:
            config["system_instruction"] = "\n\n".join(system)
        if request.max_tokens is not None:
            config["max_output_tokens"] = request.max_tokens
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.stop:
            config["stop_sequences"] = list(request.stop)
        config.update(_response_format(request.response_format))
        if request.tools:
            config["tools"] = [{"function_declarations": [_declaration(t) for t in request.tools]}]
            choice = _tool_config(request.tool_choice)
            if choice:
                config["tool_config"] = choice
        if self.config.thinking_budget is not None:
            config["thinking_config"] = {"thinking_budget": self.config.thinking_budget}
        if self.config.safety_settings:
            config["safety_settings"] = [dict(s) for s in self.config.safety_settings]
        if self.config.cached_content:
            config["cached_content"] = self.config.cached_content
        config.update(request.extra)
        return config

    def _args(self, request: CompletionRequest) -> dict[str, Any]:
        from google.genai import types
        from pydantic import ValidationError

        try:
            config = types.GenerateContentConfig.model_validate(self._config(request))
        except ValidationError as exc:  # e.g. an unknown key in the request's `extra`
            raise BadRequestError(
                f"the request does not make a valid Gemini config: {exc.errors()[0]['msg']} "
                f"at {'.'.join(str(x) for x in exc.errors()[0]['loc'])}",
                provider=self.context.name,
                model=request.model,
            ) from None
        contents = to_contents(request.messages, self.signatures())
        return {"model": request.model, "contents": contents, "config": config}

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        try:
            response = await self.client().models.generate_content(**self._args(request))
        except _sdk_errors() as exc:
            raise self._error(exc, request.model) from None
        data = response.model_dump(mode="json", exclude_none=True, exclude={"sdk_http_response"}, by_alias=True)
        blocked = _blocked(data)
        if blocked:
            raise ContentFilteredError(
                blocked, provider=self.context.name, model=request.model, request_id=data.get("responseId")
            )
        candidate = (data.get("candidates") or [{}])[0]
        parts = (candidate.get("content") or {}).get("parts") or []
        calls = tuple(_tool_call(p, self.signatures()) for p in parts if "functionCall" in p)
        return CompletionResponse(
            text=_text(parts),
            model=request.model,
            finish_reason=_finish(candidate.get("finishReason"), bool(calls)),
            tool_calls=calls,
            usage=_usage(data.get("usageMetadata")),
            request_id=data.get("responseId"),
            raw=data,
        )

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamChunk]:
        opened: list[Any] = []
        events: Any = None
        finished = False
        state = _StreamState(self.context.name, request.model, self.signatures())
        try:
            events = await self.client().models.generate_content_stream(**self._args(request))
            token = _OPENED.set(opened)
            try:  # the request is sent when the first event is asked for
                event = await anext(aiter(events), None)
            finally:
                _OPENED.reset(token)
            while event is not None:
                chunk = state.feed(event)
                if chunk is not None:
                    yield chunk
                event = await anext(events, None)
            finished = True
        except _sdk_errors() as exc:
            raise self._error(exc, request.model) from None
        finally:
            if events is not None:
                await events.aclose()
            if not finished:
                for response in opened:
                    await _close(response)
        yield state.final()

    async def embed(self, texts: list[str], model: str) -> list[list[float]]:
        """One embedding vector per text (``embed_task_type`` from the config)."""
        config: dict[str, Any] = {"http_options": {"timeout": int(self.config.timeout_s * 1000)}}
        if self.config.embed_task_type:
            config["task_type"] = self.config.embed_task_type
        try:
            response = await self.client().models.embed_content(model=model, contents=list(texts), config=config)
        except _sdk_errors() as exc:
            raise self._error(exc, model) from None
        return [list(e.values or ()) for e in (response.embeddings or ())]

    def _error(self, exc: BaseException, model: str) -> ProviderError:
        return map_error(exc, provider=self.context.name, model=model, key=self.api_key(), key_hint=self.key_hint())


class _StreamState:
    """What a stream has said so far: its id, the latest usage, the finish reason, whether it called tools."""

    __slots__ = ("called", "finish", "model", "provider", "request_id", "signatures", "usage")

    def __init__(self, provider: str, model: str, signatures: MutableMapping[str, str]) -> None:
        self.provider, self.model, self.signatures = provider, model, signatures
        self.request_id: str | None = None
        self.usage: Usage | None = None
        self.finish: str | None = None
        self.called = False

    def feed(self, event: Any) -> StreamChunk | None:
        """The chunk for one SDK event (``None`` when it carries no text or call)."""
        data = event.model_dump(mode="json", exclude_none=True, exclude={"sdk_http_response"}, by_alias=True)
        self.request_id = data.get("responseId") or self.request_id
        self.usage = _usage(data.get("usageMetadata")) or self.usage
        blocked = _blocked(data)
        if blocked:
            raise ContentFilteredError(blocked, provider=self.provider, model=self.model, request_id=self.request_id)
        candidate = (data.get("candidates") or [{}])[0]
        parts = (candidate.get("content") or {}).get("parts") or []
        calls = tuple(_stream_call(i, p, self.signatures) for i, p in enumerate(parts) if "functionCall" in p)
        self.called = self.called or bool(calls)
        self.finish = candidate.get("finishReason") or self.finish
        text = _text(parts)
        return StreamChunk(text=text, tool_calls=calls, request_id=self.request_id) if text or calls else None

    def final(self) -> StreamChunk:
        """The last chunk: the finish reason and the usage the last event reported."""
        return StreamChunk(
            finish_reason=_finish(self.finish, self.called), usage=self.usage, request_id=self.request_id
        )


# -- messages -------------------------------------------------------------------------------------


def to_contents(messages: Sequence[Message], signatures: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The router's chat messages as Gemini ``contents`` (system messages go to ``system_instruction``).

    A tool result names its function, which Gemini needs and OpenAI-style messages carry only in the call:
    the name is looked up by ``tool_call_id`` among the earlier assistant tool calls. An assistant's call whose
    id is in ``signatures`` gets its thought signature back."""
    names: dict[str, str] = {}
    contents: list[dict[str, Any]] = []
    for m in messages:
        if m.role in ("system", "developer"):
            continue
        if m.role == "tool":
            name = names.get(m.tool_call_id or "", m.name or "tool")
            part = {"function_response": {"name": name, "response": _tool_result(m.text())}}
            if contents and contents[-1]["role"] == "user" and "function_response" in contents[-1]["parts"][0]:
                contents[-1]["parts"].append(part)  # parallel calls answered in one turn
            else:
                contents.append({"role": "user", "parts": [part]})
            continue
        parts: list[dict[str, Any]] = _parts(m.content)
        for call in m.tool_calls or ():
            function = call.get("function") or {}
            call_id = str(call.get("id", ""))
            names[call_id] = str(function.get("name", ""))
            call_part: dict[str, Any] = {
                "function_call": {"name": function.get("name", ""), "args": _args(function.get("arguments"))}
            }
            signature = (signatures or {}).get(call_id)
            if signature:
                call_part["thought_signature"] = base64.b64decode(signature)
            parts.append(call_part)
        contents.append({"role": "model" if m.role == "assistant" else "user", "parts": parts or [{"text": ""}]})
    return contents


def _parts(content: str | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for item in content:
        if item.get("type") == "text":
            parts.append({"text": item.get("text", "")})
        elif item.get("type") == "image_url":
            url = str((item.get("image_url") or {}).get("url", ""))
            match = re.match(r"^data:([^;]+);base64,(.*)$", url, re.S)
            if match:
                parts.append({"inline_data": {"mime_type": match.group(1), "data": match.group(2)}})
            else:
                parts.append({"file_data": {"file_uri": url, "mime_type": _mime(url)}})
    return parts


def _mime(url: str) -> str:
    lowered = url.lower().split("?")[0]
    for ext, mime in (
        (".png", "image/png"),
        (".webp", "image/webp"),
        (".gif", "image/gif"),
        (".pdf", "application/pdf"),
    ):
        if lowered.endswith(ext):
            return mime
    return "image/jpeg"


def _args(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"value": value}


def _tool_result(text: str) -> dict[str, Any]:
    """A tool's answer as the ``response`` object Gemini takes (a JSON object stays one)."""
    try:
        value = json.loads(text)
    except ValueError:
        return {"result": text}
    return value if isinstance(value, dict) else {"result": value}


def _declaration(tool: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI-style ``{"type": "function", "function": {...}}`` tool as a Gemini function declaration (the
    parameters' JSON Schema passed as it is)."""
    function = tool.get("function", tool)
    out: dict[str, Any] = {"name": function["name"]}
    if function.get("description"):
        out["description"] = function["description"]
    if function.get("parameters"):
        out["parameters_json_schema"] = function["parameters"]
    return out


def _tool_config(choice: str | dict[str, Any] | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        return {"function_calling_config": {"mode": "ANY", "allowed_function_names": [name]}} if name else None
    mode = {"auto": "AUTO", "required": "ANY", "none": "NONE"}.get(choice)
    return {"function_calling_config": {"mode": mode}} if mode else None


def _response_format(fmt: Mapping[str, Any] | None) -> dict[str, Any]:
    """OpenAI's ``response_format`` as Gemini's JSON mode (``application/json``, with the schema if any)."""
    if not fmt or fmt.get("type") not in ("json_object", "json_schema"):
        return {}
    out: dict[str, Any] = {"response_mime_type": "application/json"}
    schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
    if schema:
        out["response_json_schema"] = schema
    return out


# -- answers ---------------------------------------------------------------------------------------


def _text(parts: Sequence[Mapping[str, Any]]) -> str:
    """The answer's text (thought summaries left out)."""
    return "".join(str(p.get("text", "")) for p in parts if "text" in p and not p.get("thought"))


def _call_id(call: Mapping[str, Any]) -> str:
    return str(call.get("id") or f"call_{uuid.uuid4().hex[:24]}")


def _remember(part: Mapping[str, Any], signatures: MutableMapping[str, str]) -> str:
    """The id of a ``functionCall`` part's call (made when Gemini gives none), its thought signature kept."""
    call_id = _call_id(part["functionCall"])
    signature = part.get("thoughtSignature")
    if signature:
        signatures[call_id] = str(signature)
        while len(signatures) > _SIGNATURES_KEPT:
            signatures.pop(next(iter(signatures)))
    return call_id


def _tool_call(part: Mapping[str, Any], signatures: MutableMapping[str, str]) -> ToolCall:
    call = part["functionCall"]
    call_id = _remember(part, signatures)
    return ToolCall(id=call_id, name=str(call.get("name", "")), arguments=json.dumps(call.get("args") or {}))


def _stream_call(index: int, part: Mapping[str, Any], signatures: MutableMapping[str, str]) -> dict[str, Any]:
    """A whole function call as one OpenAI-style stream delta (Gemini sends each call complete)."""
    call = part["functionCall"]
    call_id = _remember(part, signatures)
    arguments = json.dumps(call.get("args") or {})
    return {
        "index": index,
        "id": call_id,
        "type": "function",
        "function": {"name": call.get("name", ""), "arguments": arguments},
    }


def _finish(reason: str | None, called: bool) -> str | None:
    if called and reason in (None, "STOP"):
        return "tool_calls"
    return FINISH.get(reason or "", reason.lower() if reason else None)


def _blocked(data: Mapping[str, Any]) -> str | None:
    """Why the prompt was blocked (``promptFeedback.blockReason``), or ``None``."""
    feedback = data.get("promptFeedback") or {}
    reason = feedback.get("blockReason")
    if not reason or data.get("candidates"):
        return None
    return f"the prompt was blocked ({reason})"


def _usage(meta: Mapping[str, Any] | None) -> Usage | None:
    """Usage from ``usageMetadata``: thinking tokens are billed as output, so they count as output here."""
    if not meta:
        return None
    output = int(meta.get("candidatesTokenCount") or 0) + int(meta.get("thoughtsTokenCount") or 0)
    return Usage(input_tokens=int(meta.get("promptTokenCount") or 0), output_tokens=output)


# -- errors ----------------------------------------------------------------------------------------


def _sdk_errors() -> tuple[type[BaseException], ...]:
    """What a call may raise: the SDK's ``APIError`` (an error answer), the HTTP libraries' errors, the
    timeout (no answer) and google-auth's errors (Vertex AI's application default credentials missing, or
    refused by the token endpoint)."""
    import aiohttp
    import httpx2
    from google.auth.exceptions import GoogleAuthError
    from google.genai import errors

    return errors.APIError, aiohttp.ClientError, httpx2.HTTPError, builtins.TimeoutError, GoogleAuthError


def retry_delay(details: object) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` detail (``retryDelay: "34.4s"``), the only place the Gemini
    API says how long to wait (it sends no ``Retry-After``)."""
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def _reasons(details: object) -> set[str]:
    return {
        str(d.get("reason"))
        for d in (details if isinstance(details, list) else ())
        if isinstance(d, dict) and d.get("reason")
    }


def map_error(exc: BaseException, *, provider: str, model: str, key: str | None, key_hint: str) -> ProviderError:
    """The core's error kind for a google-genai failure (no secret in the message)."""
    import aiohttp
    import httpx2
    from google.auth.exceptions import GoogleAuthError
    from google.genai import errors

    kw: dict[str, Any] = {"provider": provider, "model": model}
    if isinstance(exc, GoogleAuthError):
        # google-auth's message is the token endpoint's error (``invalid_grant: Invalid JWT Signature.``) or
        # where it looked for credentials; the first argument only, never the response it came with
        reason = scrub(str(exc.args[0] if exc.args else ""), key)
        return AuthenticationError(f"Vertex AI credentials: {type(exc).__name__}: {reason} ({key_hint})", **kw)
    if isinstance(exc, builtins.TimeoutError | httpx2.TimeoutException):
        return TimeoutError("the request timed out", **kw)
    if isinstance(exc, aiohttp.ClientError | httpx2.HTTPError):
        return ConnectionError(f"could not reach the API: {type(exc).__name__}", **kw)
    if not isinstance(exc, errors.APIError):
        return ProviderError(scrub(type(exc).__name__, key), **kw)
    body = exc.details if isinstance(exc.details, dict) else {}
    error = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    details = error.get("details")
    status = int(exc.code or 0)
    grpc = str(exc.status or error.get("status") or "")
    message = scrub(str(exc.message or error.get("message") or f"HTTP {status}"), key)
    kw["status_code"] = status
    if grpc:
        message = f"{grpc}: {message}"
    if status == 401 or "API_KEY_INVALID" in _reasons(details):
        return AuthenticationError(f"{message} ({key_hint})", **kw)
    if status == 403:
        return PermissionDeniedError(message, **kw)
    if status == 429:
        return RateLimitError(message, retry_after_s=retry_delay(details), **kw)
    lowered = message.lower()
    if status in (400, 413) and ("token count" in lowered or "exceeds the maximum number of tokens" in lowered):
        return ContextLengthExceededError(message, **kw)
    if status in (408, 504):
        return TimeoutError(message, **kw)
    if status >= 500:
        return ServerError(message, **kw)
    return BadRequestError(message, **kw)
