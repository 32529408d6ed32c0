"""A minimal provider plugin: the ``tinychat`` type, OpenAI-style chat completions over plain httpx.

Everything a provider needs is here: a ``Config`` (secrets as ``SecretStr``), ``unavailable_reason()``,
``complete()``, ``stream()`` (last chunk carries usage), typed errors, and the ``register_providers`` hook
that the ``llm_router`` entry point in pyproject.toml points at.

httpx is imported when the first request is made, not at import: every ``llm-router`` command loads every
installed plugin, and one that only routes a prompt must not pay for the HTTP libraries of all of them.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, ClassVar

from llm_router import Provider, hookimpl
from llm_router.errors import (
    AuthenticationError,
    BadRequestError,
    ConnectionError,
    ContextLengthExceededError,
    ProviderError,
    RateLimitError,
    ServerError,
    TimeoutError,
)
from llm_router.types import CompletionRequest, CompletionResponse, StreamChunk, Usage
from pydantic import BaseModel, ConfigDict, Field, SecretStr

if TYPE_CHECKING:
    import httpx

KEY_ENV = "TINYCHAT_API_KEY"


class TinyChatConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_url: str
    api_key: SecretStr | None = None
    timeout_s: float = Field(60.0, gt=0)


class TinyChatProvider(Provider):
    name: ClassVar[str] = "tinychat"
    Config: ClassVar[type[BaseModel]] = TinyChatConfig
    config: TinyChatConfig

    def __init__(self, config: BaseModel, context: Any) -> None:
        super().__init__(config, context)
        self._client: httpx.AsyncClient | None = None

    @property
    def _http(self) -> httpx.AsyncClient:
        """The HTTP client, made on first use (closed by :meth:`aclose`)."""
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(base_url=self.config.base_url.rstrip("/") + "/")
        return self._client

    def _key(self) -> str | None:
        return self.config.api_key.get_secret_value() if self.config.api_key else os.environ.get(KEY_ENV)

    def unavailable_reason(self) -> str | None:
        if self._key() is None:
            return f"set {KEY_ENV} (or providers.{self.context.name}.api_key in the policy)"
        return None

    def _body(self, request: CompletionRequest, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "stream": stream,
            "messages": [m.model_dump(exclude_none=True) for m in request.messages],
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        for field in ("max_tokens", "temperature", "response_format"):
            if getattr(request, field) is not None:
                body[field] = getattr(request, field)
        if request.stop:
            body["stop"] = list(request.stop)
        return body

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._key() or ''}"}

    def _error(self, response: httpx.Response, model: str, body: bytes) -> ProviderError:
        kw: dict[str, Any] = {
            "provider": self.context.name,
            "model": model,
            "status_code": response.status_code,
            "request_id": response.headers.get("x-request-id"),
        }
        try:
            err = json.loads(body).get("error", {})
        except ValueError:
            err = {}
        message = str(err.get("message") or f"HTTP {response.status_code}")
        status = response.status_code
        if status == 401:
            return AuthenticationError(f"{message} (set {KEY_ENV} or providers.{self.context.name}.api_key)", **kw)
        if status == 429:
            after = response.headers.get("retry-after")
            return RateLimitError(message, retry_after_s=float(after) if after else None, **kw)
        if status == 400 and err.get("code") == "context_length_exceeded":
            return ContextLengthExceededError(message, **kw)
        return ServerError(message, **kw) if status >= 500 else BadRequestError(message, **kw)

    async def _open(self, request: CompletionRequest, stream: bool) -> httpx.Response:
        import httpx

        req = self._http.build_request(
            "POST",
            "chat/completions",
            json=self._body(request, stream),
            headers=self._headers(),
            timeout=request.timeout_s or self.config.timeout_s,
        )
        try:
            response = await self._http.send(req, stream=True)
        except httpx.TimeoutException:
            raise TimeoutError("the request timed out", provider=self.context.name, model=request.model) from None
        except httpx.HTTPError as exc:
            raise ConnectionError(type(exc).__name__, provider=self.context.name, model=request.model) from None
        if response.status_code >= 400:
            body = await response.aread()
            await response.aclose()
            raise self._error(response, request.model, body)
        return response

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        import httpx

        response = await self._open(request, stream=False)
        try:
            data = json.loads(await response.aread())
        except httpx.TimeoutException:
            raise TimeoutError("the answer stalled", provider=self.context.name, model=request.model) from None
        finally:
            await response.aclose()
        choice, usage = data["choices"][0], data.get("usage") or {}
        return CompletionResponse(
            text=choice["message"].get("content") or "",
            model=data.get("model", request.model),
            finish_reason=choice.get("finish_reason"),
            request_id=response.headers.get("x-request-id"),
            usage=Usage(input_tokens=usage.get("prompt_tokens", 0), output_tokens=usage.get("completion_tokens", 0)),
        )

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamChunk]:
        import httpx

        response = await self._open(request, stream=True)
        request_id = response.headers.get("x-request-id")
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                usage = event.get("usage")
                if usage:
                    yield StreamChunk(
                        usage=Usage(input_tokens=usage["prompt_tokens"], output_tokens=usage["completion_tokens"]),
                        request_id=request_id,
                    )
                for choice in event.get("choices", []):
                    text = (choice.get("delta") or {}).get("content") or ""
                    if text or choice.get("finish_reason"):
                        yield StreamChunk(text=text, finish_reason=choice.get("finish_reason"), request_id=request_id)
        except httpx.TimeoutException:
            raise TimeoutError("the stream stalled", provider=self.context.name, model=request.model) from None
        finally:
            await response.aclose()  # closing early (or being cancelled) closes the upstream request

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(TinyChatProvider)
