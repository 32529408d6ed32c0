"""Small numeric helpers shared by the built-in components."""

from __future__ import annotations

import math
from collections.abc import Sequence


def relative(values: Sequence[float], *, min_span: float, higher_is_better: bool) -> list[float]:
    """Map ``values`` onto [0, 1] relative to the best one: the best gets 1, and a value ``span`` worse
    gets 0, where ``span`` is the spread of the values but at least ``min_span`` (so that tiny
    differences are not blown up to the whole scale)."""
    if not values:
        return []
    lo, hi = min(values), max(values)
    span = max(hi - lo, min_span)
    if higher_is_better:
        return [max(0.0, 1.0 - (hi - v) / span) for v in values]
    return [max(0.0, 1.0 - (v - lo) / span) for v in values]


def log_values(values: Sequence[float], floor: float) -> list[float]:
    return [math.log(v + floor) for v in values]
