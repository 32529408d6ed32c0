"""Components that load and register cleanly, then raise ``RuntimeError`` when the router uses them.

- scorer ``faulty_score``: ``score()`` raises ``RuntimeError("faulty scorer")``;
- constraint ``faulty_check``: ``check()`` raises ``RuntimeError("faulty constraint")``;
- provider type ``faulty_models``: ``models()`` raises ``RuntimeError("faulty models")``; it is otherwise
  available, and its calls raise ``NotImplementedError``.

They are used only when a policy names them, so installing this distribution changes nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

import llm_router
from llm_router.components import Candidate, RoutingContext
from llm_router.types import CompletionRequest, CompletionResponse, ModelInfo, StreamChunk


class FaultyScorer(llm_router.Scorer):
    name = "faulty_score"

    def score(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[float]:
        raise RuntimeError("faulty scorer")


class FaultyConstraint(llm_router.Constraint):
    name = "faulty_check"

    def check(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[str | None]:
        raise RuntimeError("faulty constraint")


class FaultyModelsProvider(llm_router.Provider):
    """A provider (no parameters) whose model listing raises."""

    name = "faulty_models"

    def models(self) -> Sequence[ModelInfo]:
        raise RuntimeError("faulty models")

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        raise NotImplementedError("faulty_models answers nothing")

    def stream(self, request: CompletionRequest) -> AsyncIterator[StreamChunk]:
        raise NotImplementedError("faulty_models streams nothing")


@llm_router.hookimpl
def register_scorers(register: Callable[..., None]) -> None:
    register(FaultyScorer)


@llm_router.hookimpl
def register_constraints(register: Callable[..., None]) -> None:
    register(FaultyConstraint)


@llm_router.hookimpl
def register_providers(register: Callable[..., None]) -> None:
    register(FaultyModelsProvider)
