"""Prometheus metrics of the gateway (one registry per app, exposed at ``GET /metrics``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..types import Attempt

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
DECISION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "llm_router_requests",
            "Gateway requests by endpoint, model and HTTP status",
            ["endpoint", "model", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "llm_router_request_duration_seconds",
            "Time to the last byte of the answer",
            ["endpoint", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "llm_router_stream_first_chunk_seconds",
            "Time to the first streamed chunk",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decision = Histogram(
            "llm_router_decision_seconds", "Routing decision time", ["endpoint"], buckets=DECISION_BUCKETS, registry=r
        )
        self.tokens = Counter("llm_router_tokens", "Tokens by model and direction", ["model", "direction"], registry=r)
        self.cost = Counter("llm_router_cost_usd", "Cost in USD by model and key", ["model", "key"], registry=r)
        self.errors = Counter(
            "llm_router_provider_errors",
            "Failed provider calls by provider, model and error kind",
            ["provider", "model", "kind"],
            registry=r,
        )
        self.fallbacks = Counter(
            "llm_router_fallbacks",
            "Requests answered by another model after this one failed",
            ["provider", "model"],
            registry=r,
        )
        self.rejected = Counter(
            "llm_router_rejected_requests",
            "Requests refused before any provider call, by reason",
            ["reason"],
            registry=r,
        )
        self.in_flight = Gauge("llm_router_in_flight_requests", "Requests being answered", registry=r)
        self.state_up = Gauge(
            "llm_router_state_backend_up",
            "1 when the shared state store (Redis) answers (always 1 with state in memory), else 0",
            registry=r,
        )
        self.state_up.set(1)
        self.cache = Counter(
            "llm_router_cache_lookups",
            "Response cache lookups by result (hit, semantic, miss, bypass)",
            ["result"],
            registry=r,
        )
        self.cache_saved = Counter("llm_router_cache_saved_usd", "USD the response cache saved", registry=r)
        self.circuit_transitions = Counter(
            "llm_router_circuit_transitions",
            "Circuit breaker transitions by deployment (or model) and new state (open, half_open, closed)",
            ["deployment", "to_state"],
            registry=r,
        )
        self._finished: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._tokens: dict[str, tuple[Any, Any]] = {}
        self._decision: dict[str, Any] = {}

    def finished(
        self, endpoint: str, model: str, status: int, latency_s: float, input_tokens: int, output_tokens: int
    ) -> None:
        """Count one finished request (label children are cached: ``labels()`` costs more than the update)."""
        key = (endpoint, model, status)
        children = self._finished.get(key)
        if children is None:
            children = self._finished[key] = (
                self.requests.labels(endpoint, model, str(status)),
                self.latency.labels(endpoint, model),
            )
        children[0].inc()
        children[1].observe(latency_s)
        if input_tokens or output_tokens:
            tokens = self._tokens.get(model)
            if tokens is None:
                tokens = self._tokens[model] = (self.tokens.labels(model, "input"), self.tokens.labels(model, "output"))
            tokens[0].inc(input_tokens)
            tokens[1].inc(output_tokens)

    def decided(self, endpoint: str, seconds: float) -> None:
        child = self._decision.get(endpoint)
        if child is None:
            child = self._decision[endpoint] = self.decision.labels(endpoint)
        child.observe(seconds)

    def attempts(self, attempts: Iterable[Attempt], answered_by: str | None) -> None:
        failed: set[str] = set()
        for a in attempts:
            if a.outcome == "error":
                provider, _, model = a.model_id.partition("/")
                self.errors.labels(provider, model, a.error_kind or "unknown").inc()
                failed.add(a.model_id)
        if answered_by is not None:
            for model_id in failed - {answered_by}:
                provider, _, model = model_id.partition("/")
                self.fallbacks.labels(provider, model).inc()

    def circuit_transition(self, deployment: str, to_state: str) -> None:
        """A circuit changed state (a :class:`~llm_router.state.TransitionListener`)."""
        self.circuit_transitions.labels(deployment, to_state).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
