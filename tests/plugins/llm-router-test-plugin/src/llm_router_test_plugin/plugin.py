"""A third-party-style plugin: a scripted provider, a custom scorer, a classifier and event recorders.

The scripted provider answers from a per-instance script that tests fill in through ``SCRIPTS``::

    SCRIPTS["a"] = ["error:rate_limit", "text:hello"]   # first call 429, then "hello"

Every event the router broadcasts is appended to ``EVENTS`` as ``(hook, payload)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, ClassVar

import anyio
import anyio.lowlevel
import llm_router
from llm_router import errors
from llm_router.components import Candidate, RoutingContext
from llm_router.types import (
    Capabilities,
    CompletionRequest,
    CompletionResponse,
    ModelInfo,
    ModelPrice,
    StreamChunk,
    Usage,
)
from pydantic import BaseModel, ConfigDict

SCRIPTS: dict[str, list[str]] = {}
CALLS: list[tuple[str, CompletionRequest]] = []
EVENTS: list[tuple[str, Any]] = []
CANCELLED: list[str] = []
"""Instance names whose ``slow:`` stream was cancelled (closed) before it ended."""

ERRORS: dict[str, type[errors.ProviderError]] = {
    "rate_limit": errors.RateLimitError,
    "server_error": errors.ServerError,
    "timeout": errors.TimeoutError,
    "authentication": errors.AuthenticationError,
    "bad_request": errors.BadRequestError,
    "context_length": errors.ContextLengthExceededError,
}


class ScriptedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[str] = ["small", "large"]
    price_in: float = 1.0
    price_out: float = 2.0
    api_key_env: str | None = None


class ScriptedProvider(llm_router.Provider):
    """Answers from ``SCRIPTS[instance name]``: ``text:...``, ``error:<kind>``, ``stall:<seconds>``,
    ``stream:a|b|c`` (streamed pieces), ``streamfail:a|b`` (pieces then a server error),
    ``slow:<seconds>:a|b`` (streamed pieces, each after a pause; a cancelled stream is noted in CANCELLED)."""

    name = "scripted"
    Config: ClassVar[type[BaseModel]] = ScriptedConfig

    def models(self) -> Sequence[ModelInfo]:
        cfg = self.config
        assert isinstance(cfg, ScriptedConfig)
        return [
            ModelInfo(
                id=f"{self.context.name}/{m}",
                provider=self.context.name,
                model=m,
                price=ModelPrice(
                    input_per_mtok=cfg.price_in * (i + 1), output_per_mtok=cfg.price_out * (i + 1), source="test"
                ),
                context_window=8192 * (i + 1),
                max_output_tokens=2048,
                capabilities=Capabilities(json_mode=True, tools=True, streaming=True),
                quality={"code": 0.5 + 0.2 * i, "chat": 0.6 + 0.1 * i},
                ttft_ms=100 * (i + 1),
                tokens_per_second=100,
            )
            for i, m in enumerate(cfg.models)
        ]

    def unavailable_reason(self) -> str | None:
        import os

        cfg = self.config
        assert isinstance(cfg, ScriptedConfig)
        if cfg.api_key_env and not os.environ.get(cfg.api_key_env):
            return f"set {cfg.api_key_env}"
        return None

    def _next(self, request: CompletionRequest) -> str:
        CALLS.append((self.context.name, request))
        script = SCRIPTS.get(self.context.name) or ["text:ok"]
        return script.pop(0) if len(script) > 1 else script[0]

    def _raise(self, kind: str, model: str) -> None:
        kind, _, retry_after = kind.partition("=")  # "rate_limit=30": a 429 with Retry-After 30 s
        cls = ERRORS[kind]
        kwargs: dict[str, Any] = {"provider": self.context.name, "model": model, "request_id": "req_test"}
        if cls is errors.RateLimitError:
            kwargs["retry_after_s"] = float(retry_after or 0.01)
        raise cls(f"scripted {kind}", **kwargs)

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        step = self._next(request)
        verb, _, arg = step.partition(":")
        if verb == "error":
            self._raise(arg, request.model)
        if verb == "stall":
            await anyio.sleep(float(arg))
        if verb == "crash":
            raise RuntimeError("scripted plugin bug")
        text = arg if verb == "text" else "late"
        return CompletionResponse(
            text=text,
            model=request.model,
            finish_reason="stop",
            usage=Usage(input_tokens=10, output_tokens=len(text.split())),
            request_id="req_test",
        )

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamChunk]:
        step = self._next(request)
        verb, _, arg = step.partition(":")
        if verb == "error":
            self._raise(arg, request.model)
        delay = 0.0
        if verb == "slow":
            seconds, _, arg = arg.partition(":")
            delay = float(seconds)
        pieces = arg.split("|")
        finished = False
        try:
            for piece in pieces:
                if delay:
                    await anyio.sleep(delay)
                else:
                    await anyio.lowlevel.checkpoint()
                yield StreamChunk(text=piece)
            finished = True
        finally:
            if not finished and verb == "slow":
                CANCELLED.append(self.context.name)
        if verb == "streamfail":
            raise errors.ServerError("stream broke", provider=self.context.name, model=request.model)
        yield StreamChunk(finish_reason="stop", usage=Usage(input_tokens=10, output_tokens=len(pieces)))


class FreshnessScorer(llm_router.Scorer):
    """Prefers models whose id contains ``prefer`` (a custom scorer from a third party)."""

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        prefer: str = "large"

    name = "freshness"

    def score(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[float]:
        prefer = getattr(self.config, "prefer", "large")
        return [1.0 if prefer in c.model.id else 0.0 for c in candidates]


class KeywordClassifier(llm_router.Classifier):
    """Says ``code`` with confidence 0.99 when the prompt mentions 'kernel', else has no opinion."""

    name = "kernel"

    def classify(self, request: llm_router.RouteRequest) -> llm_router.Prediction | None:
        if "kernel" in request.last_user_text().lower():
            return llm_router.Prediction("code", 0.99, {"code": 0.99})
        return None


@llm_router.hookimpl
def register_providers(register: Callable[..., None]) -> None:
    register(ScriptedProvider)


@llm_router.hookimpl
def register_scorers(register: Callable[..., None]) -> None:
    register(FreshnessScorer)


@llm_router.hookimpl
def register_classifiers(register: Callable[..., None]) -> None:
    register(KeywordClassifier)


@llm_router.hookimpl
def on_decision(decision: llm_router.RoutingDecision, request: llm_router.RouteRequest) -> None:
    EVENTS.append(("on_decision", decision))


@llm_router.hookimpl
def on_result(result: llm_router.RoutingResult, request: llm_router.RouteRequest) -> None:
    EVENTS.append(("on_result", result))


@llm_router.hookimpl
def on_error(error: Exception, request: llm_router.RouteRequest, decision: object) -> None:
    EVENTS.append(("on_error", error))


@llm_router.hookimpl
def on_feedback(feedback: llm_router.Feedback) -> None:
    EVENTS.append(("on_feedback", feedback))
