"""Shared router state: circuit breakers and live latency measurements.

Everything stateful sits behind :class:`StateStore`. :class:`MemoryState` keeps it in this process; a
shared backend (Redis, for several gateway instances) implements the same methods. The hot path only reads
(``open_circuit_reason``, ``latency_table``), so a shared backend can answer from a local snapshot it
refreshes.

State is keyed by model id, or for a model served by several deployments (``deployments:`` in the policy)
by deployment (``model_id@provider/model``): each deployment has its own circuit and latency, and the
model's view (:meth:`MemoryState.set_deployments`) is open only when all its deployments are.

Latency is kept as two separate measurements per model, each with how many samples it rests on: time to
first token (TTFT) and output speed (tokens per second). What a call may tell about them is decided by the
executor (a stream measures both; a whole answer only bounds them); the decision blends each measurement
with the catalogue's prior by its sample count (:func:`blend`), so one call never replaces a prior.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

__all__ = ["PRIOR_WEIGHT", "CircuitState", "LiveLatency", "MemoryState", "StateStore", "TransitionListener", "blend"]

log = logging.getLogger("llm_router.state")

TransitionListener = Callable[[str, str], None]
"""Called with (deployment or model key, new state: ``open`` / ``half_open`` / ``closed``) when a circuit
changes state; it runs inline, so it must be quick and must not raise."""

PRIOR_WEIGHT = 3.0
"""How many measurements the catalogue's latency prior is worth: after n samples the estimate is
``(PRIOR_WEIGHT * prior + n * measured) / (PRIOR_WEIGHT + n)``, so the first sample moves it a quarter of the
way and ten samples move it 77 % of the way."""


class LiveLatency(NamedTuple):
    """Measured latency of one model: TTFT in ms and output tokens per second, each with its sample count
    (``None`` and 0 where not measured)."""

    ttft_ms: float | None
    ttft_samples: int
    tokens_per_second: float | None
    tps_samples: int


def blend(prior: float, measured: float | None, samples: int) -> float:
    """The estimate from a catalogue ``prior`` and a live mean over ``samples`` measurements."""
    if measured is None or samples <= 0:
        return prior
    return (PRIOR_WEIGHT * prior + samples * measured) / (PRIOR_WEIGHT + samples)


@dataclass(slots=True)
class CircuitState:
    failures: int = 0
    opened_at: float | None = None
    half_open: bool = False  # the cooldown ran out and that was announced


@runtime_checkable
class StateStore(Protocol):
    """What the router remembers between requests."""

    def record_success(self, model_id: str, ttft_ms: float | None, tokens_per_second: float | None) -> None:
        """A call to ``model_id`` succeeded (its circuit closes); ``ttft_ms`` and ``tokens_per_second`` are
        samples to fold into the live measurements (``None``: this call did not measure it)."""

    def record_failure(self, model_id: str, kind: str) -> None:
        """A call to ``model_id`` failed with error kind ``kind``."""

    def open_circuit_reason(self, model_id: str) -> str | None:
        """``None`` when ``model_id`` may be called; else why not (its circuit breaker is open)."""

    def latency(self, model_id: str) -> tuple[float, float] | None:
        """The live (time to first token in ms, output tokens per second) means for ``model_id``, if both
        are measured."""

    def latency_table(self) -> Mapping[str, LiveLatency]:
        """Live measurements by model id. Read on every decision: make it cheap."""

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
        self.transition_listeners: list[TransitionListener] = []
        self._latency: dict[str, LiveLatency] = {}
        self._lock = threading.Lock()
        self._deployments: dict[str, tuple[str, ...]] = {}
        """Model id → its deployments' keys (circuits and latency are kept per deployment)."""
        self.parent: dict[str, str] = {}
        """Deployment key → its model id."""

    def set_deployments(self, model_id: str, keys: list[str]) -> None:
        """``model_id`` is served by deployments with these keys: each has its own circuit and latency; the
        model's circuit is open only when every deployment's is, and its latency folds every deployment's."""
        self._deployments[model_id] = tuple(keys)
        self.parent.update(dict.fromkeys(keys, model_id))

    def record_success(self, model_id: str, ttft_ms: float | None, tokens_per_second: float | None) -> None:
        with self._lock:
            was = self._circuits.pop(model_id, None)
            if was is not None and (was.opened_at is not None or was.failures >= self.failure_threshold):
                self._transition(model_id, "closed")
            if ttft_ms is None and not tokens_per_second:
                return
            self._fold_latency(model_id, ttft_ms, tokens_per_second)
            parent = self.parent.get(model_id)
            if parent is not None:  # a deployment's sample is also its model's
                self._fold_latency(parent, ttft_ms, tokens_per_second)

    def _fold_latency(self, key: str, ttft_ms: float | None, tokens_per_second: float | None) -> None:
        old = self._latency.get(key) or LiveLatency(None, 0, None, 0)
        ttft, n_ttft = self._fold(old.ttft_ms, old.ttft_samples, ttft_ms)
        tps, n_tps = self._fold(old.tokens_per_second, old.tps_samples, tokens_per_second or None)
        self._latency[key] = LiveLatency(ttft, n_ttft, tps, n_tps)

    def _fold(self, mean: float | None, n: int, sample: float | None) -> tuple[float | None, int]:
        """The running mean with ``sample`` in: a plain mean while samples are few, then an exponential
        moving average with weight ``alpha`` (recent behaviour counts more once there is enough of it)."""
        if sample is None:
            return mean, n
        if mean is None or n <= 0:
            return sample, 1
        weight = max(self.alpha, 1 / (n + 1))
        return (1 - weight) * mean + weight * sample, n + 1

    def record_failure(self, model_id: str, kind: str) -> None:
        with self._lock:
            circuit = self._circuits.setdefault(model_id, CircuitState())
            circuit.failures += 1
            if circuit.failures >= self.failure_threshold:
                now = time.monotonic()
                if circuit.opened_at is None or now - circuit.opened_at >= self.cooldown_s:
                    self._transition(model_id, "open")  # closed → open, or a failed trial re-opens it
                circuit.opened_at, circuit.half_open = now, False

    def _transition(self, key: str, to_state: str) -> None:
        """Announce that ``key``'s circuit went to ``to_state``: a log line and each transition listener."""
        log.info("circuit %s -> %s", key, to_state, extra={"deployment": key, "to_state": to_state})
        for listener in self.transition_listeners:
            listener(key, to_state)

    def open_circuit_reason(self, model_id: str) -> str | None:
        keys = self._deployments.get(model_id)
        if keys is not None:
            reasons = [self.open_circuit_reason(k) for k in keys]
            if not all(reasons):
                return None  # a deployment still serves the model
            each = "; ".join(f"{k}: {r}" for k, r in zip(keys, reasons, strict=True))
            return f"every deployment's circuit is open ({each})"
        circuit = self._circuits.get(model_id)
        if circuit is None or circuit.opened_at is None:
            return None
        waited = time.monotonic() - circuit.opened_at
        if waited >= self.cooldown_s:
            if not circuit.half_open:
                circuit.half_open = True
                self._transition(model_id, "half_open")
            return None  # half-open: let a trial call through; a failure re-opens it at once
        return (
            f"circuit open after {circuit.failures} consecutive failures; retrying in {self.cooldown_s - waited:.0f}s"
        )

    def latency_table(self) -> Mapping[str, LiveLatency]:
        return self._latency

    def replace(self, circuits: Mapping[str, tuple[int, float | None]], latency: dict[str, LiveLatency]) -> None:
        """Take a shared store's snapshot: circuits as (failures, monotonic time opened or ``None``), latency by
        model id."""
        with self._lock:
            old, self._circuits = self._circuits, {m: CircuitState(f, o) for m, (f, o) in circuits.items()}
            self._latency = latency
            for key in old.keys() | self._circuits.keys():  # what the rest of the fleet opened or closed
                before, after = old.get(key), self._circuits.get(key)
                was_open = before is not None and before.opened_at is not None
                is_open = after is not None and after.opened_at is not None
                if was_open != is_open:  # a shared store lets the instance that won the probe through
                    probing = after is not None and after.failures >= self.failure_threshold
                    self._transition(key, "open" if is_open else "half_open" if probing else "closed")
                elif after is not None and before is not None:
                    after.half_open = before.half_open and after.opened_at == before.opened_at

    def has_open_circuits(self) -> bool:
        return any(c.opened_at is not None for c in self._circuits.values())

    def latency(self, model_id: str) -> tuple[float, float] | None:
        value = self._latency.get(model_id)
        if value is None or value.ttft_ms is None or value.tokens_per_second is None:
            return None
        return (value.ttft_ms, value.tokens_per_second)
