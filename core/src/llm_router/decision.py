"""The decision: classify → candidates → constrain → score → :class:`~llm_router.RoutingDecision`.

Pure CPU work, no I/O (an async classifier stage aside): sub-millisecond for the rule classifier and a
60-model catalogue. A scorer or constraint that raises is left out of that one decision (named in the
decision's ``skipped``), never fails the request.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .catalogue import Catalogue
from .components import Candidate, Classifier, Constraint, Prediction, RoutingContext, Scorer
from .errors import ConfigurationError, NoCandidatesError
from .experiments import Assignment, Experiments
from .ids import new_request_id
from .pacing import PaceBook
from .policy import Policy, RouteRule
from .state import StateStore, blend
from .taxonomy import Taxonomy
from .tokens import count_message_tokens
from .types import (
    Classification,
    Constraints,
    ModelInfo,
    Preferences,
    RankingSource,
    Rejection,
    RouteRequest,
    RoutingDecision,
    ScoredCandidate,
    SkippedComponent,
    StageResult,
    construct,
)

__all__ = ["CompiledRoute", "DecisionEngine", "ModelFacts", "Stage", "facts_of", "rank_order", "weighted_totals"]

log = logging.getLogger("llm_router")
_WEIGHTS_MEMO_SIZE = 256


class ModelFacts(NamedTuple):
    """A model with what each decision needs of it, read once at start-up."""

    model: ModelInfo
    usd_per_input_token: float
    usd_per_output_token: float
    ttft_ms: float
    tokens_per_second: float


def facts_of(models: Sequence[ModelInfo]) -> list[ModelFacts]:
    return [
        ModelFacts(m, m.price.input_per_mtok / 1e6, m.price.output_per_mtok / 1e6, m.ttft_ms, m.tokens_per_second)
        for m in models
    ]


@dataclass(frozen=True, slots=True)
class Stage:
    """One classifier of the cascade with its confidence threshold."""

    name: str
    classifier: Classifier
    threshold: float


class CompiledRoute:
    """A policy route with its models resolved against the catalogue."""

    __slots__ = ("facts", "label", "models", "rule", "tasks")

    def __init__(self, label: str, rule: RouteRule, models: list[ModelInfo]) -> None:
        self.label = label
        self.rule = rule
        self.models = models
        self.facts = facts_of(models)
        self.tasks = frozenset(rule.when.task) if rule.when.task else None


class _Scope(NamedTuple):
    """What the matching route gives a request: its models, label, weights and limits (and its variant)."""

    facts: list[ModelFacts]
    label: str
    preferences: Preferences
    constraints: Constraints
    variant: str | None = None


class _Scores(NamedTuple):
    names: list[str]
    columns: list[Sequence[float]]
    totals: list[float]
    weights: dict[str, float]


class DecisionEngine:
    """Makes routing decisions from the assembled components (see the module docstring)."""

    def __init__(
        self,
        *,
        policy: Policy,
        taxonomy: Taxonomy,
        catalogue: Catalogue,
        stages: Sequence[Stage],
        constraints: Sequence[tuple[str, Constraint]],
        scorers: Sequence[tuple[str, Scorer]],
        routes: Sequence[CompiledRoute],
        state: StateStore,
        provider_status: Callable[[str], str | None],
        pacing: PaceBook | None = None,
        experiments: Experiments | None = None,
    ) -> None:
        self.policy = policy
        self.taxonomy = taxonomy
        self.catalogue = catalogue
        self.stages = tuple(stages)
        self.constraints = tuple(constraints)
        self.scorers = tuple(scorers)
        self.routes = tuple(routes)
        self.state = state
        self.provider_status = provider_status
        self.pacing = pacing if any(name == "cost" for name, _ in scorers) else None
        self.experiments = experiments if experiments else None
        self.catalogue_facts = facts_of(list(catalogue))
        every_stage = [*self.stages, *(self.experiments.all_stages() if self.experiments is not None else ())]
        self.sync_cascade = all(not s.classifier.is_async for s in every_stage)
        self._weights_memo: dict[tuple[tuple[str, float], ...], dict[str, float]] = {}

    # ----------------------------------------------------------------------------------------------
    # classification

    def assign(self, request: RouteRequest) -> Assignment | None:
        """The request's experiment variants (``None``: the policy has no experiments); made once per decision
        and given to :meth:`classify` and :meth:`decide`."""
        return self.experiments.assign(request) if self.experiments is not None else None

    def _cascade(self, assigned: Assignment | None) -> Sequence[Stage]:
        """The variant's classifier cascade when it has one, else the policy's."""
        return self.stages if assigned is None or assigned.stages is None else assigned.stages

    def classify(self, request: RouteRequest, assigned: Assignment | None = None) -> Classification:
        """Run the cascade (every stage synchronous) until a stage clears its threshold; the variant's cascade
        when ``assigned`` replaces the policy's."""
        cascade = _Cascade(self.taxonomy)
        for stage in self._cascade(assigned):
            t0, error, pred = time.perf_counter(), None, None
            try:
                pred = stage.classifier.classify(request)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            if cascade.record(stage, pred, t0, error):
                break
        return cascade.classification()

    async def aclassify(self, request: RouteRequest, assigned: Assignment | None = None) -> Classification:
        """The cascade, awaiting async stages (an LLM classifier)."""
        cascade = _Cascade(self.taxonomy)
        for stage in self._cascade(assigned):
            t0, error, pred = time.perf_counter(), None, None
            try:
                if stage.classifier.is_async:
                    pred = await stage.classifier.aclassify(request)
                else:
                    pred = stage.classifier.classify(request)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            if cascade.record(stage, pred, t0, error):
                break
        return cascade.classification()

    # ----------------------------------------------------------------------------------------------
    # the decision proper

    def decide(
        self,
        request: RouteRequest,
        classification: Classification,
        t_start: float,
        *,
        executing: bool,
        marks: list[float] | None = None,
        assigned: Assignment | None = None,
    ) -> RoutingDecision:
        """Rank the candidates for ``request``; raise :class:`NoCandidatesError` when none survives.

        :param marks: when given, ``perf_counter`` times are appended to it: decide start, constrained, scored
            (the tracing spans of the phases).
        :param assigned: the request's variants from :meth:`assign` (default: assigned here)."""
        if marks is not None:
            marks.append(time.perf_counter())
        scope = self._scope(request, classification, assigned)
        input_tokens = count_message_tokens(request.messages)
        expected_output = request.max_tokens or self.taxonomy.expected_output_tokens(classification.task)
        if request.max_tokens is None and request.default_max_tokens is not None:
            expected_output = min(expected_output, request.default_max_tokens)
        if request.max_tokens is None and scope.constraints.max_output_tokens is not None:
            expected_output = min(expected_output, scope.constraints.max_output_tokens)
        ctx = RoutingContext(
            request=request,
            classification=classification,
            constraints=scope.constraints,
            input_tokens=input_tokens,
            expected_output_tokens=expected_output,
            required_capabilities=request.needs() | scope.constraints.required_capabilities,
            executing=executing,
            state=self.state,
            provider_status=self.provider_status,
        )
        skipped: list[SkippedComponent] = []
        candidates = self._estimate(scope.facts, input_tokens, expected_output)
        candidates, rejected = self._constrain(candidates, ctx, skipped)
        if marks is not None:
            marks.append(time.perf_counter())
        pinned = request.model
        if not candidates or (pinned is not None and not any(c.model.id == pinned for c in candidates)):
            mine = rejected if pinned is None else [r for r in rejected if r.model_id == pinned]
            raise NoCandidatesError(mine, classification.task)
        scores = self._score(candidates, ctx, scope.preferences, skipped)
        if marks is not None:
            marks.append(time.perf_counter())
        order = rank_order(scores.totals, candidates, pinned)
        return RoutingDecision.from_ranking(
            RankingSource(candidates, order, scores.names, scores.columns, scores.totals),
            request_id=str(request.metadata.get("request_id") or new_request_id()),
            classification=classification,
            route=scope.label,
            rejected=tuple(rejected),
            weights=scores.weights,
            input_tokens=input_tokens,
            expected_output_tokens=expected_output,
            skipped=tuple(skipped),
            routing_time_ms=(time.perf_counter() - t_start) * 1000,
            variant=scope.variant,
            cache=None,
        )

    def _scope(self, request: RouteRequest, classification: Classification, assigned: Assignment | None) -> _Scope:
        if assigned is None:
            assigned = self.assign(request)
        route = self._select_route(request, classification, assigned.routes if assigned else None)
        prefs, constraints = self.policy.preferences, self.policy.constraints
        if route is None:
            facts, label = self.catalogue_facts, "catalogue"
        else:
            facts, label = route.facts, route.label
            prefs = prefs.merged(route.rule.preferences)
            constraints = constraints.merged(route.rule.constraints)
        for arm in assigned.variants if assigned else ():
            prefs, constraints = prefs.merged(arm.preferences), constraints.merged(arm.constraints)
        pinned = request.model
        if pinned is not None:
            info = self.catalogue.get(pinned)
            if info is None:
                raise ConfigurationError(f"unknown model {pinned!r}; `llm-router models` lists them")
            if all(f.model.id != pinned for f in facts):
                facts = facts_of([info]) + facts
        prefs = prefs.merged(request.preferences)
        if prefs.pace is not None and self.pacing is not None:
            prefs = self.pacing.adjust(prefs, request)
        variant = assigned.label if assigned else None
        return _Scope(facts, label, prefs, constraints.merged(request.constraints), variant)

    def _select_route(
        self, request: RouteRequest, classification: Classification, routes: Sequence[CompiledRoute] | None = None
    ) -> CompiledRoute | None:
        for route in self.routes if routes is None else routes:
            when = route.rule.when
            if route.tasks is not None and classification.task not in route.tasks:
                continue
            if when.min_confidence is not None and classification.confidence < when.min_confidence:
                continue
            if when.metadata and any(request.metadata.get(k) != v for k, v in when.metadata.items()):
                continue
            return route
        return None

    def _estimate(self, facts: Sequence[ModelFacts], input_tokens: int, expected_output: int) -> list[Candidate]:
        """Each model's cost and latency for this request: catalogue priors blended with live measurements
        by their sample counts (:func:`llm_router.state.blend`)."""
        live = self.state.latency_table()
        out_ms = expected_output * 1000
        if not live:
            return [
                Candidate(model, input_tokens * per_in + expected_output * per_out, ttft + out_ms / tps)
                for model, per_in, per_out, ttft, tps in facts
            ]
        candidates = []
        for f in facts:
            ttft, tps = f.ttft_ms, f.tokens_per_second
            measured = live.get(f.model.id)
            if measured is not None:
                ttft = blend(ttft, measured.ttft_ms, measured.ttft_samples)
                tps = blend(tps, measured.tokens_per_second, measured.tps_samples)
            cost = input_tokens * f.usd_per_input_token + expected_output * f.usd_per_output_token
            candidates.append(Candidate(f.model, cost, ttft + out_ms / tps))
        return candidates

    def _constrain(
        self, candidates: list[Candidate], ctx: RoutingContext, skipped: list[SkippedComponent]
    ) -> tuple[list[Candidate], list[Rejection]]:
        rejected: list[Rejection] = []
        for name, constraint in self.constraints:
            if not candidates:
                break
            try:
                reasons = constraint.check(candidates, ctx)
                if len(reasons) != len(candidates):
                    raise ValueError(f"returned {len(reasons)} answers for {len(candidates)} candidates")
            except Exception as exc:
                skipped.append(_skip("constraint", name, exc))
                continue
            if not any(reasons):
                continue
            kept = []
            for cand, reason in zip(candidates, reasons, strict=True):
                if reason is None:
                    kept.append(cand)
                else:
                    rejected.append(construct(Rejection, model_id=cand.model.id, constraint=name, reason=reason))
            candidates = kept
        return candidates, rejected

    def _weights(self, prefs: Preferences) -> dict[str, float]:
        """``prefs``' weights checked against the scorers and normalised (a copy). Kept by the weights they come
        from (a few hundred sets at most): most requests score with the policy's or a route's weights."""
        memo_key = tuple(prefs.weights.items())
        known_weights = self._weights_memo.get(memo_key)
        if known_weights is not None:
            return dict(known_weights)
        known = {name for name, _ in self.scorers}
        for key in prefs.weights:
            if key not in known:
                raise ConfigurationError(
                    f"preferences name {key!r}, but the policy has no scorer of that name "
                    f"(scorers: {', '.join(n for n, _ in self.scorers)})"
                )
        try:
            weights = prefs.normalised()
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        if len(self._weights_memo) >= _WEIGHTS_MEMO_SIZE:
            self._weights_memo.clear()
        self._weights_memo[memo_key] = weights
        return dict(weights)

    def _score(
        self, candidates: list[Candidate], ctx: RoutingContext, prefs: Preferences, skipped: list[SkippedComponent]
    ) -> _Scores:
        weights = self._weights(prefs)
        columns: list[tuple[str, float, Sequence[float]]] = []
        for name, scorer in self.scorers:
            weight = weights.get(name, 0.0)
            if weight <= 0:
                continue
            try:
                values = _checked(scorer.score(candidates, ctx), len(candidates))
            except Exception as exc:
                skipped.append(_skip("scorer", name, exc))
                continue
            columns.append((name, weight, values))
        if skipped and any(s.kind == "scorer" for s in skipped):
            total = sum(w for _, w, _ in columns)  # the weights of the scorers that answered, summing to 1
            columns = [(n, w / total, v) for n, w, v in columns] if total > 0 else []
            weights = {n: round(w, 6) for n, w, _ in columns}
        totals = weighted_totals([(w, v) for _, w, v in columns], len(candidates))
        return _Scores([n for n, _, _ in columns], [v for _, _, v in columns], totals, weights)


def weighted_totals(columns: Sequence[tuple[float, Sequence[float]]], n: int) -> list[float]:
    """Each candidate's total: the sum of (weight × score) over the scorers' ``columns``, in their order.

    The decision's own arithmetic, public so that an evaluation can re-rank a decision's breakdown at other
    weights and get the choices a full decision would make (``eval route`` does)."""
    totals = [0.0] * n
    for weight, values in columns:
        totals = [t + weight * v for t, v in zip(totals, values, strict=True)]
    return totals


def rank_order(
    totals: Sequence[float], candidates: Sequence[Candidate | ScoredCandidate], pinned: str | None = None
) -> list[int]:
    """Candidate indices best first: highest total (rounded to 9 places), ties to the cheaper estimate, then
    to the smaller model id; a ``pinned`` model id goes first (the rest are its fallbacks)."""
    keys = [(-round(t, 9), c.estimated_cost, c.model.id) for t, c in zip(totals, candidates, strict=True)]
    order = sorted(range(len(candidates)), key=keys.__getitem__)
    if pinned is not None:  # the caller's model first; the rest of the ranking are its fallbacks
        order.sort(key=lambda i: candidates[i].model.id != pinned)
    return order


def _checked(values: Sequence[float], n: int) -> Sequence[float]:
    """A scorer's answer, refused unless it is one finite number per candidate."""
    if len(values) != n:
        raise ValueError(f"returned {len(values)} scores for {n} candidates")
    # one sum is finite when every value is (a huge finite sum overflowing to inf gets the exact test)
    if not math.isfinite(sum(values)) and not all(map(math.isfinite, values)):
        raise ValueError("returned a score that is not a finite number")
    return values


def _skip(kind: str, name: str, exc: Exception) -> SkippedComponent:
    log.error("%s %r raised and was skipped for this request: %s: %s", kind, name, type(exc).__name__, exc)
    return construct(SkippedComponent, kind=kind, name=name, error=f"{type(exc).__name__}: {exc}")


class _Cascade:
    """The classification cascade's progress over one request: each stage's result, the best guess."""

    __slots__ = ("best", "decided", "stages", "taxonomy")

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        self.stages: list[StageResult] = []
        self.best: tuple[Prediction, str] | None = None
        self.decided: tuple[Prediction, str] | None = None

    def record(self, stage: Stage, pred: Prediction | None, t0: float, error: str | None) -> bool:
        """Record one stage's answer; true when it decides."""
        tasks = self.taxonomy.tasks
        known = pred is not None and pred.task in tasks
        if pred is not None and not known and error is None:
            error = f"unknown task {pred.task!r}"
        if error is not None:
            log.warning("classifier %r failed: %s", stage.name, error)
        accepted = pred is not None and known and pred.confidence >= stage.threshold
        self.stages.append(
            construct(
                StageResult,
                classifier=stage.name,
                task=pred.task if pred else None,
                confidence=pred.confidence if pred else 0.0,
                threshold=stage.threshold,
                accepted=accepted,
                time_ms=(time.perf_counter() - t0) * 1000,
                error=error,
            )
        )
        if pred is None or not known:
            return False
        if accepted:
            self.decided = (pred, stage.name)
            return True
        if self.best is None or pred.confidence > self.best[0].confidence:
            self.best = (pred, stage.name)
        return False

    def classification(self) -> Classification:
        if self.decided is not None:
            pred, method = self.decided
        elif self.best is not None:
            pred, method = self.best[0], f"{self.best[1]} (below threshold)"
        else:
            return construct(
                Classification,
                task=self.taxonomy.default_task,
                confidence=0.0,
                method="default",
                scores={},
                stages=tuple(self.stages),
            )
        return construct(
            Classification,
            task=pred.task,
            confidence=min(1.0, max(0.0, pred.confidence)),
            method=method,
            scores=dict(pred.scores),
            stages=tuple(self.stages),
        )
