"""Budget pacing: a cost weight that follows the spend against a daily budget.

The plan is to spend the budget evenly through the day: by the fraction t of the day, B·t. The pacer keeps the
spend so far S and sets the cost weight

    w(t) = σ(logit(w₀) + g · (S − B·t) / (B · band))

so a router on plan uses its base weight w₀, one that has overspent by ``band`` of the day's budget moves one
logit per unit of ``gain`` g towards cheaper models, and one under plan moves towards better ones. The weight
is bounded to [``lo``, ``hi``]; at 0 < w₀ < 1 it never reaches 0 or 1. A pure proportional controller on the
cumulative error (an integral controller on the spend rate): a steady overspend keeps pushing the weight up
until the rate matches the plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["Pacer"]


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


@dataclass
class Pacer:
    budget_usd_per_day: float
    base_weight: float = 0.5
    gain: float = 1.0
    band: float = 0.02
    lo: float = 0.0
    hi: float = 0.999
    total: float = 0.0
    history: list[tuple[float, float, float]] = field(default_factory=list)
    """(t, spend so far, weight) at each :meth:`weight` call."""

    def __post_init__(self) -> None:
        if self.budget_usd_per_day <= 0:
            raise ValueError("pace: budget_usd_per_day must be greater than 0")

    def weight(self, t: float) -> float:
        """The cost weight at fraction ``t`` of the day (0 at midnight, 1 at the next)."""
        b = self.budget_usd_per_day
        err = (self.total - b * t) / (b * self.band)
        z = min(50.0, max(-50.0, _logit(self.base_weight) + self.gain * err))
        w = 1.0 / (1.0 + math.exp(-z))
        w = min(self.hi, max(self.lo, w))
        self.history.append((t, self.total, w))
        return w

    def spent(self, usd: float) -> None:
        self.total += usd
