"""Deployments: one catalogue model served by several provider instances (two keys, two regions, an
OpenAI and an Azure-style base URL, several vLLM replicas), each with its own limits and weight.

The executor asks the model's :class:`DeploymentPool` for a deployment before each call
(:meth:`DeploymentPool.pick`). The pool skips deployments at their ``rpm``/``tpm`` limit (sliding
60-second window), those cooling down after a 429 (for its ``Retry-After``, else ``cooldown_s``) and those
whose own circuit breaker is open, then picks among the rest by the policy's ``strategy``:

- ``least-busy``: fewest calls in flight (ties: the first listed);
- ``latency``: lowest measured latency (a moving average; an unmeasured deployment is tried first);
- ``usage``: lowest share of its ``tpm`` (else tokens) used in the last minute;
- ``weighted``: at random, in proportion to ``weight`` (weight 0: only when no other is available);
- ``shuffle``: at random, uniformly.

Each call's attempt records the deployment and why the others were passed over.

Circuit breakers and live latency are kept per deployment, under :attr:`Deployment.key`
(``model_id@provider/model``) in the router's state store; the model's own view (the ``health`` constraint,
the decision's latency estimates) is open only when every deployment's circuit is, and its latency folds every
deployment's (see :meth:`llm_router.state.MemoryState.set_deployments`).

Windows and cooldowns are kept in this process, and fleet-wide when the state store shares them
(:class:`SharedWindows`, ``state: {backend: redis}``): each pick, each call's end (its tokens, and its latency
when it succeeded) are added to the deployment's window in Redis (pipelined, in the background) and a cooldown
is set there; the pool reads the fleet's counts from the store's local snapshot, adding its own calls made since
that snapshot was read. So ``least-busy`` counts the fleet's calls in flight (started minus ended in the last
60 s) and ``latency`` ranks by the fleet's mean latency over the last 60 s (this process's moving average when
the snapshot has none). The
hot path never waits on Redis, so the fleet's bound is eventual: instances may together exceed a limit by
the calls the others started within one ``state.refresh_ms`` (see docs/reliability.md).
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from .catalogue import Catalogue
from .policy import ModelDeployments

__all__ = ["Deployment", "DeploymentPool", "FleetWindow", "SharedWindows", "build_pools"]

WINDOW_S = 60.0


class FleetWindow(NamedTuple):
    """A deployment's window as the whole fleet sees it, from a shared store's snapshot."""

    requests: int
    """Calls started in the last 60 s by every instance."""
    tokens: int
    """Tokens of calls that ended in the last 60 s, by every instance."""
    cool_until: float
    """Epoch seconds until which the deployment rests after a 429 (0: not cooling down)."""
    read_at: float
    """``time.monotonic()`` when the snapshot was read (this process's calls since then are not in it)."""
    in_flight: int = 0
    """Calls started and not yet ended in the last 60 s, by every instance (a call longer than the window
    drops out of it)."""
    latency_ms: float | None = None
    """Mean latency of the calls that succeeded in the last 60 s, on every instance (``None``: none)."""


@runtime_checkable
class SharedWindows(Protocol):
    """A state store that shares deployments' windows and cooldowns (Redis)."""

    def watch_deployments(self, keys: Iterable[str]) -> None:
        """Keep these deployments' fleet windows in the local snapshot."""

    def fleet_window(self, key: str) -> FleetWindow | None:
        """The fleet's window of deployment ``key`` as last read (``None``: not read, or the store is away)."""

    def add_to_window(
        self, key: str, requests: int, tokens: int, ended: int = 0, latency_ms: float | None = None
    ) -> None:
        """Count a call started (``requests``), or one that ended (``ended``) with its tokens and, when it
        succeeded, its latency, fleet-wide (never blocks)."""

    def cool_deployment(self, key: str, until: float) -> None:
        """Rest deployment ``key`` for the whole fleet until epoch ``until`` (never blocks)."""


@dataclass(slots=True)
class Deployment:
    """One provider instance serving the model, with its limits and live counters."""

    provider: str
    model: str
    rpm: int | None
    tpm: int | None
    weight: float
    key: str = ""
    """Its circuit breaker's, latency's and shared window's key: ``model_id@provider/model``."""
    in_flight: int = 0
    cool_until: float = 0.0
    latency_ms: float | None = None
    window: deque[tuple[float, int, int]] = field(default_factory=deque)
    """(monotonic time, calls started, tokens of a call that ended) of this process, the last 60 s."""
    ended: deque[float] = field(default_factory=deque)
    """Monotonic times of this process's calls that ended since the fleet snapshot was read."""
    fleet: FleetWindow | None = None

    def busy(self) -> int:
        """Calls in flight: the fleet's as last read plus this process's started and ended since (this process's
        own when there is no shared snapshot)."""
        fleet = self.fleet
        if fleet is None:
            return self.in_flight
        while self.ended and self.ended[0] <= fleet.read_at:
            self.ended.popleft()
        started = 0
        for t, calls, _ in reversed(self.window):  # newest first: stop at the snapshot
            if t <= fleet.read_at:
                break
            started += calls
        return max(self.in_flight, fleet.in_flight + started - len(self.ended))

    def measured_ms(self) -> float | None:
        """The latency the ``latency`` strategy ranks by: the fleet's mean over the last minute when a shared
        snapshot has one, else this process's moving average."""
        fleet = self.fleet
        if fleet is not None and fleet.latency_ms is not None:
            return fleet.latency_ms
        return self.latency_ms

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.model}"

    def _trim(self, now: float) -> None:
        while self.window and self.window[0][0] <= now - WINDOW_S:
            self.window.popleft()

    def counts(self) -> tuple[int, int]:
        """(calls started, tokens used) in the last 60 s: this process's, or the fleet's when shared (its
        snapshot plus this process's calls since the snapshot was read, whichever is more)."""
        requests = sum(r for _, r, _ in self.window)
        tokens = sum(t for _, _, t in self.window)
        fleet = self.fleet
        if fleet is not None:
            requests = max(requests, fleet.requests + sum(r for at, r, _ in self.window if at >= fleet.read_at))
            tokens = max(tokens, fleet.tokens + sum(t for at, _, t in self.window if at >= fleet.read_at))
        return requests, tokens

    def unavailable(self, now: float, circuit: str | None = None) -> str | None:
        """Why this deployment cannot take a call now, or ``None``."""
        cool = self.cool_until
        if self.fleet is not None and self.fleet.cool_until:
            cool = max(cool, now + self.fleet.cool_until - time.time())
        if cool > now:
            return f"cooling down after a 429 for {cool - now:.0f}s more"
        if circuit is not None:
            return circuit
        self._trim(now)
        if self.rpm is None and self.tpm is None:
            return None
        requests, tokens = self.counts()
        if self.rpm is not None and requests >= self.rpm:
            return f"at its rpm limit ({self.rpm})"
        if self.tpm is not None and tokens >= self.tpm:
            return f"at its tpm limit ({self.tpm})"
        return None

    def used_share(self) -> float:
        tokens = self.counts()[1]
        return tokens / self.tpm if self.tpm else float(tokens)


class DeploymentPool:
    """The deployments of one model and the strategy that picks among them.

    :param state: the router's state store: each deployment's circuit (``open_circuit_reason(key)``), and its
        windows and cooldowns fleet-wide when it is :class:`SharedWindows`.
    """

    def __init__(
        self,
        model_id: str,
        spec: ModelDeployments,
        default_model: str,
        seed: int | None = None,
        state: Any = None,
    ) -> None:
        self.model_id = model_id
        self.strategy = spec.strategy
        self.cooldown_s = spec.cooldown_s
        self.deployments = [
            Deployment(t.provider, t.model or default_model, t.rpm, t.tpm, t.weight) for t in spec.targets
        ]
        for dep in self.deployments:
            dep.key = f"{model_id}@{dep.name}"
        self.state = state
        self.shared: SharedWindows | None = state if isinstance(state, SharedWindows) else None
        if self.shared is not None:
            self.shared.watch_deployments(d.key for d in self.deployments)
        set_deployments = getattr(state, "set_deployments", None)
        if set_deployments is not None:  # the model's view of its deployments' circuits and latency
            set_deployments(model_id, [d.key for d in self.deployments])
        self._lock = threading.Lock()
        self._random = random.Random(seed)  # load balancing, not security

    def _why(self, dep: Deployment, now: float) -> str | None:
        if self.shared is not None:
            dep.fleet = self.shared.fleet_window(dep.key)
        state = self.state
        circuit = None
        if state is not None and state.has_open_circuits():
            reason = state.open_circuit_reason(dep.key)
            circuit = None if reason is None else f"its {reason}"
        return dep.unavailable(now, circuit)

    def pick(
        self, exclude: frozenset[str] = frozenset(), now: float | None = None
    ) -> tuple[Deployment | None, tuple[str, ...]]:
        """A deployment for the next call (its rpm window counts the call), and why each other one was passed
        over; ``None`` when every deployment is at a limit, cooling down or has its circuit open. Deployments
        named in ``exclude`` (failed for this request already) are passed over."""
        now = time.monotonic() if now is None else now
        with self._lock:
            ready: list[Deployment] = []
            passed: list[str] = []
            for dep in self.deployments:
                reason = "failed for this request" if dep.name in exclude else self._why(dep, now)
                if reason is None:
                    ready.append(dep)
                else:
                    passed.append(f"{dep.name}: {reason}")
            if not ready:
                return None, tuple(passed)
            chosen = self._choose(ready)
            passed += [f"{d.name}: {self._why_not(d, chosen)}" for d in ready if d is not chosen]
            chosen.in_flight += 1
            chosen.window.append((now, 1, 0))
        if self.shared is not None:
            self.shared.add_to_window(chosen.key, 1, 0)
        return chosen, tuple(passed)

    def _choose(self, ready: list[Deployment]) -> Deployment:
        strategy = self.strategy
        if strategy == "least-busy":
            return min(ready, key=Deployment.busy)
        if strategy == "latency":
            return min(ready, key=lambda d: -1.0 if (ms := d.measured_ms()) is None else ms)
        if strategy == "usage":
            return min(ready, key=Deployment.used_share)
        if strategy == "shuffle":
            return self._random.choice(ready)
        weighted = [d for d in ready if d.weight > 0] or ready
        return self._random.choices(weighted, weights=[d.weight or 1.0 for d in weighted])[0]

    def _why_not(self, dep: Deployment, chosen: Deployment) -> str:
        if self.strategy == "least-busy":
            return f"{dep.busy()} calls in flight (chosen: {chosen.busy()})"
        if self.strategy == "latency":
            return "unmeasured" if (ms := dep.measured_ms()) is None else f"latency {ms:.0f} ms"
        if self.strategy == "usage":
            return f"used {dep.used_share():.2f} of its tpm" if dep.tpm else f"used {dep.used_share():.0f} tokens"
        return f"not drawn ({self.strategy}, weight {dep.weight:g})"

    def done(
        self, dep: Deployment, *, latency_ms: float | None, tokens: int, retry_after_s: float | None, limited: bool
    ) -> None:
        """A call on ``dep`` ended: its latency (successes), tokens, and a cooldown after a 429."""
        now = time.monotonic()
        rest = (retry_after_s if retry_after_s is not None else self.cooldown_s) if limited else 0.0
        with self._lock:
            dep.in_flight = max(0, dep.in_flight - 1)
            if self.shared is not None:
                while dep.ended and dep.ended[0] < now - WINDOW_S:
                    dep.ended.popleft()
                dep.ended.append(now)
            if tokens:
                dep.window.append((now, 0, tokens))
            if latency_ms is not None:
                dep.latency_ms = latency_ms if dep.latency_ms is None else 0.8 * dep.latency_ms + 0.2 * latency_ms
            if limited:
                dep.cool_until = max(dep.cool_until, now + rest)
        if self.shared is not None:
            self.shared.add_to_window(dep.key, 0, tokens, ended=1, latency_ms=latency_ms)
            if limited:
                self.shared.cool_deployment(dep.key, time.time() + rest)

    def any_ready(self, exclude: frozenset[str] = frozenset()) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(d.name not in exclude and self._why(d, now) is None for d in self.deployments)


def build_pools(
    specs: Mapping[str, ModelDeployments], catalogue: Catalogue, state: Any = None
) -> dict[str, DeploymentPool]:
    """A pool per model id of ``specs`` (each checked to be in ``catalogue`` by the assembly); ``state``: the
    router's state store (per-deployment circuits; windows shared by the fleet when it shares them)."""
    out = {}
    for model_id, spec in specs.items():
        model = catalogue.get(model_id)
        if model is not None:
            out[model_id] = DeploymentPool(model_id, spec, model.model, state=state)
    return out
