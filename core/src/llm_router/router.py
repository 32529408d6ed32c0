"""The Router: classify → candidates → constrain → score → (execute → post-process) → events."""

from __future__ import annotations

import asyncio
import difflib
import fnmatch
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
from anyio.from_thread import BlockingPortal
from pydantic import ValidationError

from .catalogue import Catalogue
from .components import (
    Candidate,
    Classifier,
    ComponentContext,
    Constraint,
    PostProcessor,
    Prediction,
    Provider,
    RoutingContext,
    Scorer,
)
from .errors import (
    ConfigurationError,
    NoCandidatesError,
    PolicyError,
    PolicyIssue,
    PostprocessError,
    ProviderError,
    RouterError,
)
from .errors import TimeoutError as RouterTimeoutError
from .ids import new_request_id
from .plugins import PluginHost, PluginRecord
from .policy import (
    ComponentSpec,
    Policy,
    RouteRule,
    SourceMap,
    issues_from_validation,
    iter_model_refs,
    load_default_policy,
    load_policy,
    parse_policy,
)
from .state import MemoryState, StateStore
from .tokens import DEFAULT_ENCODING, count_message_tokens, get_encoding
from .types import (
    Attempt,
    Classification,
    CompletionRequest,
    CompletionResponse,
    Constraints,
    Feedback,
    Message,
    ModelInfo,
    ModelRef,
    Preferences,
    RankingSource,
    Rejection,
    RouteRequest,
    RoutingDecision,
    RoutingResult,
    StageResult,
    StreamChunk,
    Usage,
    as_messages,
    construct,
)

__all__ = ["RoutedStream", "Router"]

log = logging.getLogger("llm_router")
T = TypeVar("T")

PromptLike = str | Sequence[Message | Mapping[str, Any]] | RouteRequest


class _Stage:
    __slots__ = ("classifier", "name", "threshold")

    def __init__(self, name: str, classifier: Classifier, threshold: float) -> None:
        self.name = name
        self.classifier = classifier
        self.threshold = threshold


Facts = tuple[ModelInfo, float, float, float, float]
"""A model with what each decision needs of it: USD per input and output token, first-token ms, tokens/s."""


def _facts(models: Sequence[ModelInfo]) -> list[Facts]:
    return [
        (m, m.price.input_per_mtok / 1e6, m.price.output_per_mtok / 1e6, m.ttft_ms, m.tokens_per_second) for m in models
    ]


class _Route:
    __slots__ = ("facts", "label", "models", "rule", "tasks")

    def __init__(self, label: str, rule: RouteRule, models: list[ModelInfo]) -> None:
        self.label = label
        self.rule = rule
        self.models = models
        self.facts = _facts(models)
        self.tasks = frozenset(rule.when.task) if rule.when.task else None


def _prices(model: ModelInfo, input_tokens: int, output_tokens: int) -> float:
    return (input_tokens * model.price.input_per_mtok + output_tokens * model.price.output_per_mtok) / 1_000_000


async def _within(seconds: float | None, awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` within ``seconds`` (``TimeoutError`` when they run out; ``None``: no limit).

    On asyncio this uses its native timeout, a fraction of the cost of anyio's ``fail_after`` (which looks the
    event loop library up on every call): it guards every provider call and every streamed chunk."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # trio
        with anyio.fail_after(seconds):
            return await awaitable
    async with asyncio.timeout(seconds):
        return await awaitable


class Router:
    """Routes prompts to models, and runs them.

    :param policy: a :class:`~llm_router.policy.Policy`, a path to a YAML policy, a mapping with the
        policy's content, or ``None`` for the built-in default policy.
    :param plugins: extra plugin objects to register (modules or objects with ``@hookimpl`` functions),
        besides those found through the ``llm_router`` entry points.
    :param state: where circuit breakers and live latency averages live (default: in memory).
    :param autoload: load third-party entry-point plugins (default: yes, unless
        ``LLM_ROUTER_DISABLE_PLUGIN_AUTOLOAD=1``).
    :param strict: any plugin failure raises (default: ``LLM_ROUTER_STRICT_PLUGINS``).
    :param block: entry-point names not to load (default: ``LLM_ROUTER_BLOCK_PLUGINS``).
    """

    def __init__(
        self,
        policy: Policy | str | os.PathLike[str] | Mapping[str, Any] | None = None,
        *,
        plugins: Sequence[object] = (),
        state: StateStore | None = None,
        autoload: bool | None = None,
        strict: bool | None = None,
        block: Sequence[str] | None = None,
    ) -> None:
        self.policy, self.source, self.policy_dir = _resolve_policy(policy)
        if "preferences" not in self.policy.model_fields_set:
            # default weights only for the scorers this policy actually uses
            names = {spec.name for spec in self.policy.score}
            kept = {k: v for k, v in self.policy.preferences.weights.items() if k in names}
            if not kept:
                kept = dict.fromkeys(names, 1.0)
            self.policy = self.policy.model_copy(update={"preferences": Preferences(weights=kept)})
        self.plugins = PluginHost(plugins, autoload=autoload, strict=strict, block=block)
        self.state: StateStore = state or MemoryState(
            self.policy.fallback.circuit_failures, self.policy.fallback.circuit_cooldown_s
        )
        self.taxonomy = self.policy.build_taxonomy()
        self._portal: BlockingPortal | None = None
        self._portal_thread: threading.Thread | None = None
        self._portal_lock = threading.Lock()
        issues: list[PolicyIssue] = []
        self.providers: dict[str, Provider] = {}
        self._provider_problems: dict[str, str] = {}
        self._build_providers(issues)
        self.catalogue = self._build_catalogue(issues)
        self.stages = [_Stage(spec.name, c, t) for spec, (c, t) in self._build_stages(issues)]
        self.constraints: list[tuple[str, Constraint]] = self._build_list("constrain", "constraint", issues)
        self.scorers: list[tuple[str, Scorer]] = self._build_list("score", "scorer", issues)
        self.postprocessors: list[tuple[str, PostProcessor]] = self._build_list("postprocess", "postprocessor", issues)
        self._routes = self._build_routes(issues)
        self._check_policy_refs(issues)
        if issues:
            raise PolicyError(issues)
        self._catalogue_models = list(self.catalogue)
        self._catalogue_facts = _facts(self._catalogue_models)
        self._sync_cascade = all(not s.classifier.is_async for s in self.stages)
        get_encoding(DEFAULT_ENCODING)  # load the BPE tables now (~0.4 s once per process), not in a decision
        self._has_decision_listeners = self.plugins.has_listeners("on_decision")

    # ==============================================================================================
    # construction

    @classmethod
    def from_policy(cls, path: str | os.PathLike[str], **kwargs: Any) -> Router:
        """A router for the policy file at ``path``."""
        return cls(Path(path), **kwargs)

    def _context(self, name: str) -> ComponentContext:
        return ComponentContext(
            name=name, policy_dir=self.policy_dir, taxonomy=self.taxonomy, state=self.state, complete=self._complete_for
        )

    def _instantiate(
        self,
        kind: str,
        spec: ComponentSpec,
        path: tuple[str | int, ...],
        params: Mapping[str, Any],
        issues: list[PolicyIssue],
    ) -> Any:
        registration = self.plugins.registry.get(kind, spec.name)
        if registration is None:
            issues.append(self.source.issue(path, self.plugins.missing_component_message(kind, spec.name)))
            return None
        cls = registration.cls
        try:
            config = cls.Config.model_validate(dict(params))
        except ValidationError as exc:
            issues.extend(issues_from_validation(exc, self.source, (*path, spec.name)))
            return None
        try:
            return cls(config, self._context(spec.name))
        except (RouterError, ValueError, OSError) as exc:
            issues.append(self.source.issue((*path, spec.name), f"{kind} {spec.name!r} could not start: {exc}"))
        except Exception as exc:
            issues.append(
                self.source.issue(
                    (*path, spec.name),
                    f"{kind} {spec.name!r} (plugin {registration.plugin!r}) raised while starting: "
                    f"{type(exc).__name__}: {exc}",
                )
            )
        return None

    def _build_stages(self, issues: list[PolicyIssue]) -> list[tuple[ComponentSpec, tuple[Classifier, float]]]:
        out = []
        for i, spec in enumerate(self.policy.classify):
            params = dict(spec.params)
            threshold = params.pop("threshold", 0.0)
            if not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
                issues.append(
                    self.source.issue(
                        ("classify", i, spec.name, "threshold"),
                        f"threshold must be a number in [0, 1] (got {threshold!r})",
                    )
                )
                continue
            classifier = self._instantiate("classifier", spec, ("classify", i), params, issues)
            if classifier is not None:
                out.append((spec, (classifier, float(threshold))))
        if not self.policy.classify:
            issues.append(self.source.issue(("classify",), "at least one classifier is needed"))
        return out

    def _build_list(self, section: str, kind: str, issues: list[PolicyIssue]) -> list[tuple[str, Any]]:
        out = []
        specs: list[ComponentSpec] = getattr(self.policy, section)
        for i, spec in enumerate(specs):
            component = self._instantiate(kind, spec, (section, i), spec.params, issues)
            if component is not None:
                out.append((spec.name, component))
        return out

    def _build_providers(self, issues: list[PolicyIssue]) -> None:
        for name, spec in self.policy.providers.items():
            type_name = spec.type or name
            registration = self.plugins.registry.get("provider", type_name)
            if registration is None:
                hint = f"pip install {spec.package}" if spec.package else "install the plugin that provides it"
                failed = [r for r in self.plugins.failures()]
                extra = "; failed plugins: " + "; ".join(f"{r.name}: {r.error}" for r in failed) if failed else ""
                self._provider_problems[name] = f"provider type {type_name!r} is not installed ({hint}){extra}"
                continue
            try:
                config = registration.cls.Config.model_validate(spec.params())
            except ValidationError as exc:
                issues.extend(issues_from_validation(exc, self.source, ("providers", name)))
                continue
            try:
                provider = registration.cls(config, self._context(name))
            except Exception as exc:
                issues.append(
                    self.source.issue(
                        ("providers", name),
                        f"provider {name!r} ({type_name}) could not start: {type(exc).__name__}: {exc}",
                    )
                )
                continue
            assert isinstance(provider, Provider)
            self.providers[name] = provider

    def _build_catalogue(self, issues: list[PolicyIssue]) -> Catalogue:
        catalogue = Catalogue.builtin()
        declared = set(self.policy.providers)
        for name, provider in self.providers.items():
            try:
                contributed = list(provider.models())
            except Exception as exc:
                issues.append(
                    self.source.issue(("providers", name), f"listing models failed: {type(exc).__name__}: {exc}")
                )
                continue
            for model in contributed:
                catalogue.add(
                    model
                    if model.provider == name
                    else model.model_copy(update={"provider": name, "id": f"{name}/{model.model}"})
                )
        for i, spec in enumerate(self.policy.models):
            path = ("models", i)
            fields = spec.model_dump(exclude_unset=True, exclude={"id", "enabled", "price"})
            if spec.price is not None:
                fields["price"] = spec.price.model_dump()
            if not spec.enabled:
                catalogue.remove(spec.id)
                continue
            try:
                if spec.id in catalogue:
                    catalogue.override(spec.id, **fields)
                else:
                    provider_name, _, model_name = spec.id.partition("/")
                    fields.setdefault("provider", provider_name)
                    fields.setdefault("model", model_name)
                    catalogue.add(ModelInfo.model_validate({"id": spec.id, **fields}))
            except ValidationError as exc:
                for err in exc.errors(include_url=False):
                    loc = err["loc"]
                    msg = f"a new model needs {loc[-1]!r}" if err["type"] == "missing" else err["msg"]
                    issues.append(self.source.issue((*path, *loc), msg))
        if declared:
            for model in list(catalogue):
                if model.provider not in declared:
                    catalogue.remove(model.id)
        return catalogue

    def _build_routes(self, issues: list[PolicyIssue]) -> list[_Route]:
        routes = []
        for i, rule in enumerate(self.policy.routes):
            label = rule.name or (
                f"routes[{i}]" if rule.when.task is None else f"routes[{i}] (task {', '.join(rule.when.task)})"
            )
            models = list(self.catalogue) if rule.models == "*" else self.catalogue.match(rule.models)
            routes.append(_Route(label, rule, models))
        return routes

    def _check_policy_refs(self, issues: list[PolicyIssue]) -> None:
        ids = self.catalogue.ids()
        for path, ref in iter_model_refs(self.policy):
            if ref in self.catalogue or any(fnmatch.fnmatchcase(i, ref) for i in ids):
                continue
            close = difflib.get_close_matches(ref, ids, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; `llm-router models` lists them"
            issues.append(self.source.issue(path, f"unknown model {ref!r}{hint}", exact=True))
        labels = set(self.taxonomy.tasks)
        for i, rule in enumerate(self.policy.routes):
            for task in rule.when.task or ():
                if task not in labels:
                    issues.append(
                        self.source.issue(
                            ("routes", i, "when", "task"), f"unknown task {task!r}; tasks: {', '.join(sorted(labels))}"
                        )
                    )
        if self.taxonomy.default_task not in labels:
            issues.append(
                self.source.issue(("taxonomy", "default_task"), f"unknown task {self.taxonomy.default_task!r}")
            )
        scorer_names = {spec.name for spec in self.policy.score}
        prefs = [("preferences", self.policy.preferences)] + [
            (("routes", i, "preferences"), r.preferences) for i, r in enumerate(self.policy.routes) if r.preferences
        ]
        for where, pref in prefs:
            path = (where,) if isinstance(where, str) else where
            for key in pref.weights:
                if key not in scorer_names:
                    issues.append(
                        self.source.issue(
                            (*path, key),
                            f"no scorer named {key!r} in `score:` (scorers: {', '.join(sorted(scorer_names))})",
                        )
                    )
            if pref.weights and sum(pref.weights.values()) <= 0:
                issues.append(self.source.issue(path, "at least one weight must be greater than 0"))

    # ==============================================================================================
    # requests

    def _request(
        self,
        prompt: PromptLike,
        preferences: Preferences | Mapping[str, Any] | None,
        constraints: Constraints | Mapping[str, Any] | None,
        fields: Mapping[str, Any],
    ) -> RouteRequest:
        if isinstance(prompt, RouteRequest):
            if preferences is None and constraints is None and not fields:
                return prompt
            data: dict[str, Any] = {**prompt.model_dump(exclude_unset=True), **fields}
        else:
            data = {"messages": as_messages(prompt), **fields}
        if preferences is not None:
            data["preferences"] = preferences
        if constraints is not None:
            data["constraints"] = constraints
        try:
            return RouteRequest.model_validate(data)
        except ValidationError as exc:
            raise ConfigurationError(_request_error(exc)) from None

    # ---------------------------------------------------------------------------------------------
    # classification

    def _finish_classification(
        self, stages: list[StageResult], best: tuple[Prediction, str] | None, decided: tuple[Prediction, str] | None
    ) -> Classification:
        if decided is not None:
            pred, method = decided
        elif best is not None:
            pred, method = best
            method = f"{method} (below threshold)"
        else:
            return construct(
                Classification,
                task=self.taxonomy.default_task,
                confidence=0.0,
                method="default",
                scores={},
                stages=tuple(stages),
            )
        return construct(
            Classification,
            task=pred.task,
            confidence=min(1.0, max(0.0, pred.confidence)),
            method=method,
            scores=dict(pred.scores),
            stages=tuple(stages),
        )

    def _record_stage(
        self, stage: _Stage, pred: Prediction | None, t0: float, error: str | None, stages: list[StageResult]
    ) -> bool:
        accepted = pred is not None and pred.task in self.taxonomy.tasks and pred.confidence >= stage.threshold
        if pred is not None and pred.task not in self.taxonomy.tasks and error is None:
            error = f"unknown task {pred.task!r}"
        stages.append(
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
        return accepted

    def _after_stage(
        self,
        stage: _Stage,
        pred: Prediction | None,
        t0: float,
        error: str | None,
        stages: list[StageResult],
        best: tuple[Prediction, str] | None,
    ) -> tuple[Classification | None, tuple[Prediction, str] | None]:
        """Record one stage; return the classification when this stage decides, and the best guess so far."""
        if error is not None:
            log.warning("classifier %r failed: %s", stage.name, error)
        if self._record_stage(stage, pred, t0, error, stages):
            assert pred is not None
            return self._finish_classification(stages, best, (pred, stage.name)), best
        if (
            pred is not None
            and pred.task in self.taxonomy.tasks
            and (best is None or pred.confidence > best[0].confidence)
        ):
            best = (pred, stage.name)
        return None, best

    def _classify_sync(self, request: RouteRequest) -> Classification:
        stages: list[StageResult] = []
        best: tuple[Prediction, str] | None = None
        for stage in self.stages:
            t0, error, pred = time.perf_counter(), None, None
            try:
                pred = stage.classifier.classify(request)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            decided, best = self._after_stage(stage, pred, t0, error, stages, best)
            if decided is not None:
                return decided
        return self._finish_classification(stages, best, None)

    async def _classify_async(self, request: RouteRequest) -> Classification:
        stages: list[StageResult] = []
        best: tuple[Prediction, str] | None = None
        for stage in self.stages:
            t0, error, pred = time.perf_counter(), None, None
            try:
                if stage.classifier.is_async:
                    pred = await stage.classifier.aclassify(request)
                else:
                    pred = stage.classifier.classify(request)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            decided, best = self._after_stage(stage, pred, t0, error, stages, best)
            if decided is not None:
                return decided
        return self._finish_classification(stages, best, None)

    # ---------------------------------------------------------------------------------------------
    # the decision proper (pure CPU work, shared by the sync and async paths)

    def _select_route(self, request: RouteRequest, classification: Classification) -> _Route | None:
        for route in self._routes:
            when = route.rule.when
            if route.tasks is not None and classification.task not in route.tasks:
                continue
            if when.min_confidence is not None and classification.confidence < when.min_confidence:
                continue
            if when.metadata and any(request.metadata.get(k) != v for k, v in when.metadata.items()):
                continue
            return route
        return None

    def provider_status(self, name: str) -> str | None:
        """``None`` when provider ``name`` can take calls, else why not."""
        provider = self.providers.get(name)
        if provider is None:
            return self._provider_problems.get(name) or f"provider {name!r} is not configured in the policy"
        try:
            return provider.unavailable_reason()
        except Exception as exc:
            return f"provider {name!r} failed its readiness check: {type(exc).__name__}: {exc}"

    def _decide(
        self, request: RouteRequest, classification: Classification, t_start: float, executing: bool
    ) -> RoutingDecision:
        route = self._select_route(request, classification)
        if route is None:
            models, facts, label, rule = self._catalogue_models, self._catalogue_facts, "catalogue", None
        else:
            models, facts, label, rule = route.models, route.facts, route.label, route.rule
        pinned = request.model
        if pinned is not None:
            info = self.catalogue.get(pinned)
            if info is None:
                raise ConfigurationError(f"unknown model {pinned!r}; `llm-router models` lists them")
            if info not in models:
                models = [info, *models]
                facts = _facts([info]) + facts
        prefs = self.policy.preferences
        constraints = self.policy.constraints
        if rule is not None:
            prefs = prefs.merged(rule.preferences)
            constraints = constraints.merged(rule.constraints)
        prefs = prefs.merged(request.preferences)
        constraints = constraints.merged(request.constraints)
        input_tokens = count_message_tokens(request.messages)
        expected_output = request.max_tokens or self.taxonomy.expected_output_tokens(classification.task)
        if request.max_tokens is None and constraints.max_output_tokens is not None:
            expected_output = min(expected_output, constraints.max_output_tokens)
        required = request.needs() | constraints.required_capabilities
        ctx = RoutingContext(
            request=request,
            classification=classification,
            constraints=constraints,
            input_tokens=input_tokens,
            expected_output_tokens=expected_output,
            required_capabilities=required,
            executing=executing,
            state=self.state,
            provider_status=self.provider_status,
        )
        live = self.state.latency_table()
        out_ms = expected_output * 1000
        if not live:
            candidates = [
                Candidate(m, input_tokens * per_in + expected_output * per_out, ttft + out_ms / tps)
                for m, per_in, per_out, ttft, tps in facts
            ]
        else:
            candidates = []
            for m, per_in, per_out, prior_ttft, prior_tps in facts:
                measured = live.get(m.id)
                ttft = prior_ttft if measured is None or measured[0] is None else measured[0]
                tps = prior_tps if measured is None or measured[1] is None else measured[1]
                candidates.append(Candidate(m, input_tokens * per_in + expected_output * per_out, ttft + out_ms / tps))
        rejected: list[Rejection] = []
        for name, constraint in self.constraints:
            if not candidates:
                break
            try:
                reasons = constraint.check(candidates, ctx)
            except Exception as exc:
                raise ConfigurationError(f"constraint {name!r} raised: {type(exc).__name__}: {exc}") from exc
            if len(reasons) != len(candidates):
                raise ConfigurationError(
                    f"constraint {name!r} returned {len(reasons)} answers for {len(candidates)} candidates"
                )
            if not any(reasons):
                continue
            kept = []
            for cand, reason in zip(candidates, reasons, strict=True):
                if reason is None:
                    kept.append(cand)
                else:
                    rejected.append(construct(Rejection, model_id=cand.model.id, constraint=name, reason=reason))
            candidates = kept
        if not candidates:
            raise NoCandidatesError(rejected, classification.task)
        if pinned is not None and not any(c.model.id == pinned for c in candidates):
            raise NoCandidatesError([r for r in rejected if r.model_id == pinned], classification.task)
        try:
            weights = prefs.normalised()
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        columns: list[tuple[str, float, Sequence[float]]] = []
        for name, scorer in self.scorers:
            weight = weights.get(name, 0.0)
            if weight <= 0:
                continue
            try:
                values = scorer.score(candidates, ctx)
            except Exception as exc:
                raise ConfigurationError(f"scorer {name!r} raised: {type(exc).__name__}: {exc}") from exc
            columns.append((name, weight, values))
        for key in weights:
            if not any(key == name for name, _ in self.scorers):
                raise ConfigurationError(
                    f"preferences name {key!r}, but the policy has no scorer of that name "
                    f"(scorers: {', '.join(n for n, _ in self.scorers)})"
                )
        names = [name for name, _, _ in columns]
        value_columns = [values for _, _, values in columns]
        totals = [0.0] * len(candidates)
        for _, weight, values in columns:
            totals = [t + weight * v for t, v in zip(totals, values, strict=True)]
        keys = [(-round(t, 9), c.estimated_cost, c.model.id) for t, c in zip(totals, candidates, strict=True)]
        if pinned is not None:
            keys = [(c.model.id != pinned, *k) for k, c in zip(keys, candidates, strict=True)]  # type: ignore[misc]
        order = sorted(range(len(candidates)), key=keys.__getitem__)
        decision = construct(
            RoutingDecision,
            request_id=str(request.metadata.get("request_id") or new_request_id()),
            classification=classification,
            route=label,
            rejected=tuple(rejected),
            weights=weights,
            input_tokens=input_tokens,
            expected_output_tokens=expected_output,
            routing_time_ms=0.0,
        )
        object.__setattr__(
            decision,
            "__pydantic_private__",
            {"_source": RankingSource(candidates, order, names, value_columns, totals), "_ranking": None},
        )
        decision.__dict__["routing_time_ms"] = (time.perf_counter() - t_start) * 1000
        return decision

    # ---------------------------------------------------------------------------------------------
    # public: decisions

    def route(
        self,
        prompt: PromptLike,
        *,
        preferences: Preferences | Mapping[str, Any] | None = None,
        constraints: Constraints | Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> RoutingDecision:
        """Decide which model should answer ``prompt``, without calling it.

        :param prompt: a string, a list of messages (dicts or :class:`Message`), or a :class:`RouteRequest`.
        :param preferences: weights per scorer for this request (``{"quality": 0.5, "cost_weight": 0.3}``).
        :param constraints: hard limits for this request (see :class:`Constraints`).
        :param fields: other :class:`RouteRequest` fields (``max_tokens``, ``tools``, ``metadata``, …).
        :raises NoCandidatesError: every model was rejected; the error lists each and why.
        """
        t0 = time.perf_counter()
        request = self._request(prompt, preferences, constraints, fields)
        if not self._sync_cascade:
            decided: RoutingDecision = self._portal_call(self._aroute, request, False, t0)
            return decided
        try:
            decision = self._decide(request, self._classify_sync(request), t0, executing=False)
        except RouterError as exc:
            self._emit_sync("on_error", error=exc, request=request, decision=None)
            raise
        if self._has_decision_listeners:
            self._emit_sync("on_decision", decision=decision, request=request)
        return decision

    async def aroute(
        self,
        prompt: PromptLike,
        *,
        preferences: Preferences | Mapping[str, Any] | None = None,
        constraints: Constraints | Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> RoutingDecision:
        """The async twin of :meth:`route`."""
        t0 = time.perf_counter()
        request = self._request(prompt, preferences, constraints, fields)
        return await self._aroute(request, False, t0)

    async def _aroute(self, request: RouteRequest, executing: bool, t0: float) -> RoutingDecision:
        classification = self._classify_sync(request) if self._sync_cascade else await self._classify_async(request)
        try:
            decision = self._decide(request, classification, t0, executing=executing)
        except RouterError as exc:
            await self._emit("on_error", error=exc, request=request, decision=None)
            raise
        if self._has_decision_listeners:
            await self._emit("on_decision", decision=decision, request=request)
        return decision

    # ---------------------------------------------------------------------------------------------
    # public: execution

    def route_and_execute(
        self,
        prompt: PromptLike,
        *,
        preferences: Preferences | Mapping[str, Any] | None = None,
        constraints: Constraints | Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> RoutingResult:
        """Decide, call the winner (falling back down the ranking on failure), post-process, report.

        :raises ProviderError: every candidate failed; this is the last provider's own error, with
            ``attempts`` listing every call.
        :raises NoCandidatesError: every model was rejected.
        """
        request = self._request(prompt, preferences, constraints, fields)
        result: RoutingResult = self._portal_call(self._execute, request)
        return result

    async def aroute_and_execute(
        self,
        prompt: PromptLike,
        *,
        preferences: Preferences | Mapping[str, Any] | None = None,
        constraints: Constraints | Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> RoutingResult:
        """The async twin of :meth:`route_and_execute`."""
        request = self._request(prompt, preferences, constraints, fields)
        return await self._execute(request)

    def _completion_request(self, request: RouteRequest, model: ModelInfo) -> CompletionRequest:
        return construct(
            CompletionRequest,
            model=model.model,
            messages=request.messages,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            stop=request.stop,
            response_format=request.response_format,
            tools=request.tools,
            tool_choice=request.tool_choice,
            timeout_s=request.timeout_s or self.policy.fallback.timeout_s,
            extra={},
        )

    def _backoff(self, retry: int, error: ProviderError) -> float:
        fb = self.policy.fallback
        delay = min(fb.max_backoff_ms, fb.backoff_ms * (2**retry)) / 1000
        retry_after = getattr(error, "retry_after_s", None)
        if retry_after is not None:
            delay = min(max(delay, float(retry_after)), fb.max_backoff_ms / 1000)
        return float(delay)

    def _unavailable(self, model: ModelInfo, attempts: list[Attempt]) -> ProviderError:
        """A candidate whose provider cannot be called (only reachable when the policy leaves the
        ``health`` constraint out): recorded as a failed attempt, and the next candidate is tried."""
        reason = self.provider_status(model.provider) or f"provider {model.provider!r} is not available"
        error = ProviderError(reason, provider=model.provider, model=model.model)
        attempts.append(
            construct(
                Attempt,
                model_id=model.id,
                outcome="error",
                error_kind=error.kind,
                error=str(error),
                latency_ms=0.0,
                retry=0,
            )
        )
        return error

    def _output_tokens(self, model: ModelInfo, text: str) -> int:
        """Output tokens of an answer whose provider reported no usage: the provider's own count where it
        has one, else the router's estimate."""
        message = Message(role="assistant", content=text)
        provider = self.providers.get(model.provider)
        if provider is not None:
            try:
                counted = provider.count_tokens([message], model.model)
            except Exception:
                counted = None
            if counted is not None:
                return counted
        return max(0, count_message_tokens([message]) - 6)

    def _cost(self, model: ModelInfo, usage: Usage) -> float:
        return _prices(model, usage.input_tokens, usage.output_tokens)

    async def _execute(
        self, request: RouteRequest, decision: RoutingDecision | None = None, t0: float | None = None
    ) -> RoutingResult:
        """Decide (unless ``decision`` was made already by ``_aroute(request, True, t0)``) and call."""
        if t0 is None:
            t0 = time.perf_counter()
        if decision is None:
            decision = await self._aroute(request, True, t0)
        fb = self.policy.fallback
        attempts: list[Attempt] = []
        last_error: RouterError | None = None
        for candidate in decision.best(fb.max_models):
            model = candidate.model
            provider = self.providers.get(model.provider)
            if provider is None:
                last_error = self._unavailable(model, attempts)
                continue
            creq = self._completion_request(request, model)
            for retry in range(fb.retries + 1):
                t_call = time.perf_counter()
                try:
                    response = await _within(creq.timeout_s, provider.complete(creq))
                    for _, post in self.postprocessors:
                        response = await post.process(response, request, model)
                except TimeoutError:
                    error: RouterError = RouterTimeoutError(
                        f"no answer within {creq.timeout_s:g}s", provider=model.provider, model=model.model
                    )
                except (ProviderError, PostprocessError) as exc:
                    error = exc
                except Exception as exc:  # a provider plugin broke its contract: keep going, say so
                    error = ProviderError(
                        f"provider plugin raised {type(exc).__name__}: {exc}",
                        provider=model.provider,
                        model=model.model,
                    )
                    log.error("provider %r raised an untyped error", model.provider, exc_info=exc)
                else:
                    latency = (time.perf_counter() - t_call) * 1000
                    attempts.append(
                        construct(
                            Attempt,
                            model_id=model.id,
                            outcome="ok",
                            error_kind=None,
                            error=None,
                            latency_ms=latency,
                            retry=retry,
                        )
                    )
                    usage = response.usage or Usage(
                        input_tokens=decision.input_tokens, output_tokens=self._output_tokens(model, response.text)
                    )
                    tps = usage.output_tokens / (latency / 1000) if usage.output_tokens and latency > 0 else None
                    self.state.record_success(model.id, None, tps)
                    result = construct(
                        RoutingResult,
                        decision=decision,
                        response=response,
                        selected_model=construct(ModelRef, id=model.id, provider=model.provider, model=model.model),
                        usage=usage,
                        estimated_cost=candidate.estimated_cost,
                        cost=self._cost(model, usage),
                        latency_ms=(time.perf_counter() - t0) * 1000,
                        attempts=tuple(attempts),
                    )
                    await self._emit("on_result", result=result, request=request)
                    return result
                last_error = error
                kind = getattr(error, "kind", "postprocess")
                attempts.append(
                    construct(
                        Attempt,
                        model_id=model.id,
                        outcome="error",
                        error_kind=kind,
                        error=str(error),
                        latency_ms=(time.perf_counter() - t_call) * 1000,
                        retry=retry,
                    )
                )
                if isinstance(error, ProviderError):
                    self.state.record_failure(model.id, kind)
                retryable = isinstance(error, ProviderError) and error.retryable and kind in fb.on
                if not retryable or retry >= fb.retries:
                    break
                await anyio.sleep(self._backoff(retry, error))  # type: ignore[arg-type]
        assert last_error is not None
        last_error.attempts = tuple(attempts)  # type: ignore[attr-defined]
        await self._emit("on_error", error=last_error, request=request, decision=decision)
        raise last_error

    async def astream(
        self,
        prompt: PromptLike,
        *,
        preferences: Preferences | Mapping[str, Any] | None = None,
        constraints: Constraints | Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> RoutedStream:
        """Decide, then stream the winner's answer. Falls back to the next candidate while nothing has been
        received yet; once text has arrived, a failure is raised to the caller.

        Use as ``async with await router.astream(prompt) as stream: async for chunk in stream: ...``; after
        the stream ends ``stream.result`` holds the :class:`RoutingResult` (post-processors do not run on
        streams: their text has already been delivered).
        """
        t0 = time.perf_counter()
        request = self._request(prompt, preferences, constraints, {**fields, "stream": True})
        decision = await self._aroute(request, True, t0)
        return RoutedStream(self, request, decision, t0)

    def stream(self, prompt: PromptLike, **kwargs: Any) -> Generator[StreamChunk, None, RoutingResult]:
        """Sync twin of :meth:`astream`: yields chunks; the generator's return value is the result."""
        routed: RoutedStream = self._portal_call(lambda: self.astream(prompt, **kwargs))
        assert self._portal is not None
        portal = self._portal

        def gen() -> Generator[StreamChunk, None, RoutingResult]:
            iterator = routed.__aiter__()
            while True:
                try:
                    chunk = portal.call(iterator.__anext__)
                except StopAsyncIteration:
                    break
                yield chunk
            routed_result = routed.result
            assert routed_result is not None
            return routed_result

        return gen()

    # ---------------------------------------------------------------------------------------------
    # feedback, events, lifecycle

    def feedback(self, feedback: Feedback | Mapping[str, Any]) -> Feedback:
        """Broadcast a rating or outcome for a past request to every plugin (``on_feedback``)."""
        fb = feedback if isinstance(feedback, Feedback) else Feedback.model_validate(feedback)
        self._emit_sync("on_feedback", feedback=fb)
        return fb

    async def afeedback(self, feedback: Feedback | Mapping[str, Any]) -> Feedback:
        fb = feedback if isinstance(feedback, Feedback) else Feedback.model_validate(feedback)
        await self._emit("on_feedback", feedback=fb)
        return fb

    async def _emit(self, hook: str, **kwargs: Any) -> None:
        for awaitable in self.plugins.emit(hook, **kwargs):
            await awaitable

    def _emit_sync(self, hook: str, **kwargs: Any) -> None:
        pending = self.plugins.emit(hook, **kwargs)
        if pending:

            async def wait_all() -> None:
                for awaitable in pending:
                    await awaitable

            self._portal_call(wait_all)

    def _portal_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run async ``fn`` on the router's own event loop (a daemon thread started on first use, so that
        provider clients keep their connection pools between sync calls, and a router that is never closed
        does not keep the process alive)."""
        with self._portal_lock:
            if self._portal is None:
                self._start_portal()
        assert self._portal is not None
        return self._portal.call(fn, *args)

    def _start_portal(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            try:
                async with BlockingPortal() as portal:
                    self._portal = portal
                    ready.set()
                    await portal.sleep_until_stopped()
            except BaseException as exc:  # pragma: no cover - loop start-up failure
                failure.append(exc)
                ready.set()
                raise

        thread = threading.Thread(target=anyio.run, args=(serve,), name="llm-router-loop", daemon=True)
        thread.start()
        ready.wait()
        if failure:  # pragma: no cover
            raise RuntimeError("the router's event loop did not start") from failure[0]
        self._portal_thread = thread

    async def _complete_for(self, model_id: str, request: CompletionRequest) -> CompletionResponse:
        """Call one catalogue model directly (used by LLM classifiers through their context)."""
        model = self.catalogue.get(model_id)
        if model is None:
            raise ConfigurationError(f"unknown model {model_id!r}")
        reason = self.provider_status(model.provider)
        if reason is not None:
            raise ConfigurationError(f"{model_id}: {reason}")
        provider = self.providers[model.provider]
        return await _within(
            request.timeout_s or self.policy.fallback.timeout_s,
            provider.complete(request.model_copy(update={"model": model.model})),
        )

    def plugin_report(self) -> list[PluginRecord]:
        """Every plugin the router saw: loaded, failed (with the error), blocked or disabled."""
        return list(self.plugins.records)

    async def aclose(self) -> None:
        for provider in self.providers.values():
            try:
                await provider.aclose()
            except Exception as exc:
                log.warning("closing provider %r failed: %s", provider.context.name, exc)

    def close(self) -> None:
        if self.providers:
            if self._portal is not None:
                self._portal.call(self.aclose)
            else:
                anyio.run(self.aclose)
        with self._portal_lock:
            portal, thread = self._portal, self._portal_thread
            self._portal = self._portal_thread = None
        if portal is not None and thread is not None:
            portal.call(portal.stop)
            thread.join(timeout=10)

    def __enter__(self) -> Router:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"<Router policy={self.source.file!r} models={len(self.catalogue)} "
            f"providers={sorted(self.providers)} classify={[s.name for s in self.stages]}>"
        )


class RoutedStream:
    """A streamed answer with its decision; ``result`` is set when the stream has ended."""

    def __init__(self, router: Router, request: RouteRequest, decision: RoutingDecision, t0: float) -> None:
        self.router = router
        self.request = request
        self.decision = decision
        self.result: RoutingResult | None = None
        self.model: ModelInfo | None = None
        """The model currently streaming (it changes when the stream falls back before any text)."""
        self._t0 = t0

    async def __aenter__(self) -> RoutedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __aiter__(self) -> AsyncIterator[StreamChunk]:
        return self._run()

    async def _run(self) -> AsyncIterator[StreamChunk]:
        router, request, decision = self.router, self.request, self.decision
        fb = router.policy.fallback
        attempts: list[Attempt] = []
        last_error: RouterError | None = None
        for candidate in decision.best(fb.max_models):
            model = candidate.model
            provider = router.providers.get(model.provider)
            if provider is None:
                last_error = router._unavailable(model, attempts)
                continue
            self.model = model
            creq = router._completion_request(request, model)
            for retry in range(fb.retries + 1):
                t_call = time.perf_counter()
                started = False
                parts: list[str] = []
                usage: Usage | None = None
                finish: str | None = None
                request_id: str | None = None
                ttft: float | None = None
                try:
                    iterator = provider.stream(creq).__aiter__()
                    while True:
                        try:
                            chunk = await _within(creq.timeout_s, iterator.__anext__())
                        except StopAsyncIteration:
                            break
                        if ttft is None:
                            ttft = (time.perf_counter() - t_call) * 1000
                        started = started or bool(chunk.text or chunk.tool_calls)
                        parts.append(chunk.text)
                        usage = chunk.usage or usage
                        finish = chunk.finish_reason or finish
                        request_id = chunk.request_id or request_id
                        yield chunk
                except TimeoutError:
                    error: RouterError = RouterTimeoutError(
                        f"stream stalled for {creq.timeout_s:g}s", provider=model.provider, model=model.model
                    )
                except ProviderError as exc:
                    error = exc
                except Exception as exc:
                    error = ProviderError(
                        f"provider plugin raised {type(exc).__name__}: {exc}",
                        provider=model.provider,
                        model=model.model,
                    )
                else:
                    latency = (time.perf_counter() - t_call) * 1000
                    attempts.append(
                        construct(
                            Attempt,
                            model_id=model.id,
                            outcome="ok",
                            error_kind=None,
                            error=None,
                            latency_ms=latency,
                            retry=retry,
                        )
                    )
                    text = "".join(parts)
                    if usage is None:
                        usage = Usage(
                            input_tokens=decision.input_tokens, output_tokens=router._output_tokens(model, text)
                        )
                    gen_s = (latency - (ttft or 0)) / 1000
                    router.state.record_success(
                        model.id, ttft, usage.output_tokens / gen_s if gen_s > 0 and usage.output_tokens else None
                    )
                    response = CompletionResponse.model_construct(
                        text=text,
                        model=model.model,
                        finish_reason=finish,
                        tool_calls=(),
                        usage=usage,
                        request_id=request_id,
                        raw=None,
                    )
                    self.result = construct(
                        RoutingResult,
                        decision=decision,
                        response=response,
                        selected_model=construct(ModelRef, id=model.id, provider=model.provider, model=model.model),
                        usage=usage,
                        estimated_cost=candidate.estimated_cost,
                        cost=router._cost(model, usage),
                        latency_ms=(time.perf_counter() - self._t0) * 1000,
                        attempts=tuple(attempts),
                    )
                    await router._emit("on_result", result=self.result, request=request)
                    return
                last_error = error
                attempts.append(
                    construct(
                        Attempt,
                        model_id=model.id,
                        outcome="error",
                        error_kind=getattr(error, "kind", None),
                        error=str(error),
                        latency_ms=(time.perf_counter() - t_call) * 1000,
                        retry=retry,
                    )
                )
                if isinstance(error, ProviderError):
                    router.state.record_failure(model.id, error.kind)
                if started:  # text already delivered: falling back would duplicate or garble it
                    error.attempts = tuple(attempts)  # type: ignore[attr-defined]
                    await router._emit("on_error", error=error, request=request, decision=decision)
                    raise error
                retryable = isinstance(error, ProviderError) and error.retryable and error.kind in fb.on
                if not retryable or retry >= fb.retries:
                    break
                await anyio.sleep(router._backoff(retry, error))  # type: ignore[arg-type]
        assert last_error is not None
        last_error.attempts = tuple(attempts)  # type: ignore[attr-defined]
        await router._emit("on_error", error=last_error, request=request, decision=decision)
        raise last_error


# --------------------------------------------------------------------------------------------------


def _request_error(exc: ValidationError) -> str:
    lines = ["invalid request:"]
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p == "weights")))
        lines.append(f"  {loc}: {err['msg']}")
    return "\n".join(lines)


def _resolve_policy(
    policy: Policy | str | os.PathLike[str] | Mapping[str, Any] | None,
) -> tuple[Policy, SourceMap, Path]:
    if policy is None:
        p, source = load_default_policy()
        return p, source, Path.cwd()
    if isinstance(policy, Policy):
        return policy, SourceMap("<policy object>"), Path.cwd()
    if isinstance(policy, str | os.PathLike):
        p, source = load_policy(policy)
        return p, source, Path(policy).resolve().parent
    if isinstance(policy, Mapping):
        import yaml

        p, source = parse_policy(yaml.safe_dump(dict(policy), sort_keys=False), "<policy mapping>")
        return p, source, Path.cwd()
    raise TypeError(f"policy must be a Policy, a path, a mapping or None, not {type(policy).__name__}")
