"""A/B tests of policies: ``experiments:`` splits the traffic between variants by a hash of the caller.

Each experiment hashes ``"<experiment>\\0<unit>"`` (SHA-256) to a number in [0, 1) and gives the request the
variant whose cumulative share covers it; the unit is the caller-given user id (``metadata.user``; the
gateway fills it from OpenAI's ``user`` field) or the API key (``metadata.key_id``, set by the gateway),
in the order ``split_by`` says, else the request id (a caller with neither gets no stickiness). The same unit
always lands in the same variant while the shares stay the same.

A variant changes preferences, constraints and routes on top of the policy and the matching route (the
caller's own preferences and constraints still win), and may replace the classifier cascade (``classify:``;
with several experiments, the last one whose variant sets it). The decision records ``variant``:
``"<experiment>=<name>"`` (several experiments: joined by ``;``), which the gateway returns as
``x-router-variant`` and writes to the ledger; ``llm-router ab report`` (:mod:`llm_router.abtest`) compares
the variants.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING

from .policy import Experiment, RouteRule, Variant

if TYPE_CHECKING:
    from .decision import CompiledRoute, Stage
    from .types import RouteRequest

__all__ = ["Assignment", "Experiments", "bucket"]


def bucket(experiment: str, unit: str) -> float:
    """The unit's place in [0, 1) for ``experiment`` (uniform, stable across processes and releases)."""
    digest = hashlib.sha256(f"{experiment}\0{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclass(frozen=True, slots=True)
class _Compiled:
    experiment: Experiment
    names: tuple[str, ...]
    bounds: tuple[float, ...]
    routes: dict[str, list[CompiledRoute]]
    stages: dict[str, tuple[Stage, ...]]


@dataclass(frozen=True, slots=True)
class Assignment:
    """What a request's variants change: the label, the variants in experiment order, the routes and the
    classifier cascade that replace the policy's (``None``: the policy's)."""

    label: str
    variants: tuple[Variant, ...]
    routes: list[CompiledRoute] | None
    stages: tuple[Stage, ...] | None = None


class Experiments:
    """The policy's experiments, compiled once; :meth:`assign` is called per decision."""

    def __init__(
        self,
        experiments: Sequence[Experiment],
        compile_routes: Callable[[list[RouteRule]], list[CompiledRoute]],
        stages: Mapping[tuple[str, str], Sequence[Stage]] | None = None,
    ):
        """:param stages: (experiment, variant) → the variant's classifier cascade, for variants that set one."""
        self._compiled = []
        stages = stages or {}
        for exp in experiments:
            names = tuple(exp.variants)
            total = sum(v.share for v in exp.variants.values())
            bounds = tuple(b / total for b in accumulate(v.share for v in exp.variants.values()))
            routes = {n: compile_routes(v.routes) for n, v in exp.variants.items() if v.routes}
            cascades = {n: tuple(stages[exp.name, n]) for n in names if (exp.name, n) in stages}
            self._compiled.append(_Compiled(exp, names, bounds, routes, cascades))

    def all_stages(self) -> list[Stage]:
        """Every variant's classifier stages (the decision engine checks that they are synchronous)."""
        return [s for c in self._compiled for cascade in c.stages.values() for s in cascade]

    def __bool__(self) -> bool:
        return bool(self._compiled)

    def assign(self, request: RouteRequest) -> Assignment | None:
        if not self._compiled:
            return None
        meta = request.metadata
        labels: list[str] = []
        variants: list[Variant] = []
        routes: list[CompiledRoute] | None = None
        stages: tuple[Stage, ...] | None = None
        for c in self._compiled:
            order = ("user", "key_id") if c.experiment.split_by == "user" else ("key_id", "user")
            unit = next((str(meta[k]) for k in order if meta.get(k)), None) or meta.get("request_id")
            x = bucket(c.experiment.name, str(unit)) if unit else int.from_bytes(os.urandom(8), "big") / 2.0**64
            name = next((n for n, b in zip(c.names, c.bounds, strict=True) if x < b), c.names[-1])
            labels.append(f"{c.experiment.name}={name}")
            variants.append(c.experiment.variants[name])
            routes = c.routes.get(name, routes)
            stages = c.stages.get(name, stages)
        return Assignment(";".join(labels), tuple(variants), routes, stages)
