"""OpenTelemetry traces (the optional extra ``otel``), with a no-op path that costs nothing when off.

One span per request (``chat <model>``, or the operation's name) with children for the decision's phases
(``llm_router.classify``, ``llm_router.constrain``, ``llm_router.score``, recorded from the decision's own
timestamps), the cache lookup (``llm_router.cache``), each provider attempt (``chat <provider model>``, one per
call: retries and fallbacks are visible) and post-processing (``llm_router.postprocess``). Attributes follow the
OpenTelemetry GenAI semantic conventions (``gen_ai.operation.name``, ``gen_ai.request.model``,
``gen_ai.response.model``, ``gen_ai.usage.input_tokens``, …) plus ``llm_router.*`` for the task, route, score,
cost and cache. An incoming W3C ``traceparent`` is continued. Prompts and answers are attributes only with
``telemetry.log_prompts: true``.

Switched on by the policy's ``telemetry: {tracing: true}``. The router uses the global tracer provider when
the application set one (``opentelemetry-instrument``, or its own SDK set-up); otherwise it sets up the SDK
with an OTLP/HTTP exporter configured by the standard ``OTEL_*`` variables (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_SERVICE_NAME``, …). ``opentelemetry`` is imported only when tracing is on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from .types import Attempt, RouteRequest, RoutingDecision, RoutingResult

__all__ = ["NO_TRACE", "RequestTrace", "TelemetryPolicy", "Tracing"]

log = logging.getLogger("llm_router")

INSTRUMENTATION = "llm_router"


class TelemetryPolicy(BaseModel):
    """``telemetry:``: traces and the per-request log line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tracing: bool = Field(
        default=False, description="OpenTelemetry spans per request (pip install 'llm-router[otel]'; OTEL_* variables)"
    )
    log_prompts: bool = Field(default=False, description="put prompts and answers on spans (off: never)")
    decision_spans: bool = Field(
        default=True,
        description="classify / constrain / score child spans (off: their durations are attributes of the request "
        "span only; each SDK span costs ~10-20 µs of CPU)",
    )
    request_log: bool = Field(
        default=True, description="the gateway logs one line per request at INFO (logger llm_router.requests)"
    )


class RequestTrace:
    """One request's span (a no-op one when tracing is off: :data:`NO_TRACE`)."""

    __slots__ = ("_token", "context", "span", "tracing")

    def __init__(self, tracing: Tracing | None, span: Any, context: Any) -> None:
        self.tracing = tracing
        self.span = span
        self.context = context
        self._token: Any = None

    @property
    def trace_id(self) -> str | None:
        """The trace id (32 hex digits), for log lines; ``None`` when tracing is off."""
        if self.span is None:
            return None
        return f"{self.span.get_span_context().trace_id:032x}"

    def attach(self) -> None:
        """Make this span the current one (until :meth:`detach`, in the same task)."""
        if self.tracing is not None:
            self._token = self.tracing.otel_context.attach(self.context)

    def detach(self) -> None:
        if self._token is not None and self.tracing is not None:
            self.tracing.otel_context.detach(self._token)
            self._token = None

    def record_prompt(self, text: str) -> None:
        """Put the prompt on the span as ``gen_ai.input.messages``, only with ``telemetry.log_prompts: true``."""
        if self.tracing is not None and self.tracing.log_prompts and self.span is not None:
            self.span.set_attribute("gen_ai.input.messages", text)

    @contextmanager
    def active(self) -> Iterator[RequestTrace]:
        self.attach()
        try:
            yield self
        finally:
            self.detach()

    def finish(
        self,
        *,
        result: RoutingResult | None = None,
        decision: RoutingDecision | None = None,
        error: BaseException | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """Set the outcome's attributes and end the span (idempotent)."""
        tracing, span = self.tracing, self.span
        if tracing is None or span is None:
            return
        self.span = None
        tracing.finish(span, result=result, decision=decision, error=error, attributes=attributes)


NO_TRACE = RequestTrace(None, None, None)
"""The request trace when tracing is off: every method does nothing."""


class Tracing:
    """The router's tracer (``on`` False: nothing is imported, every call returns at once)."""

    def __init__(self, policy: TelemetryPolicy, tracer_provider: Any = None) -> None:
        self.on = policy.tracing or tracer_provider is not None
        self.log_prompts = policy.log_prompts
        self.phase_spans = policy.decision_spans
        self.tracer: Any = None
        if self.on:
            self.tracer = _tracer(tracer_provider)
            from opentelemetry import context as otel_context
            from opentelemetry import trace
            from opentelemetry.propagate import extract
            from opentelemetry.trace import Status, StatusCode

            self.otel_context: Any = otel_context
            self._trace: Any = trace
            self._extract: Any = extract
            self._status: Any = Status
            self._error_code: Any = StatusCode.ERROR

    def recording(self, context: Any = None) -> bool:
        """Whether the span of ``context`` (default: the current one) records: children are made only under a
        recorded span (a request the sampler left out costs no child span)."""
        return bool(self._trace.get_current_span(context).is_recording())

    # ----------------------------------------------------------------------------------------------
    # the request span

    def start_request(
        self,
        operation: str,
        *,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> RequestTrace:
        if not self.on:
            return NO_TRACE
        trace = self._trace
        parent = self._extract(headers) if headers is not None else None
        attrs: dict[str, Any] = {"gen_ai.operation.name": operation}
        if model is not None:
            attrs["gen_ai.request.model"] = model
        if request_id is not None:
            attrs["llm_router.request_id"] = request_id
        name = f"{operation} {model}" if model else operation
        span = self.tracer.start_span(name, context=parent, kind=trace.SpanKind.SERVER, attributes=attrs)
        return RequestTrace(self, span, trace.set_span_in_context(span, parent))

    def finish(
        self,
        span: Any,
        *,
        result: RoutingResult | None,
        decision: RoutingDecision | None,
        error: BaseException | None,
        attributes: Mapping[str, Any] | None,
    ) -> None:
        if not span.is_recording():
            span.end()
            return
        decision = decision or (result.decision if result is not None else None)
        attrs: dict[str, Any] = {}
        if decision is not None:
            attrs.update(decision_attributes(decision))
        if result is not None:
            attrs.update(result_attributes(result, self.log_prompts))
        if attributes:
            attrs.update({k: v for k, v in attributes.items() if v is not None})
        if error is not None:
            attrs["error.type"] = getattr(error, "kind", None) or type(error).__name__
            span.set_status(self._status(self._error_code, str(error)[:500]))
        span.set_attributes(attrs)
        span.end()

    # ----------------------------------------------------------------------------------------------
    # children

    def current(self) -> Any:
        """The current context (a stream keeps it for the spans of its attempts)."""
        if not self.on:
            return None
        return self.otel_context.get_current()

    def span(self, name: str, attributes: Mapping[str, Any], context: Any = None, client: bool = False) -> Any:
        kind = self._trace.SpanKind.CLIENT if client else self._trace.SpanKind.INTERNAL
        return self.tracer.start_span(name, context=context, kind=kind, attributes=attributes)

    def decision_spans(self, decision: RoutingDecision, marks: Sequence[float]) -> None:
        """``classify``, ``constrain`` and ``score`` children, from the decision's timestamps
        (``perf_counter`` seconds: start, decide start, constrained, scored)."""
        if len(marks) < 4:
            return
        current = self._trace.get_current_span()
        if not current.is_recording():
            return
        current.set_attributes(
            {
                "llm_router.classify_ms": (marks[1] - marks[0]) * 1000,
                "llm_router.constrain_ms": (marks[2] - marks[1]) * 1000,
                "llm_router.score_ms": (marks[3] - marks[2]) * 1000,
            }
        )
        if not self.phase_spans:
            return
        offset = time.time_ns() - int(time.perf_counter() * 1e9)
        ns = [int(m * 1e9) + offset for m in marks]
        phases = (
            ("llm_router.classify", ns[0], ns[1]),
            ("llm_router.constrain", ns[1], ns[2]),
            ("llm_router.score", ns[2], ns[3]),
        )
        start_span = self.tracer.start_span
        for name, start, end in phases:  # their results are attributes of the request span (fewer to clean)
            start_span(name, start_time=start).end(end_time=max(start, end))

    def attempt(self, provider: str, model: str, model_id: str, retry: int, request: RouteRequest, context: Any) -> Any:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.system": provider,
            "gen_ai.request.model": model,
            "llm_router.model_id": model_id,
            "llm_router.retry": retry,
        }
        if request.max_tokens is not None:
            attrs["gen_ai.request.max_tokens"] = request.max_tokens
        if request.temperature is not None:
            attrs["gen_ai.request.temperature"] = request.temperature
        return self.span(f"chat {model}", attrs, context, client=True)

    def end_attempt(
        self, span: Any, attributes: Mapping[str, Any] | None = None, *, error: BaseException | None = None
    ) -> None:
        """End a child span with ``attributes`` (``None`` values left out) and the error, if any."""
        attrs = {k: v for k, v in attributes.items() if v is not None} if attributes else {}
        if error is not None:
            attrs["error.type"] = getattr(error, "kind", None) or type(error).__name__
            span.set_status(self._status(self._error_code, str(error)[:500]))
        if attrs:
            span.set_attributes(attrs)
        span.end()


def decision_attributes(decision: RoutingDecision) -> dict[str, Any]:
    top = decision.top
    return {
        "llm_router.task": decision.classification.task,
        "llm_router.classifier": decision.classification.method,
        "llm_router.confidence": decision.classification.confidence,
        "llm_router.candidates": decision.candidate_count,
        "llm_router.rejected": len(decision.rejected),
        "llm_router.route": decision.route,
        "llm_router.selected": top.model.id,
        "llm_router.score": top.score,
        "llm_router.estimated_cost_usd": top.estimated_cost,
        "llm_router.routing_time_ms": decision.routing_time_ms,
    }


def result_attributes(result: RoutingResult, log_prompts: bool) -> dict[str, Any]:
    response = result.response
    attrs: dict[str, Any] = {
        "gen_ai.response.model": response.model,
        "gen_ai.usage.input_tokens": result.usage.input_tokens,
        "gen_ai.usage.output_tokens": result.usage.output_tokens,
        "llm_router.model_id": result.selected_model.id,
        "llm_router.cost_usd": result.cost,
        "llm_router.fallbacks": result.fallbacks,
        "llm_router.attempts": len(result.attempts),
    }
    if response.finish_reason:
        attrs["gen_ai.response.finish_reasons"] = (response.finish_reason,)
    if result.cache is not None:
        attrs["llm_router.cache"] = result.cache
        attrs["llm_router.saved_cost_usd"] = result.saved_cost
    if log_prompts:
        attrs["gen_ai.output.messages"] = response.text
    return attrs


def attempts_summary(attempts: Sequence[Attempt]) -> str:
    return ",".join(f"{a.model_id}:{a.outcome}" for a in attempts)


def _tracer(tracer_provider: Any) -> Any:
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise ImportError("telemetry.tracing needs OpenTelemetry: pip install 'llm-router[otel]'") from exc
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("llm-router")
    except PackageNotFoundError:  # pragma: no cover
        ours = None
    provider = tracer_provider
    if provider is None:
        provider = trace.get_tracer_provider()
        if type(provider).__name__ in ("ProxyTracerProvider", "NoOpTracerProvider"):
            provider = sdk_provider()
            trace.set_tracer_provider(provider)
    return provider.get_tracer(INSTRUMENTATION, ours)


def sdk_provider() -> Any:
    """The SDK's provider with an OTLP/HTTP exporter, both configured by the ``OTEL_*`` variables."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ImportError(
            "telemetry.tracing needs the OpenTelemetry SDK and OTLP exporter: pip install 'llm-router[otel]'"
        ) from exc
    import os

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "llm-router")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    log.info(
        "tracing: OTLP/HTTP export (OTEL_EXPORTER_OTLP_ENDPOINT=%s)",
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "default"),
    )
    return provider
