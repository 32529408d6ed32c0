"""Budget pacing: a cost weight that follows the day's spend against the budget.

``preferences: {pace: {budget_usd_per_day: 50}}`` (in the policy, a route, or on a gateway key) plans to spend
the budget evenly through the UTC day: by the fraction t of the day, B·t. With S spent so far, each decision's
cost weight w₀ (the weights normalised) becomes

    w = σ(logit(w₀) + g · (S − B·t) / (B · band))

and the other weights share 1 − w in their old proportions. On plan the weights are unchanged; an overspend of
``band`` of the budget moves the cost weight one logit per unit of ``gain`` (g) towards cheaper models, an
underspend towards better ones. A proportional controller on the cumulative error (an integral controller on
the spend rate): a steady overspend keeps raising the weight until the rate matches the plan, so the spend
tracks the line instead of hitting a hard budget at 3 pm. Without a ``cost`` weight, pacing starts from 0.05.

:class:`PaceBook` keeps the spend of the day per scope: ``policy`` (every answered request) and
``key:<id>`` (a gateway key's requests, which the gateway marks with ``metadata.pace_scope``); it hears the
router's own ``on_result``. In memory, per process: several gateways pace each on their own share.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from .hookspecs import hookimpl
from .types import Pace, Preferences, RouteRequest, RoutingResult

__all__ = ["DAY_S", "POLICY_SCOPE", "PaceBook", "paced_cost_weight"]

DAY_S = 86_400.0
POLICY_SCOPE = "policy"
DEFAULT_COST_WEIGHT = 0.05
"""The base cost weight when the weights have no ``cost``: pacing needs a weight to move."""


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def paced_cost_weight(pace: Pace, base: float, spent: float, t: float) -> float:
    """The cost weight at fraction ``t`` of the day with ``spent`` USD spent, from the base weight ``base``."""
    b = pace.budget_usd_per_day
    z = _logit(base) + pace.gain * (spent - b * t) / (b * pace.band)
    z = min(50.0, max(-50.0, z))
    return 1.0 / (1.0 + math.exp(-z))


def scope_of(request: RouteRequest) -> str:
    scope = request.metadata.get("pace_scope")
    return scope if isinstance(scope, str) and scope else POLICY_SCOPE


class PaceBook:
    """Spend per scope for the current UTC day, and the paced weights (see the module docstring).

    :param clock: seconds since the epoch (a test or a replay gives its own).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._day = -1
        self._spent: dict[str, float] = {}
        self._lock = threading.Lock()

    def _roll(self, now: float) -> None:
        day = int(now // DAY_S)
        if day != self._day:
            self._day, self._spent = day, {}

    def record(self, scope: str, usd: float) -> None:
        """Add ``usd`` to ``scope`` (and to the policy's total)."""
        with self._lock:
            self._roll(self.clock())
            spent = self._spent
            spent[POLICY_SCOPE] = spent.get(POLICY_SCOPE, 0.0) + usd
            if scope != POLICY_SCOPE:
                spent[scope] = spent.get(scope, 0.0) + usd

    def spent(self, scope: str = POLICY_SCOPE) -> float:
        with self._lock:
            self._roll(self.clock())
            return self._spent.get(scope, 0.0)

    @hookimpl
    def on_result(self, result: RoutingResult, request: RouteRequest) -> None:
        if result.cost:
            self.record(scope_of(request), float(result.cost))

    def adjust(self, prefs: Preferences, request: RouteRequest) -> Preferences:
        """``prefs`` with the cost weight paced (``prefs`` itself when it has no pace)."""
        pace = prefs.pace
        if pace is None:
            return prefs
        now = self.clock()
        scope = scope_of(request)
        t = (now % DAY_S) / DAY_S
        try:
            weights = prefs.normalised()
        except ValueError:
            return prefs  # the decision reports the bad weights
        base = weights.get("cost", DEFAULT_COST_WEIGHT)
        w = paced_cost_weight(pace, base, self.spent(scope), t)
        rest = 1.0 - base
        scaled: dict[str, Any] = {
            k: v * (1.0 - w) / rest if rest > 0 else 0.0 for k, v in weights.items() if k != "cost"
        }
        scaled["cost"] = w
        return Preferences.model_construct(weights=scaled, pace=pace)
