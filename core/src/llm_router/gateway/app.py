"""The gateway ASGI app (Starlette): OpenAI-compatible chat completions routed by llm-router.

Build it with :func:`create_app` (a :class:`~llm_router.Router` or a policy path); ``llm-router serve``
runs it on uvicorn.
"""

from __future__ import annotations

import fnmatch
import functools
import gc
import json
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import (
    AuthenticationError,
    ConfigurationError,
    FeedbackError,
    NoCandidatesError,
    PermissionDeniedError,
    PostprocessError,
    ProviderError,
    RouterError,
)
from ..ids import new_request_id
from ..limits import BUDGET_REASON, Hold, KeyBook, LimitRefused, budget_message, worst_case_cost
from ..policy import GatewayKey
from ..router import RoutedStream, Router
from ..tracing import NO_TRACE, RequestTrace
from ..types import (
    Attempt,
    CacheOptions,
    Constraints,
    Feedback,
    Message,
    Preferences,
    RouteRequest,
    RoutingDecision,
    RoutingResult,
    ScoredCandidate,
    Usage,
)
from .edge import Edge, header_value
from .ledger import Ledger, LedgerRow, open_ledger
from .metrics import CONTENT_TYPE_LATEST, Metrics
from .openai_types import (
    ChatCompletionRequest,
    ChunkWriter,
    GatewayHTTPError,
    RouteBody,
    completion_json,
    error_body,
    provider_error,
    validation_error,
)
from .pg_ledger import PostgresLedger
from .requestlog import RequestLog
from .usage import UsageAPI, fallback_note, stream_report
from .web import WebApp

__all__ = ["Gateway", "create_app"]

log = logging.getLogger("llm_router.gateway")

GC_THRESHOLDS = (5000, 20, 100)  # the collector's thresholds while the gateway runs (see Gateway.lifespan)


try:
    import orjson

    def _dumps(data: Any) -> bytes:
        return orjson.dumps(data)

except ImportError:  # the gateway-fast extra brings orjson; the standard library does the same, slower

    def _dumps(data: Any) -> bytes:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


class _JSONBytes(Response):
    """A JSON answer whose body and headers are already encoded (Starlette's ``Response`` re-processes a
    header mapping on every request)."""

    def __init__(self, body: bytes, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = status
        self.body = body
        self.background = None
        self.raw_headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
            *headers,
        ]


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    raw = [(k.lower().encode("ascii"), header_value(v)) for k, v in headers.items()] if headers else []
    return _JSONBytes(_dumps(data), status, raw)


def _error(err: GatewayHTTPError) -> Response:
    return _json(err.body(), err.status, err.headers)


@dataclass(slots=True)
class _Call:
    """One chat-completion request's bookkeeping, from auth to the ledger row."""

    request_id: str
    key: GatewayKey | None
    stream: bool
    t0: float
    prompt: str | None
    reserved: float = 0.0
    hold: Hold | None = None
    decision: RoutingDecision | None = None
    model: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    outcome: str = "ok"
    status: int = 200
    fallbacks: int = 0
    error: str | None = None
    cache: str | None = None
    saved_cost: float = 0.0
    trace: RequestTrace = NO_TRACE


class SSEResponse(Response):
    """Streams SSE bytes and cancels the stream as soon as the client disconnects (even while the upstream
    is silent), then runs ``on_close`` whatever happened."""

    def __init__(
        self,
        body: AsyncIterator[bytes],
        headers: list[tuple[bytes, bytes]],
        on_abandon: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.media_type = "text/event-stream"
        self.raw_headers = [
            *headers,
            (b"cache-control", b"no-cache"),
            (b"content-type", b"text/event-stream; charset=utf-8"),
        ]
        self.body_iterator = body
        self.on_abandon = on_abandon
        self.started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as tg:

            async def listen() -> None:
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        tg.cancel_scope.cancel()
                        return

            tg.start_soon(listen)
            try:
                await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
                async for chunk in self.body_iterator:
                    self.started = True
                    if chunk:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:  # the client went away while we were sending
                pass
            finally:
                if not self.started and self.on_abandon is not None:
                    with anyio.CancelScope(shield=True):
                        await self.on_abandon()
            tg.cancel_scope.cancel()


class Gateway:
    """The app's state: router, keys, ledger, metrics."""

    def __init__(self, router: Router, *, ledger_path: str | os.PathLike[str] | None = None) -> None:
        self.router = router
        cfg = router.policy.gateway
        self.config = cfg
        self.keys: dict[str, GatewayKey] = {k.key_sha256: k for k in cfg.keys}
        self.log_prompts = cfg.log_prompts
        self.ledger = open_ledger(  # a relative path is relative to the cwd
            ledger_path or cfg.ledger, spool_dir=cfg.ledger_spool, spool_max_mb=cfg.ledger_spool_max_mb
        )
        self.metrics = Metrics()
        listeners = getattr(router.state, "transition_listeners", None)  # a custom store may have none
        if listeners is not None:
            listeners.append(self.metrics.circuit_transition)
        self.book: KeyBook = _key_book(router, self.ledger)
        self.cache_on = router.policy.cache.enabled
        self.cache_per_key = router.policy.cache.scope == "key"
        self.tracing = router.tracing.on
        self.request_log = RequestLog(router.policy.telemetry.request_log)
        self.cache_lookups = {r: self.metrics.cache.labels(r) for r in ("hit", "semantic", "miss", "bypass")}
        ids = [m.id for m in router.catalogue]
        self.all_models = frozenset(ids)
        self.key_models: dict[str, frozenset[str]] = {
            k.id: frozenset(i for i in ids if any(fnmatch.fnmatchcase(i, g) for g in k.allowed_models))
            for k in cfg.keys
        }
        self.aliases: dict[str, frozenset[str]] = {
            name: frozenset(i for i in ids if any(fnmatch.fnmatchcase(i, g) for g in globs))
            for name, globs in cfg.aliases.items()
        }

    # ---------------------------------------------------------------------------------------------
    # lifecycle

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.router.awarm_up()  # the providers' SDKs and the tokenizer, before the first request
        # Everything loaded so far (catalogue, BPE tables, plugins, SDKs) lives as long as the process: move it out
        # of the collector's reach, so full collections stay short (they caused ~90 ms p99 stalls).
        gc.collect()
        gc.freeze()
        # A request's objects are freed by reference counting; with the default threshold (700) the collector
        # ran every ~10 requests, traversing the objects of every request in flight, ~8 % of the CPU at 50
        # concurrent requests. Collect the young generation every 5,000 allocations instead (measured: +10-16 %
        # req/s at 10-50 concurrent requests, lower p99; docs/gateway.md).
        thresholds = gc.get_threshold()
        gc.set_threshold(max(thresholds[0], GC_THRESHOLDS[0]), *GC_THRESHOLDS[1:])
        self.ledger.start()
        await self.book.start()
        if not self.keys:
            log.warning("no API keys in the policy's gateway.keys: this gateway is OPEN (anyone can call it)")
        else:
            log.info("gateway: %d API keys configured", len(self.keys))
        log.info("gateway: usage ledger at %s", self.ledger.path)
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            await self.book.close()
            await anyio.to_thread.run_sync(self.ledger.close)
            await self.router.aclose()
            log.info("gateway: ledger drained (%d rows written)", self.ledger.written)

    # ---------------------------------------------------------------------------------------------
    # auth and budgets

    def authenticate(self, request: Request) -> GatewayKey | None:
        if not self.keys:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self.metrics.rejected.labels("auth").inc()
            raise GatewayHTTPError(
                401,
                "missing API key: send it as `Authorization: Bearer <key>`",
                code="invalid_api_key",
                kind="auth",
            )
        import hashlib

        key = self.keys.get(hashlib.sha256(token.strip().encode()).hexdigest())
        if key is None:
            self.metrics.rejected.labels("auth").inc()
            raise GatewayHTTPError(401, "invalid API key", code="invalid_api_key", kind="auth")
        return key

    async def _admit(
        self, key: GatewayKey, request_id: str, route_request: RouteRequest, decision: RoutingDecision
    ) -> Hold:
        """Hold the worst case of every candidate the executor may call (the most expensive of them) and the
        request's tokens against ``key``'s limits, atomically; a refusal is the OpenAI-format 429."""
        tried = decision.best(self.router.policy.fallback.max_models)
        max_tokens, default = route_request.max_tokens, route_request.default_max_tokens
        cost = max(worst_case_cost(c.model, decision.input_tokens, max_tokens, default) for c in tried)
        tokens = decision.input_tokens + (max_tokens or decision.expected_output_tokens)
        try:
            return await self.book.admit(key, request_id, cost, tokens, time.time())
        except LimitRefused as exc:
            if exc.reason == "budget":
                exc.message += self._cap_hint(key, route_request)
            raise self._refusal(exc) from None

    def _default_max_tokens(self, key: GatewayKey | None) -> tuple[int | None, str]:
        """The output cap of ``key``'s requests without ``max_tokens``, and the policy field it comes from."""
        if key is not None and key.default_max_tokens is not None:
            return key.default_max_tokens, f"gateway.keys[{key.id}].default_max_tokens"
        return self.config.default_max_tokens, "gateway.default_max_tokens"

    def _cap_hint(self, key: GatewayKey, route_request: RouteRequest) -> str:
        """What a budget 429 adds about the request's output cap: which field capped it, or how to cap it."""
        if route_request.max_tokens is not None:
            return f"; max_tokens {route_request.max_tokens} was sent"
        cap, field = self._default_max_tokens(key)
        if cap is not None:
            return f"; no max_tokens was sent: output capped at {cap} tokens by {field}"
        return (
            "; no max_tokens was sent, so the model's whole max output is held: send max_tokens, or set "
            f"gateway.keys[{key.id}].default_max_tokens or gateway.default_max_tokens"
        )

    def _refusal(self, exc: LimitRefused) -> GatewayHTTPError:
        self.metrics.rejected.labels(exc.reason).inc()
        headers = {"retry-after": str(max(1, math.ceil(exc.retry_after_s)))} if exc.retry_after_s else None
        if exc.reason == "budget":
            return GatewayHTTPError(
                429, exc.message, type="insufficient_quota", code="budget_exceeded", kind="budget", headers=headers
            )
        if exc.reason == "state":
            return GatewayHTTPError(503, exc.message, type="api_error", code="state_unavailable", kind="state")
        return GatewayHTTPError(
            429,
            exc.message,
            type="tokens" if exc.reason == "tpm" else "requests",
            code="rate_limit_exceeded",
            kind="rate_limit",
            headers=headers,
        )

    def _over_budget(self, key: GatewayKey, route_request: RouteRequest, exc: NoCandidatesError) -> GatewayHTTPError:
        """The 429 of a request no candidate of which fits the key's remaining budget."""
        day, month, reserved = self.book.spent(key.id, time.time())
        cheapest = min(
            (float(r.reason.split("$", 1)[1].split()[0]) for r in exc.rejected if r.reason.startswith(BUDGET_REASON)),
            default=0.0,
        )
        left_day = None if key.budget_usd_per_day is None else key.budget_usd_per_day - day - reserved
        left_month = None if key.budget_usd_per_month is None else key.budget_usd_per_month - month - reserved
        daily = left_month is None or (left_day is not None and left_day <= left_month)
        budget = key.budget_usd_per_day if daily else key.budget_usd_per_month
        message = budget_message(
            key.id, "daily" if daily else "monthly", budget or 0.0, day if daily else month, reserved, cheapest
        )
        message = message.replace("this request", "this request's cheapest model") + self._cap_hint(key, route_request)
        return self._refusal(LimitRefused("budget", message))

    # ---------------------------------------------------------------------------------------------
    # building the route request

    def _allowed(self, key: GatewayKey | None, model_name: str) -> tuple[str | None, frozenset[str] | None]:
        """(pinned model, allowed model ids) for ``model`` and the caller's key."""
        allowed = self.key_models[key.id] if key is not None else None
        pinned: str | None = None
        if model_name == "auto":
            pass
        elif model_name in self.aliases:
            alias = self.aliases[model_name]
            allowed = alias if allowed is None else allowed & alias
        elif model_name in self.router.catalogue:
            if allowed is not None and model_name not in allowed:
                self.metrics.rejected.labels("model_not_allowed").inc()
                raise GatewayHTTPError(
                    403,
                    f"key {key.id!r} may not use model {model_name!r}" if key else "model not allowed",
                    type="permission_error",
                    param="model",
                    code="model_not_allowed",
                    kind="auth",
                )
            pinned = model_name
        else:
            names = ["auto", *sorted(self.aliases)]
            raise GatewayHTTPError(
                404,
                f"the model {model_name!r} does not exist: use {', '.join(names)} or a catalogue id (GET /v1/models)",
                param="model",
                code="model_not_found",
            )
        if allowed is not None and not allowed:
            raise GatewayHTTPError(
                403,
                f"no model is allowed for {model_name!r} with this key",
                type="permission_error",
                param="model",
                code="model_not_allowed",
                kind="auth",
            )
        return pinned, allowed

    def _route_request(
        self, request: Request, body: ChatCompletionRequest | RouteBody, key: GatewayKey | None, request_id: str
    ) -> RouteRequest:
        pinned, allowed = self._allowed(key, body.model)
        prefs: dict[str, Any] = {}
        cons: dict[str, Any] = {}
        for header, target in (("x-router-preferences", prefs), ("x-router-constraints", cons)):
            raw = request.headers.get(header)
            if raw:
                target.update(_finite(_header_map(header, raw), f"header {header}", header))
        if body.router is not None:
            prefs.update(_finite(body.router.preferences or {}, "router.preferences"))
            cons.update(_finite(body.router.constraints or {}, "router.constraints"))
        prefs.pop("pace", None)  # a caller does not set its own budget: the policy or its key does
        if key is not None and key.pace is not None:
            prefs["pace"] = key.pace
        try:
            preferences = Preferences.model_validate(prefs) if prefs else None
        except ValidationError as exc:
            raise validation_error(exc, "router.preferences") from None
        try:
            constraints = Constraints.model_validate(cons) if cons else _NO_CONSTRAINTS
        except ValidationError as exc:
            raise validation_error(exc, "router.constraints") from None
        if allowed is not None:
            if constraints.allowed_models is not None:
                globs = constraints.allowed_models
                allowed = frozenset(i for i in allowed if i in globs or any(fnmatch.fnmatchcase(i, g) for g in globs))
            constraints = constraints.model_copy(update={"allowed_models": allowed})
        remaining = self.book.remaining(key, time.time()) if key is not None and key.limited else None
        if remaining is not None:
            if constraints.budget_usd is not None:
                remaining = min(remaining, constraints.budget_usd)
            constraints = constraints.model_copy(update={"budget_usd": remaining})
        max_tokens = body.max_completion_tokens or body.max_tokens
        fields: dict[str, Any] = {
            "messages": tuple(body.messages),
            "preferences": preferences,
            "constraints": constraints if (cons or allowed is not None or remaining is not None) else None,
            "max_tokens": max_tokens,
            "default_max_tokens": None if max_tokens is not None else self._default_max_tokens(key)[0],
            "response_format": body.response_format,
            "tools": tuple(body.tools) if body.tools else None,
            "stream": body.stream,
            "model": pinned,
            "metadata": {
                "request_id": request_id,
                **((body.router.metadata or {}) if body.router else {}),
                **({"pace_scope": f"key:{key.id}"} if key is not None and key.pace is not None else {}),
                **({"key_id": key.id} if key is not None else {}),
                **({"user": body.user} if isinstance(body, ChatCompletionRequest) and body.user else {}),
            },
        }
        if self.cache_on and isinstance(body, ChatCompletionRequest):
            fields["cache"] = self._cache_options(request, body, key)
        if isinstance(body, ChatCompletionRequest):
            fields["temperature"] = body.temperature
            fields["stop"] = (body.stop,) if isinstance(body.stop, str) else (tuple(body.stop) if body.stop else None)
            fields["tool_choice"] = body.tool_choice
        try:
            return RouteRequest.model_validate(fields)
        except ValidationError as exc:
            raise validation_error(exc) from None

    def _cache_options(self, request: Request, body: ChatCompletionRequest, key: GatewayKey | None) -> CacheOptions:
        """``router.cache`` and ``Cache-Control`` as the request's cache options; under ``cache.scope: key`` the
        entries are partitioned by the caller's key (a caller cannot choose another key's partition)."""
        opts = body.router.cache if body.router is not None and body.router.cache is not None else None
        values: dict[str, Any] = opts.model_dump(exclude_none=True) if opts is not None else {}
        control = request.headers.get("cache-control")
        if control:
            directives = {d.strip().lower() for d in control.split(",")}
            values["no_cache"] = values.get("no_cache", False) or "no-cache" in directives
            values["no_store"] = values.get("no_store", False) or "no-store" in directives
        if self.cache_per_key and key is not None:
            values["partition"] = f"key:{key.id}"
        return CacheOptions.model_construct(**values) if values else _NO_CACHE_OPTIONS

    async def _decide(
        self, route_request: RouteRequest, executing: bool, key: GatewayKey | None = None
    ) -> RoutingDecision:
        try:
            return await self.router.adecide(route_request, for_execution=executing)
        except NoCandidatesError as exc:
            if key is not None and any(r.reason.startswith(BUDGET_REASON) for r in exc.rejected):
                raise self._over_budget(key, route_request, exc) from None
            self.metrics.rejected.labels("no_candidates").inc()
            only_health = bool(exc.rejected) and all(r.constraint == "health" for r in exc.rejected)
            raise GatewayHTTPError(
                503 if only_health else 400,
                str(exc),
                type="api_error" if only_health else "invalid_request_error",
                code="no_model_available",
                kind="no_candidates",
            ) from None
        except ConfigurationError as exc:
            raise GatewayHTTPError(400, str(exc), code="invalid_routing_options") from None

    # ---------------------------------------------------------------------------------------------
    # endpoints

    async def chat_completions(self, request: Request) -> Response:
        t0 = time.perf_counter()
        request_id = request.headers.get("x-request-id") or new_request_id()
        call: _Call | None = None
        streaming = False
        self.metrics.in_flight.inc()
        try:
            key = self.authenticate(request)
            try:
                body = ChatCompletionRequest.model_validate_json(await request.body())
            except ValidationError as exc:
                raise validation_error(exc) from None
            prompt = _prompt_text(body.messages) if self.log_prompts else None
            call = _Call(request_id, key, body.stream, t0, prompt)
            if self.tracing:
                call.trace = self.router.start_trace(
                    "chat", model=body.model, headers=request.headers, request_id=request_id
                )
                if self.router.tracing.log_prompts:
                    call.trace.record_prompt(prompt or _prompt_text(body.messages))
                call.trace.attach()
            if self.log_prompts:
                log.info("request %s prompt: %s", request_id, prompt)
            route_request = self._route_request(request, body, key, request_id)
            decision = await self._decide(route_request, True, key)
            call.decision = decision
            self.metrics.decided("chat", decision.routing_time_ms / 1000)
            if key is not None and key.limited:
                call.hold = await self._admit(key, request_id, route_request, decision)
                call.reserved = call.hold.cost
            if body.stream:
                include_usage = bool(body.stream_options and body.stream_options.include_usage)
                report = request.headers.get("x-router-stream-report") == "1"
                response = await self._stream(call, route_request, decision, include_usage, report)
                call.trace.detach()
                call, streaming = None, True  # the stream's own finaliser writes the ledger row
                return response
            try:
                result = await self.router.aexecute(route_request, decision)
            except (ProviderError, PostprocessError) as exc:
                self._failed(call, exc)
                raise provider_error(exc) from None
            self._succeeded(call, result)
            created = int(time.time())
            return _JSONBytes(
                _dumps(completion_json(result, f"chatcmpl-{request_id}", created)), 200, self._headers(call)
            )
        except GatewayHTTPError as err:
            if call is not None:
                call.status, call.outcome = err.status, call.outcome if call.outcome != "ok" else err.kind
                call.error = call.error or err.message
            else:
                self.metrics.requests.labels("chat", "", str(err.status)).inc()
            return _error(err)
        except anyio.get_cancelled_exc_class():
            if call is not None:
                call.status, call.outcome = 499, "cancelled"
            raise
        finally:
            if not streaming:
                self.metrics.in_flight.dec()
            if call is not None:
                call.trace.detach()
                self._finish(call, "chat")

    def _headers(self, call: _Call) -> list[tuple[bytes, bytes]]:
        """The answer's ``x-router-*`` headers. A header that cannot be built never costs the answer (which the
        upstream was paid for): it is answered without them, and the operator's log says why."""
        try:
            return self._router_headers(call)
        except Exception:
            log.exception(
                "request %s: the x-router-* headers could not be built; answered without them", call.request_id
            )
            return [(b"x-request-id", header_value(call.request_id))]

    def _router_headers(self, call: _Call) -> list[tuple[bytes, bytes]]:
        decision = call.decision
        assert decision is not None
        top = decision.top
        headers = [
            (b"x-request-id", header_value(call.request_id)),
            (b"x-router-model", _name_header(call.model or top.model.id)),
            (b"x-router-task", _name_header(decision.classification.task)),
            (b"x-router-decision-ms", b"%.3f" % decision.routing_time_ms),
            (b"x-router-estimated-cost", b"%.8f" % top.estimated_cost),
            (b"x-router-reason", _short_reason(decision, top)),
        ]
        if decision.variant:
            headers.append((b"x-router-variant", _name_header(decision.variant)))
        if not call.stream:
            headers.append((b"x-router-cost", b"%.8f" % call.cost))
            headers.append((b"x-router-fallbacks", b"%d" % call.fallbacks))
        if call.cache is not None:
            headers.append((b"x-router-cache", call.cache.encode()))
        return headers

    def _succeeded(self, call: _Call, result: RoutingResult) -> None:
        call.model = result.selected_model.id
        call.usage = result.usage
        call.cost = result.cost
        call.fallbacks = result.fallbacks
        call.cache, call.saved_cost = result.cache, result.saved_cost
        self.metrics.attempts(result.attempts, result.selected_model.id)
        if result.fallbacks:
            _log_upstream_auth(call.request_id, result.attempts)
            call.error = fallback_note(result.attempts, call.model)  # the ledger says which models failed

    def _failed(self, call: _Call, exc: RouterError) -> None:
        call.outcome = "error"
        call.error = str(exc)
        attempts = exc.attempts
        if not _log_upstream_auth(call.request_id, attempts) and isinstance(
            exc, AuthenticationError | PermissionDeniedError
        ):
            log.error(UPSTREAM_AUTH_LOG, call.request_id, exc.model, exc)
        call.fallbacks = len({a.model_id for a in attempts}) - 1 if attempts else 0
        self.metrics.attempts(attempts, None)

    def _finish(self, call: _Call, endpoint: str) -> None:
        """Reconcile the budget, count, and queue the ledger row (never blocks)."""
        now = time.time()
        latency = (time.perf_counter() - call.t0) * 1000
        model = call.model or (call.decision.selected.id if call.decision is not None else None)
        if call.hold is not None:
            self.book.settle(call.hold, call.cost, call.usage.input_tokens + call.usage.output_tokens, now)
        elif call.key is not None:
            self.ledger.spend.settle(call.key.id, 0.0, call.cost, now)
        m = self.metrics
        usage = call.usage
        m.finished(
            endpoint,
            model or "",
            call.status,
            latency / 1000,
            usage.input_tokens if model is not None else 0,
            usage.output_tokens if model is not None else 0,
        )
        if call.cost:
            m.cost.labels(model or "", call.key.id if call.key else "").inc(call.cost)
        if call.cache is not None:
            self.cache_lookups[call.cache].inc()
            if call.saved_cost:
                m.cache_saved.inc(call.saved_cost)
        decision = call.decision
        self._observe(call, endpoint, model, latency)
        self.ledger.record(
            LedgerRow(
                request_id=call.request_id,
                ts=now,
                key_id=call.key.id if call.key else None,
                endpoint=endpoint,
                task=decision.classification.task if decision is not None else None,
                model=model,
                input_tokens=call.usage.input_tokens,
                output_tokens=call.usage.output_tokens,
                estimated_cost_usd=call.reserved or (decision.top.estimated_cost if decision else 0.0),
                cost_usd=call.cost,
                latency_ms=latency,
                outcome=call.outcome,
                status=call.status,
                fallbacks=call.fallbacks,
                stream=call.stream,
                error=call.error,
                prompt=call.prompt,
                cache=call.cache,
                saved_cost_usd=call.saved_cost,
                variant=decision.variant if decision is not None else None,
            )
        )

    def _observe(self, call: _Call, endpoint: str, model: str | None, latency_ms: float) -> None:
        """End the request's span and write its log line (both no-ops when switched off)."""
        trace = call.trace
        trace_id = trace.trace_id
        if trace.span is not None:
            usage = call.usage
            trace.finish(
                decision=call.decision,
                error=RuntimeError(call.error or call.outcome) if call.status >= 400 else None,
                attributes={
                    "gen_ai.response.model": model,
                    "gen_ai.usage.input_tokens": usage.input_tokens,
                    "gen_ai.usage.output_tokens": usage.output_tokens,
                    "llm_router.cost_usd": call.cost,
                    "llm_router.cache": call.cache,
                    "llm_router.saved_cost_usd": call.saved_cost if call.cache is not None else None,
                    "llm_router.fallbacks": call.fallbacks,
                    "http.response.status_code": call.status,
                    "llm_router.key_id": call.key.id if call.key else None,
                },
            )
        if self.request_log.enabled:
            self.request_log.write(
                request_id=call.request_id,
                endpoint=endpoint,
                key_id=call.key.id if call.key else None,
                task=call.decision.classification.task if call.decision is not None else None,
                model=model,
                status=call.status,
                outcome=call.outcome,
                input_tokens=call.usage.input_tokens,
                output_tokens=call.usage.output_tokens,
                cost_usd=call.cost,
                latency_ms=latency_ms,
                cache=call.cache,
                saved_cost_usd=call.saved_cost,
                fallbacks=call.fallbacks,
                stream=call.stream,
                trace_id=trace_id,
                error=call.error,
            )

    async def _stream(
        self,
        call: _Call,
        route_request: RouteRequest,
        decision: RoutingDecision,
        include_usage: bool,
        report: bool = False,
    ) -> Response:
        routed = self.router.open_stream(route_request, decision)
        iterator = routed.__aiter__()
        try:
            first = await iterator.__anext__()  # fallbacks happen before any text: errors are still HTTP errors
        except StopAsyncIteration:
            first = None
        except (ProviderError, PostprocessError) as exc:
            self._failed(call, exc)
            raise provider_error(exc) from None  # the handler writes the ledger row
        except BaseException:
            await routed.aclose()
            raise
        if routed.model is not None:
            call.model = routed.model.id
        call.cache = routed.cache
        if routed.result is not None and routed.cache in ("hit", "semantic"):
            call.model, call.saved_cost = routed.result.selected_model.id, routed.result.saved_cost
        self.metrics.ttft.labels(call.model or "").observe(time.perf_counter() - call.t0)
        writer = ChunkWriter(f"chatcmpl-{call.request_id}", call.model or decision.selected.id, include_usage)
        headers = self._headers(call)

        async def body() -> AsyncIterator[bytes]:
            try:
                yield writer.role()
                if first is not None:
                    yield writer.chunk(first)
                    async for chunk in iterator:
                        yield writer.chunk(chunk)
                result = routed.result
                finish = result.response.finish_reason if result is not None else None
                yield writer.finish(finish or "stop")
                if result is not None:
                    yield writer.usage(result.usage)
                    if report:  # header x-router-stream-report: 1 (the playground's)
                        yield stream_report(result)
                yield ChunkWriter.DONE
            except (ProviderError, PostprocessError) as exc:  # text was already sent: report in-band
                self._failed(call, exc)
                call.status = provider_error(exc).status
                yield ChunkWriter.error(provider_error(exc))
            except BaseException:
                call.status, call.outcome = 499, "cancelled"
                raise
            finally:
                await routed.aclose()
                self.metrics.in_flight.dec()
                self._finish_stream(call, routed)

        async def abandoned() -> None:  # the client left before the body started: close upstream, account
            call.status, call.outcome = 499, "cancelled"
            await routed.aclose()
            self.metrics.in_flight.dec()
            self._finish_stream(call, routed)

        return SSEResponse(body(), headers, abandoned)

    def _finish_stream(self, call: _Call, routed: RoutedStream) -> None:
        """The ledger row of a stream, from what it cost however it ended (completed, failed midway,
        abandoned: the input and the text sent so far are charged)."""
        settled = routed.settlement()
        if settled.model is not None:
            call.model = settled.model.id
            call.usage = settled.usage
            call.cost = settled.cost
            call.fallbacks = settled.fallbacks
            if settled.fallbacks and call.outcome == "ok":
                call.error = fallback_note(settled.attempts, call.model)
        if settled.completed:
            self.metrics.attempts(settled.attempts, call.model)
        self._finish(call, "chat")

    async def route(self, request: Request) -> Response:
        try:
            key = self.authenticate(request)
            try:
                body = RouteBody.model_validate_json(await request.body())
            except ValidationError as exc:
                raise validation_error(exc) from None
            request_id = request.headers.get("x-request-id") or new_request_id()
            route_request = self._route_request(request, body, key, request_id)
            decision = await self._decide(route_request, False, key)
        except GatewayHTTPError as err:
            self.metrics.requests.labels("route", "", str(err.status)).inc()
            return _error(err)
        self.metrics.decided("route", decision.routing_time_ms / 1000)
        self.metrics.requests.labels("route", decision.selected.id, "200").inc()
        data = decision.to_json()
        data["explanation"] = decision.explain()
        return _json(data, headers={"x-router-model": decision.selected.id, "x-request-id": request_id})

    async def models(self, request: Request) -> Response:
        try:
            key = self.authenticate(request)
        except GatewayHTTPError as err:
            return _error(err)
        allowed = self.key_models[key.id] if key is not None else self.all_models
        data = [{"id": "auto", "object": "model", "created": 0, "owned_by": "llm-router"}]
        data += [
            {"id": name, "object": "model", "created": 0, "owned_by": "llm-router"}
            for name, ids in sorted(self.aliases.items())
            if ids & allowed
        ]
        data += [
            {"id": m.id, "object": "model", "created": 0, "owned_by": m.provider}
            for m in self.router.catalogue
            if m.id in allowed
        ]
        return _json({"object": "list", "data": data})

    async def health(self, request: Request) -> Response:
        providers = {}
        for name in self.router.policy.providers:
            reason = self.router.provider_status(name)
            providers[name] = {"ready": reason is None, "reason": reason}
        ready = not providers or any(p["ready"] for p in providers.values())
        return _json({"status": "ok", "ready": ready, "providers": providers})

    async def metrics_endpoint(self, request: Request) -> Response:
        up = getattr(self.book, "up", True) and getattr(self.router.state, "up", True)
        self.metrics.state_up.set(1 if up else 0)
        return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def feedback(self, request: Request) -> Response:
        try:
            self.authenticate(request)
            try:
                fb = Feedback.model_validate_json(await request.body())
            except ValidationError as exc:
                raise validation_error(exc) from None
        except GatewayHTTPError as err:
            return _error(err)
        try:
            await self.router.afeedback(fb)
        except FeedbackError as exc:
            return _error(GatewayHTTPError(404, str(exc), param="request_id", code="unknown_request_id"))
        if fb.rating is not None or fb.outcome is not None:  # for `llm-router ab report`
            await anyio.to_thread.run_sync(self.ledger.record_feedback, fb.request_id, fb.rating, fb.outcome)
        return _json({"status": "accepted", "request_id": fb.request_id})


_NO_CACHE_OPTIONS = CacheOptions()
_NO_CONSTRAINTS = Constraints()  # frozen: one shared instance for the requests that set none

UPSTREAM_AUTH_LOG = "request %s: the upstream provider rejected the gateway's credentials for %s: %s"


def _key_book(router: Router, ledger: Ledger | PostgresLedger) -> KeyBook:
    """The keys' budgets and rate windows: in this process, or shared on Redis (``state.backend``)."""
    from .limits import MemoryBook

    local = MemoryBook(ledger.spend)
    state = router.policy.state
    if state.backend != "redis":
        return local
    from ..redis_state import RedisBook

    return RedisBook(state, local, ledger.spend, router.policy.gateway.keys)


def _log_upstream_auth(request_id: str, attempts: tuple[Attempt, ...]) -> bool:
    """Tell the operator about every attempt the upstream refused for the gateway's credentials (the client's
    answer does not say why: its message would name the key setting and may echo part of the key)."""
    found = False
    for attempt in attempts:
        if attempt.error_kind in ("authentication", "permission"):
            log.error(UPSTREAM_AUTH_LOG, request_id, attempt.model_id, attempt.error)
            found = True
    return found


@functools.lru_cache(maxsize=4096)
def _name_header(name: str) -> bytes:
    """A model id or task name as a header value (a few hundred distinct names: made safe once each)."""
    return header_value(name)


def _prompt_text(messages: list[Message]) -> str:
    return "\n".join(f"{m.role}: {m.text()}" for m in messages)


def _short_reason(decision: RoutingDecision, top: ScoredCandidate) -> bytes:
    """The ``x-router-reason`` header: why the winner won, in one short line (``POST /v1/route`` has the
    full explanation): ``openai/gpt-5-mini: summarization (rules 0.88), 1st of 3: quality 0.91, cost 0.80``."""
    c = decision.classification
    parts = ", ".join(f"{k} {v:.2f}" for k, v in top.breakdown.items())
    text = f"{top.model.id}: {c.task} ({c.method} {c.confidence:.2f}), 1st of {decision.candidate_count}: {parts}"
    return header_value(text)


def _finite(values: dict[str, Any], where: str, param: str | None = None) -> dict[str, Any]:
    """``values`` when none of its numbers is infinite or NaN (``1e999`` in JSON, ``inf`` in a header), else a
    422 naming the field (``router.preferences.quality``) or the header."""
    for name, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise GatewayHTTPError(
                422,
                f"invalid request: {where}: {name} must be a finite number, got {value}",
                param=param or f"{where}.{name}",
                code="invalid_value",
            )
    return values


def _header_map(name: str, raw: str) -> dict[str, Any]:
    """``x-router-*`` headers: a JSON object, or ``name=value,name=value`` (values are numbers or lists
    separated by ``|``)."""
    raw = raw.strip()
    if raw.startswith("{"):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise GatewayHTTPError(400, f"header {name} is not valid JSON: {exc}", param=name) from None
        if not isinstance(value, dict):
            raise GatewayHTTPError(400, f"header {name} must be a JSON object", param=name)
        return value
    out: dict[str, Any] = {}
    for item in raw.split(","):
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise GatewayHTTPError(400, f"header {name}: expected name=value pairs, got {item!r}", param=name)
        v = v.strip()
        try:
            out[k.strip()] = float(v)
        except ValueError:
            out[k.strip()] = (
                v.split("|") if "|" in v or k.strip().startswith(("allowed_", "blocked_", "required_")) else v
            )
    return out


class GatewayApp(Starlette):
    """The gateway's Starlette app, with :class:`~llm_router.gateway.edge.Edge` outside everything else
    (Starlette's own error middleware included), so that even its 500s carry ``x-request-id``."""

    edge_limit: int = 4 * 1024 * 1024
    on_too_large: Callable[[], None] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        return Edge(super().build_middleware_stack(), self.edge_limit, self.on_too_large)


def create_app(
    router: Router | str | os.PathLike[str] | None = None,
    *,
    ledger_path: str | os.PathLike[str] | None = None,
    plugins: tuple[object, ...] = (),
) -> Starlette:
    """The gateway app for ``router`` (a Router, a policy path, or None for ``$LLM_ROUTER_POLICY`` / the
    built-in policy)."""
    if not isinstance(router, Router):
        router = Router(router or os.environ.get("LLM_ROUTER_POLICY") or None, plugins=plugins)
    gw = Gateway(router, ledger_path=ledger_path or os.environ.get("LLM_ROUTER_LEDGER") or None)

    def endpoint(fn: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        return fn

    app = GatewayApp(
        routes=[
            Route("/v1/chat/completions", endpoint(gw.chat_completions), methods=["POST"]),
            Route("/chat/completions", endpoint(gw.chat_completions), methods=["POST"]),
            Route("/v1/route", endpoint(gw.route), methods=["POST"]),
            Route("/v1/models", endpoint(gw.models), methods=["GET"]),
            Route("/v1/feedback", endpoint(gw.feedback), methods=["POST"]),
            Route("/health", endpoint(gw.health), methods=["GET"]),
            Route("/metrics", endpoint(gw.metrics_endpoint), methods=["GET"]),
            Route("/openapi.json", endpoint(_openapi), methods=["GET"]),
            *UsageAPI(gw).routes(),  # /v1/usage/*: the dashboard's data, admin keys only
            *WebApp().routes(),  # the web app: playground at /, dashboard at /dashboard
        ],
        lifespan=gw.lifespan,
        exception_handlers={
            404: _not_found,
            405: _not_found,
            GatewayHTTPError: _gateway_error,
            Exception: _internal_error,
        },
    )
    app.edge_limit = gw.config.max_body_bytes
    app.on_too_large = gw.metrics.rejected.labels("body_too_large").inc
    app.state.gateway = gw
    return app


async def _not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    headers = getattr(exc, "headers", None) or {}  # a 405 says which methods are allowed (`Allow`)
    return _json(
        error_body(
            f"{request.method} {request.url.path}: {getattr(exc, 'detail', 'not found')}",
            "invalid_request_error",
            None,
            "not_found" if status == 404 else "method_not_allowed",
        ),
        status,
        headers,
    )


async def _gateway_error(request: Request, exc: Exception) -> Response:
    """A :class:`GatewayHTTPError` no endpoint caught (the body limit, raised while a body is read)."""
    assert isinstance(exc, GatewayHTTPError)
    return _error(exc)


async def _internal_error(request: Request, exc: Exception) -> Response:
    """A fault of the gateway itself: OpenAI's error format, no detail for the client (Starlette re-raises the
    exception after this answer, so the server's log has the traceback)."""
    rid = request.headers.get("x-request-id", "")
    return _json(
        error_body(
            f"internal error of the gateway (request {rid}); the operator's log has the details",
            "api_error",
            None,
            "internal_error",
        ),
        500,
    )


@functools.cache
def _openapi_json() -> bytes:
    from .openapi import openapi_document

    return _dumps(openapi_document())


async def _openapi(request: Request) -> Response:
    """``GET /openapi.json`` (encoded on first use)."""
    return _JSONBytes(_openapi_json(), 200, [])


def app_from_env() -> Starlette:
    """uvicorn factory for ``--workers N`` (reads ``LLM_ROUTER_POLICY``, ``LLM_ROUTER_LEDGER`` and the log
    format and level ``llm-router serve`` was given)."""
    fmt = os.environ.get("LLM_ROUTER_LOG_FORMAT")
    if fmt in ("json", "text"):
        from .requestlog import configure_logging

        configure_logging(os.environ.get("LLM_ROUTER_LOG_LEVEL", "info"), fmt)
    return create_app()
