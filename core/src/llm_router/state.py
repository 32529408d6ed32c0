"""Shared router state: circuit breakers and live latency averages.

Everything stateful sits behind :class:`StateStore`. :class:`MemoryState` keeps it in this process; a
shared backend (Redis, for several gateway instances) implements the same methods. The hot path only reads
(``is_open``, ``latency``), so a shared backend can answer from a local snapshot it refreshes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["CircuitState", "MemoryState", "StateStore"]


@dataclass(slots=True)
class CircuitState:
    failures: int = 0
    opened_at: float | None = None


@runtime_checkable
class StateStore(Protocol):
    """What the router remembers between requests."""

    def record_success(self, model_id: str, ttft_ms: float | None, tokens_per_second: float | None) -> None:
        """A call to ``model_id`` succeeded; fold its measured latency into the live averages."""

    def record_failure(self, model_id: str, kind: str) -> None:
        """A call to ``model_id`` failed with error kind ``kind``."""

    def open_circuit_reason(self, model_id: str) -> str | None:
        """``None`` when ``model_id`` may be called; else why not (its circuit breaker is open)."""

    def latency(self, model_id: str) -> tuple[float, float] | None:
        """The live (time to first token in ms, output tokens per second) for ``model_id``, if both are
        measured."""

    def latency_table(self) -> Mapping[str, tuple[float | None, float | None]]:
        """Live (time to first token in ms, output tokens per second) by model id, either part ``None``
        where not measured yet. Read on every decision: make it cheap."""

    def has_open_circuits(self) -> bool:
        """Whether any circuit may be open (lets the health check skip the per-model look-ups)."""


class MemoryState:
    """In-process state. Thread-safe; reads take no lock.

    :param failure_threshold: consecutive failures that open a model's circuit.
    :param cooldown_s: how long an open circuit stays open before one trial call is let through.
    :param alpha: weight of a new latency measurement in the exponential moving average.
    """

    def __init__(self, failure_threshold: int = 5, cooldown_s: float = 30.0, alpha: float = 0.2) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.alpha = alpha
        self._circuits: dict[str, CircuitState] = {}
        self._latency: dict[str, tuple[float | None, float | None]] = {}
        self._lock = threading.Lock()

    def record_success(self, model_id: str, ttft_ms: float | None, tokens_per_second: float | None) -> None:
        with self._lock:
            self._circuits.pop(model_id, None)
            if ttft_ms is None and not tokens_per_second:
                return
            old_ttft, old_tps = self._latency.get(model_id, (None, None))
            a = self.alpha

            def ewma(old: float | None, new: float | None) -> float | None:
                if new is None:
                    return old
                return new if old is None else (1 - a) * old + a * new

            self._latency[model_id] = (ewma(old_ttft, ttft_ms), ewma(old_tps, tokens_per_second or None))

    def record_failure(self, model_id: str, kind: str) -> None:
        with self._lock:
            circuit = self._circuits.setdefault(model_id, CircuitState())
            circuit.failures += 1
            if circuit.failures >= self.failure_threshold:
                circuit.opened_at = time.monotonic()

    def open_circuit_reason(self, model_id: str) -> str | None:
        circuit = self._circuits.get(model_id)
        if circuit is None or circuit.opened_at is None:
            return None
        waited = time.monotonic() - circuit.opened_at
        if waited >= self.cooldown_s:
            return None  # half-open: let a trial call through; a failure re-opens it at once
        return (
            f"circuit open after {circuit.failures} consecutive failures; retrying in {self.cooldown_s - waited:.0f}s"
        )

    def latency_table(self) -> Mapping[str, tuple[float | None, float | None]]:
        return self._latency

    def has_open_circuits(self) -> bool:
        return any(c.opened_at is not None for c in self._circuits.values())

    def latency(self, model_id: str) -> tuple[float, float] | None:
        value = self._latency.get(model_id)
        if value is None or value[0] is None or value[1] is None:
            return None
        return (value[0], value[1])
