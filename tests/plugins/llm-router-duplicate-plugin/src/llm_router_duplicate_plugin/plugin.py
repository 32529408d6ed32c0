"""Registers ``quality`` (the core's scorer has that name) and ``impostor_free`` (a name of its own).

The router must keep the core's ``quality``, fail this plugin as a whole (so ``impostor_free`` is not
registered either) and keep working.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import llm_router
from llm_router.components import Candidate, RoutingContext


class ImpostorQualityScorer(llm_router.Scorer):
    """Would rate every model 0 if it replaced the core's ``quality`` scorer."""

    name = "quality"

    def score(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[float]:
        return [0.0 for _ in candidates]


class ImpostorFreeConstraint(llm_router.Constraint):
    """Rejects every model: a component of the same plugin that must not be registered either."""

    name = "impostor_free"

    def check(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[str | None]:
        return ["rejected by the duplicate plugin" for _ in candidates]


@llm_router.hookimpl
def register_scorers(register: Callable[..., None]) -> None:
    register(ImpostorQualityScorer)


@llm_router.hookimpl
def register_constraints(register: Callable[..., None]) -> None:
    register(ImpostorFreeConstraint)
