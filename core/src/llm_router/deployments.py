"""Deployments: one catalogue model served by several provider instances (two keys, two regions, an
OpenAI and an Azure-style base URL, several vLLM replicas), each with its own limits and weight.

The executor asks the model's :class:`DeploymentPool` for a deployment before each call
(:meth:`DeploymentPool.pick`). The pool skips deployments at their ``rpm``/``tpm`` limit (sliding
60-second window) and those cooling down after a 429 (for its ``Retry-After``, else ``cooldown_s``), then
picks among the rest by the policy's ``strategy``:

- ``least-busy``: fewest calls in flight (ties: the first listed);
- ``latency``: lowest measured latency (a moving average; an unmeasured deployment is tried first);
- ``usage``: lowest share of its ``tpm`` (else tokens) used in the last minute;
- ``weighted``: at random, in proportion to ``weight`` (weight 0: only when no other is available);
- ``shuffle``: at random, uniformly.

Each call's attempt records the deployment and why the others were passed over. The windows and
cooldowns are kept in this process.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from .catalogue import Catalogue
from .policy import ModelDeployments

__all__ = ["Deployment", "DeploymentPool", "build_pools"]

WINDOW_S = 60.0


@dataclass(slots=True)
class Deployment:
    """One provider instance serving the model, with its limits and live counters."""

    provider: str
    model: str
    rpm: int | None
    tpm: int | None
    weight: float
    in_flight: int = 0
    cool_until: float = 0.0
    latency_ms: float | None = None
    window: deque[tuple[float, int]] = field(default_factory=deque)

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.model}"

    def _trim(self, now: float) -> None:
        while self.window and self.window[0][0] <= now - WINDOW_S:
            self.window.popleft()

    def unavailable(self, now: float) -> str | None:
        """Why this deployment cannot take a call now, or ``None``."""
        if self.cool_until > now:
            return f"cooling down after a 429 for {self.cool_until - now:.0f}s more"
        self._trim(now)
        if self.rpm is not None and len(self.window) >= self.rpm:
            return f"at its rpm limit ({self.rpm})"
        if self.tpm is not None and sum(t for _, t in self.window) >= self.tpm:
            return f"at its tpm limit ({self.tpm})"
        return None

    def used_share(self) -> float:
        tokens = sum(t for _, t in self.window)
        return tokens / self.tpm if self.tpm else float(tokens)


class DeploymentPool:
    """The deployments of one model and the strategy that picks among them."""

    def __init__(self, model_id: str, spec: ModelDeployments, default_model: str, seed: int | None = None) -> None:
        self.model_id = model_id
        self.strategy = spec.strategy
        self.cooldown_s = spec.cooldown_s
        self.deployments = [
            Deployment(t.provider, t.model or default_model, t.rpm, t.tpm, t.weight) for t in spec.targets
        ]
        self._lock = threading.Lock()
        self._random = random.Random(seed)  # load balancing, not security

    def pick(
        self, exclude: frozenset[str] = frozenset(), now: float | None = None
    ) -> tuple[Deployment | None, tuple[str, ...]]:
        """A deployment for the next call (its rpm window counts the call), and why each other one was passed
        over; ``None`` when every deployment is at a limit or cooling down. Deployments named in ``exclude``
        (failed for this request already) are passed over."""
        now = time.monotonic() if now is None else now
        with self._lock:
            ready: list[Deployment] = []
            passed: list[str] = []
            for dep in self.deployments:
                reason = "failed for this request" if dep.name in exclude else dep.unavailable(now)
                if reason is None:
                    ready.append(dep)
                else:
                    passed.append(f"{dep.name}: {reason}")
            if not ready:
                return None, tuple(passed)
            chosen = self._choose(ready)
            passed += [f"{d.name}: {self._why_not(d, chosen)}" for d in ready if d is not chosen]
            chosen.in_flight += 1
            chosen.window.append((now, 0))
            return chosen, tuple(passed)

    def _choose(self, ready: list[Deployment]) -> Deployment:
        strategy = self.strategy
        if strategy == "least-busy":
            return min(ready, key=lambda d: d.in_flight)
        if strategy == "latency":
            return min(ready, key=lambda d: -1.0 if d.latency_ms is None else d.latency_ms)
        if strategy == "usage":
            return min(ready, key=Deployment.used_share)
        if strategy == "shuffle":
            return self._random.choice(ready)
        weighted = [d for d in ready if d.weight > 0] or ready
        return self._random.choices(weighted, weights=[d.weight or 1.0 for d in weighted])[0]

    def _why_not(self, dep: Deployment, chosen: Deployment) -> str:
        if self.strategy == "least-busy":
            return f"{dep.in_flight} calls in flight (chosen: {chosen.in_flight})"
        if self.strategy == "latency":
            return "unmeasured" if dep.latency_ms is None else f"latency {dep.latency_ms:.0f} ms"
        if self.strategy == "usage":
            return f"used {dep.used_share():.2f} of its tpm" if dep.tpm else f"used {dep.used_share():.0f} tokens"
        return f"not drawn ({self.strategy}, weight {dep.weight:g})"

    def done(
        self, dep: Deployment, *, latency_ms: float | None, tokens: int, retry_after_s: float | None, limited: bool
    ) -> None:
        """A call on ``dep`` ended: its latency (successes), tokens, and a cooldown after a 429."""
        now = time.monotonic()
        with self._lock:
            dep.in_flight = max(0, dep.in_flight - 1)
            if tokens:
                dep.window.append((now, tokens))
            if latency_ms is not None:
                dep.latency_ms = latency_ms if dep.latency_ms is None else 0.8 * dep.latency_ms + 0.2 * latency_ms
            if limited:
                dep.cool_until = now + (retry_after_s if retry_after_s is not None else self.cooldown_s)

    def any_ready(self, exclude: frozenset[str] = frozenset()) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(d.name not in exclude and d.unavailable(now) is None for d in self.deployments)


def build_pools(specs: Mapping[str, ModelDeployments], catalogue: Catalogue) -> dict[str, DeploymentPool]:
    """A pool per model id of ``specs`` (each checked to be in ``catalogue`` by the assembly)."""
    out = {}
    for model_id, spec in specs.items():
        model = catalogue.get(model_id)
        if model is not None:
            out[model_id] = DeploymentPool(model_id, spec, model.model)
    return out
