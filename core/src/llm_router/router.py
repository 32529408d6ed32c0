"""The Router: a façade over assembly (policy → components), decision and execution.

Read it in one sitting: every public method is a few lines that hand over to
:class:`~llm_router.assembly.Assembly` (at start-up), :class:`~llm_router.decision.DecisionEngine`
(``decide``) and :class:`~llm_router.execution.Executor` (``execute``, ``open_stream``). The synchronous
methods run the async core on the router's own event loop thread (:class:`~llm_router.lifecycle.LoopThread`).

The API for faces and embedders (the CLI, the gateway, your app) is:

- :meth:`Router.build_request` — a prompt, preferences and constraints as a validated :class:`RouteRequest`;
- :meth:`Router.adecide` / :meth:`Router.decide` — the :class:`RoutingDecision` for a request;
- :meth:`Router.aexecute` — call the decision's winner, falling back down the ranking;
- :meth:`Router.open_stream` — the same as a :class:`RoutedStream`, whose ``settlement()`` says what it
  cost however it ended;
- :meth:`Router.afeedback`, :meth:`Router.provider_status`, :meth:`Router.awarm_up` (before serving),
  ``catalogue``, ``policy``, ``warnings``;
- :meth:`Router.start_trace` — a request's OpenTelemetry span (a no-op when tracing is off);
  :meth:`Router.acache_stats`, :meth:`Router.acache_clear` — the response cache.

``route`` / ``route_and_execute`` / ``astream`` are the one-call conveniences built on them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
from pydantic import ValidationError

from .assembly import Assembly
from .cache.service import ResponseCache
from .components import Constraint, PostProcessor, Scorer
from .decision import CompiledRoute, DecisionEngine
from .deployments import build_pools
from .errors import ComponentError, ConfigurationError, PolicyError, RouterError
from .execution import Executor, RoutedStream, within
from .experiments import Experiments
from .lifecycle import LoopThread
from .pacing import PaceBook
from .plugins import PluginHost, PluginRecord
from .policy import Policy, RouteRule, SourceMap, load_default_policy, load_policy, parse_policy
from .state import MemoryState, StateStore
from .tokens import count_text_tokens
from .tracing import RequestTrace, Tracing
from .types import (
    CompletionRequest,
    CompletionResponse,
    Constraints,
    Feedback,
    Message,
    Preferences,
    RouteRequest,
    RoutingDecision,
    RoutingResult,
    StreamChunk,
)

__all__ = ["RoutedStream", "Router"]

log = logging.getLogger("llm_router")

PromptLike = str | Sequence[Message | Mapping[str, Any]] | RouteRequest

OFFLOAD_CHARS = 32_000
"""A prompt longer than this is decided in a worker thread by the async API (counting its tokens takes
milliseconds), so that one large request never holds up the event loop that serves the others."""


class Router:
    """Routes prompts to models, and runs them.

    :param policy: a :class:`~llm_router.policy.Policy`, a path to a YAML policy, a mapping with the
        policy's content, or ``None`` for the built-in default policy.
    :param plugins: extra plugin objects to register (modules or objects with ``@hookimpl`` functions),
        besides those found through the ``llm_router`` entry points.
    :param state: where circuit breakers and live latency measurements live (default: in memory).
    :param autoload: load third-party entry-point plugins (default: yes, unless
        ``LLM_ROUTER_DISABLE_PLUGIN_AUTOLOAD=1``).
    :param strict: any plugin failure raises (default: ``LLM_ROUTER_STRICT_PLUGINS``).
    :param block: entry-point names not to load (default: ``LLM_ROUTER_BLOCK_PLUGINS``).
    :param tracer_provider: an OpenTelemetry tracer provider to trace with (switches tracing on; default: the
        policy's ``telemetry.tracing`` with the global provider).
    :raises PolicyError: every problem of the policy, each with file:line and field.
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
        tracer_provider: Any = None,
    ) -> None:
        self.policy, self.source, self.policy_dir = _resolve_policy(policy)
        self.plugins = PluginHost(plugins, autoload=autoload, strict=strict, block=block)
        fb = self.policy.fallback
        self.state: StateStore = state or _state_store(self.policy)
        parts = Assembly(self.policy, self.source, self.policy_dir, self.plugins, self.state, self._complete_for)
        if parts.issues:
            raise PolicyError(parts.issues)
        self.taxonomy = parts.taxonomy
        self.catalogue = parts.catalogue
        self.providers = parts.providers
        self.stages = parts.stages
        self.constraints: list[tuple[str, Constraint]] = parts.constraints
        self.scorers: list[tuple[str, Scorer]] = parts.scorers
        self.postprocessors: list[tuple[str, PostProcessor]] = parts.postprocessors
        self.warnings: tuple[str, ...] = tuple(parts.warnings)
        """Start-up problems that did not stop the router (a provider whose model listing failed)."""
        self._provider_problems = parts.provider_problems
        self.pacing = PaceBook()
        """The day's spend per pace scope (``preferences.pace``), fed by this router's results."""
        self._decisions = DecisionEngine(
            policy=self.policy,
            taxonomy=self.taxonomy,
            catalogue=self.catalogue,
            stages=self.stages,
            constraints=self.constraints,
            scorers=self.scorers,
            routes=parts.routes,
            state=self.state,
            provider_status=self.provider_status,
            pacing=self.pacing,
            experiments=Experiments(self.policy.experiments, self._compile_routes, parts.variant_stages),
        )
        self.tracing = Tracing(self.policy.telemetry, tracer_provider)
        self.cache = _response_cache(self.policy, self.source, self.plugins)
        self._executor = Executor(
            providers=self.providers,
            provider_status=self.provider_status,
            state=self.state,
            fallback=fb,
            postprocessors=self.postprocessors,
            emit=self._emit,
            deployments=build_pools(self.policy.deployments, self.catalogue, self.state),
            cache=self.cache,
            tracing=self.tracing,
        )
        self._loop = LoopThread()
        self.plugins.add_listener(self.pacing, f"pacing #{id(self.pacing)}")
        for kind, named in (("scorer", self.scorers), ("constraint", self.constraints)):
            for name, component in named:  # a component that learns hears its own router's events
                self.plugins.add_listener(component, f"{kind} {name} #{id(component)}")
        self._has_decision_listeners = self.plugins.has_listeners("on_decision")

    def _compile_routes(self, rules: list[RouteRule]) -> list[CompiledRoute]:
        """An experiment variant's routes, resolved against the catalogue."""
        return [
            CompiledRoute(
                rule.name or f"variant routes[{i}]",
                rule,
                list(self.catalogue) if rule.models == "*" else self.catalogue.match(rule.models),
            )
            for i, rule in enumerate(rules)
        ]

    @classmethod
    def from_policy(cls, path: str | os.PathLike[str], **kwargs: Any) -> Router:
        """A router for the policy file at ``path``."""
        return cls(Path(path), **kwargs)

    # ==============================================================================================
    # the API for faces and embedders

    def build_request(
        self,
        prompt: PromptLike,
        *,
        preferences: Preferences | Mapping[str, Any] | None = None,
        constraints: Constraints | Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> RouteRequest:
        """A validated :class:`RouteRequest` from a prompt (a string, a list of messages as dicts or
        :class:`Message`, or a request to amend) and per-request preferences, constraints and fields
        (``max_tokens``, ``tools``, ``metadata``, ``model``, …).

        :raises ConfigurationError: ``"invalid request: …"`` naming each bad field (an empty prompt,
            infinite weights, a message without a role, a prompt that is neither text nor messages).
        """
        if isinstance(prompt, RouteRequest):
            if preferences is None and constraints is None and not fields:
                return prompt
            data: dict[str, Any] = {**prompt.model_dump(exclude_unset=True), **fields}
        else:
            data = {"messages": prompt, **fields}
        if preferences is not None:
            data["preferences"] = preferences
        if constraints is not None:
            data["constraints"] = constraints
        try:
            return RouteRequest.model_validate(data)
        except ValidationError as exc:
            raise ConfigurationError(_request_error(exc)) from None

    async def adecide(self, request: RouteRequest, *, for_execution: bool = False) -> RoutingDecision:
        """The routing decision for ``request``, without calling a model; ``on_decision`` is emitted.

        :param for_execution: the decision will be executed now, so providers that cannot take calls
            (not installed, no key) are ruled out.
        :raises NoCandidatesError: every model was rejected; the error lists each and why.
        :raises ConfigurationError: the request names an unknown model or scorer.
        """
        t0 = time.perf_counter()
        marks: list[float] | None = [t0] if self.tracing.on else None
        try:
            if not self._decisions.sync_cascade:
                engine = self._decisions
                assigned = engine.assign(request)
                classification = await engine.aclassify(request, assigned)
                decision = engine.decide(
                    request, classification, t0, executing=for_execution, marks=marks, assigned=assigned
                )
            elif _prompt_chars(request) > OFFLOAD_CHARS:
                decision = await anyio.to_thread.run_sync(self._decide_sync, request, for_execution, t0, marks)
            else:
                decision = self._decide_sync(request, for_execution, t0, marks)
        except RouterError as exc:
            await self._emit("on_error", error=exc, request=request, decision=None)
            raise
        if marks is not None:
            self.tracing.decision_spans(decision, marks)
        await self._decided(decision, request)
        return decision

    def decide(self, request: RouteRequest, *, for_execution: bool = False) -> RoutingDecision:
        """The synchronous twin of :meth:`adecide`."""
        if not self._decisions.sync_cascade:
            decided: RoutingDecision = self._loop.call(self._adecide_for, request, for_execution)
            return decided
        try:
            decision = self._decide_sync(request, for_execution, time.perf_counter())
        except RouterError as exc:
            self._emit_sync("on_error", error=exc, request=request, decision=None)
            raise
        self._emit_sync_decided(decision, request)
        return decision

    async def aexecute(self, request: RouteRequest, decision: RoutingDecision | None = None) -> RoutingResult:
        """Call ``decision``'s winner (deciding first when it is ``None``), falling back down the ranking on
        failure; post-process; emit ``on_result``. With the policy's ``cache:`` section, a cached answer is
        returned instead when there is one (``result.cache`` says what the cache did; ``request.cache`` controls
        it per request) and a fresh answer is stored.

        :raises ProviderError: every candidate failed: the last error, with ``attempts`` listing each call.
        :raises PostprocessError: the last candidate's answer was refused by a post-processor.
        """
        t0 = time.perf_counter()
        if decision is None:
            decision = await self.adecide(request, for_execution=True)
        return await self._executor.execute(request, decision, t0)

    def open_stream(self, request: RouteRequest, decision: RoutingDecision) -> RoutedStream:
        """Stream ``decision``'s winner: iterate the returned :class:`RoutedStream` (``async for``); it falls
        back while nothing has been received. Its ``settlement()`` gives the usage and cost however the
        stream ended (post-processors do not run on streams: their text has already been delivered)."""
        return self._executor.stream(request, decision, time.perf_counter())

    def provider_status(self, name: str) -> str | None:
        """``None`` when provider ``name`` can take calls, else why not."""
        provider = self.providers.get(name)
        if provider is None:
            return self._provider_problems.get(name) or f"provider {name!r} is not configured in the policy"
        try:
            return provider.unavailable_reason()
        except Exception as exc:
            return f"provider {name!r} failed its readiness check: {type(exc).__name__}: {exc}"

    async def afeedback(self, feedback: Feedback | Mapping[str, Any]) -> Feedback:
        """Broadcast a rating or outcome for a past request to every plugin (``on_feedback``)."""
        fb = feedback if isinstance(feedback, Feedback) else Feedback.model_validate(feedback)
        await self._emit("on_feedback", feedback=fb)
        return fb

    def feedback(self, feedback: Feedback | Mapping[str, Any]) -> Feedback:
        """The synchronous twin of :meth:`afeedback`."""
        fb = feedback if isinstance(feedback, Feedback) else Feedback.model_validate(feedback)
        self._emit_sync("on_feedback", feedback=fb)
        return fb

    def warm_up(self) -> None:
        """Load now what the first calls would load inside their timeouts: each provider's SDK
        (``Provider.warm_up``) and the tokenizer tables. Routing alone never needs this; a face about to
        call models (a gateway before it serves, ``llm-router run``) does. A provider whose warm-up fails is
        logged; its first call will say what is wrong."""
        count_text_tokens("warm up")
        for name, provider in self.providers.items():
            try:
                provider.warm_up()
            except Exception as exc:
                log.warning("provider %r could not warm up: %s: %s", name, type(exc).__name__, exc)

    async def awarm_up(self) -> None:
        """:meth:`warm_up` in a worker thread (importing is blocking work: the event loop stays free); a shared
        state store (``state.backend: redis``) connects and starts its background refresh here."""
        await anyio.to_thread.run_sync(self.warm_up)
        start = getattr(self.state, "start", None)
        if start is not None:
            await start()

    def plugin_report(self) -> list[PluginRecord]:
        """Every plugin the router saw: loaded, failed (with the error), blocked or disabled."""
        return list(self.plugins.records)

    def start_trace(
        self,
        operation: str = "chat",
        *,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> RequestTrace:
        """Start a request's span (continuing the ``traceparent`` in ``headers``); ``attach()`` it while
        deciding and executing, ``finish(...)`` it when the request ends. A no-op object when tracing is off."""
        return self.tracing.start_request(operation, model=model, headers=headers, request_id=request_id)

    async def acache_stats(self) -> dict[str, Any]:
        """The response cache's entries, size and hit counts (``{"enabled": False}`` without a cache)."""
        if self.cache is None:
            return {"enabled": False}
        return {"enabled": True, **await self.cache.stats()}

    async def acache_clear(self) -> int:
        """Remove every cached answer (of the shared back-end too); return how many there were."""
        return await self.cache.clear() if self.cache is not None else 0

    # ==============================================================================================
    # one-call conveniences

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
        :param preferences: weights per scorer for this request (``{"quality": 0.5, "cost_weight": 0.3}``),
            merged name by name over the policy's.
        :param constraints: hard limits for this request (see :class:`Constraints`).
        :param fields: other :class:`RouteRequest` fields (``max_tokens``, ``tools``, ``metadata``, …).
        :raises NoCandidatesError: every model was rejected; the error lists each and why.
        """
        return self.decide(self.build_request(prompt, preferences=preferences, constraints=constraints, **fields))

    async def aroute(
        self,
        prompt: PromptLike,
        *,
        preferences: Preferences | Mapping[str, Any] | None = None,
        constraints: Constraints | Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> RoutingDecision:
        """The async twin of :meth:`route`."""
        return await self.adecide(
            self.build_request(prompt, preferences=preferences, constraints=constraints, **fields)
        )

    def route_and_execute(
        self,
        prompt: PromptLike,
        *,
        preferences: Preferences | Mapping[str, Any] | None = None,
        constraints: Constraints | Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> RoutingResult:
        """Decide, call the winner (falling back down the ranking on failure), post-process, report.

        ``cache={"no_cache": ..., "no_store": ..., "ttl_s": ..., "semantic": ...}`` (a :class:`CacheOptions`)
        controls the response cache for this request; with tracing on, the request is one span.

        :raises ProviderError: every candidate failed; this is the last provider's own error, with
            ``attempts`` listing every call.
        :raises NoCandidatesError: every model was rejected.
        """
        request = self.build_request(prompt, preferences=preferences, constraints=constraints, **fields)
        result: RoutingResult = self._loop.call(self._traced_execute, request)
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
        return await self._traced_execute(
            self.build_request(prompt, preferences=preferences, constraints=constraints, **fields)
        )

    async def astream(
        self,
        prompt: PromptLike,
        *,
        preferences: Preferences | Mapping[str, Any] | None = None,
        constraints: Constraints | Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> RoutedStream:
        """Decide, then stream the winner's answer (see :meth:`open_stream`).

        Use as ``async with await router.astream(prompt) as stream: async for chunk in stream: ...``; after
        the stream ends ``stream.result`` holds the :class:`RoutingResult`.
        """
        request = self.build_request(
            prompt, preferences=preferences, constraints=constraints, **{**fields, "stream": True}
        )
        if not self.tracing.on:
            decision = await self.adecide(request, for_execution=True)
            return self.open_stream(request, decision)
        trace = self.start_trace("chat", model=request.model or "auto", request_id=request.metadata.get("request_id"))
        with trace.active():
            try:
                decision = await self.adecide(request, for_execution=True)
            except BaseException as exc:
                trace.finish(error=exc)
                raise
            stream = self.open_stream(request, decision)
        stream.trace = trace  # ended with the stream
        return stream

    def stream(self, prompt: PromptLike, **kwargs: Any) -> Generator[StreamChunk, None, RoutingResult]:
        """Sync twin of :meth:`astream`: yields chunks; the generator's return value is the result."""
        routed: RoutedStream = self._loop.call(lambda: self.astream(prompt, **kwargs))
        loop = self._loop

        def chunks() -> Generator[StreamChunk, None, RoutingResult]:
            iterator = routed.__aiter__()
            try:
                while True:
                    try:
                        chunk = loop.call(iterator.__anext__)
                    except StopAsyncIteration:
                        break
                    yield chunk
            finally:
                if routed.result is None:
                    loop.call(routed.aclose)
            result = routed.result
            assert result is not None
            return result

        return chunks()

    # ==============================================================================================
    # lifecycle

    async def aclose(self) -> None:
        """Close every provider's connections (and the response cache's, and a shared state store's)."""
        close = getattr(self.state, "close", None)
        if close is not None:
            await close()
        if self.cache is not None:
            try:
                await self.cache.aclose()
            except Exception as exc:
                log.warning("closing the response cache failed: %s", exc)
        for name, provider in self.providers.items():
            try:
                await provider.aclose()
            except Exception as exc:
                log.warning("closing provider %r failed: %s", name, exc)

    def close(self) -> None:
        """Close every provider's connections and stop the router's event loop thread."""
        if self.providers or self.cache is not None:
            if self._loop.running:
                self._loop.call(self.aclose)
            else:
                anyio.run(self.aclose)
        self._loop.stop()

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

    # ==============================================================================================
    # internals

    def _decide_sync(
        self, request: RouteRequest, for_execution: bool, t0: float, marks: list[float] | None = None
    ) -> RoutingDecision:
        engine = self._decisions
        assigned = engine.assign(request)
        classification = engine.classify(request, assigned)
        return engine.decide(request, classification, t0, executing=for_execution, marks=marks, assigned=assigned)

    async def _traced_execute(self, request: RouteRequest) -> RoutingResult:
        """:meth:`aexecute` in a request span when tracing is on."""
        if not self.tracing.on:
            return await self.aexecute(request)
        trace = self.start_trace("chat", model=request.model or "auto", request_id=request.metadata.get("request_id"))
        if self.tracing.log_prompts:
            trace.record_prompt("\n".join(f"{m.role}: {m.text()}" for m in request.messages))
        with trace.active():
            try:
                result = await self.aexecute(request)
            except BaseException as exc:
                trace.finish(error=exc)
                raise
        trace.finish(result=result)
        return result

    async def _adecide_for(self, request: RouteRequest, for_execution: bool) -> RoutingDecision:
        return await self.adecide(request, for_execution=for_execution)

    def _decision_events(self, decision: RoutingDecision, request: RouteRequest) -> list[tuple[str, dict[str, Any]]]:
        """The events a decision emits: ``on_error`` for each skipped component, then ``on_decision``."""
        events: list[tuple[str, dict[str, Any]]] = [
            ("on_error", {"error": ComponentError(s.kind, s.name, s.error), "request": request, "decision": decision})
            for s in decision.skipped
        ]
        if self._has_decision_listeners:
            events.append(("on_decision", {"decision": decision, "request": request}))
        return events

    async def _decided(self, decision: RoutingDecision, request: RouteRequest) -> None:
        for hook, kwargs in self._decision_events(decision, request):
            await self._emit(hook, **kwargs)

    def _emit_sync_decided(self, decision: RoutingDecision, request: RouteRequest) -> None:
        for hook, kwargs in self._decision_events(decision, request):
            self._emit_sync(hook, **kwargs)

    async def _emit(self, hook: str, **kwargs: Any) -> None:
        for awaitable in self.plugins.emit(hook, **kwargs):
            await awaitable

    def _emit_sync(self, hook: str, **kwargs: Any) -> None:
        pending = self.plugins.emit(hook, **kwargs)
        if pending:

            async def wait_all() -> None:
                for awaitable in pending:
                    await awaitable

            self._loop.call(wait_all)

    async def _complete_for(self, model_id: str, request: CompletionRequest) -> CompletionResponse:
        """Call one catalogue model directly (LLM classifiers do, through their component context)."""
        model = self.catalogue.get(model_id)
        if model is None:
            raise ConfigurationError(f"unknown model {model_id!r}")
        reason = self.provider_status(model.provider)
        if reason is not None:
            raise ConfigurationError(f"{model_id}: {reason}")
        provider = self.providers[model.provider]
        return await within(
            request.timeout_s or self.policy.fallback.timeout_s,
            provider.complete(request.model_copy(update={"model": model.model})),
        )


# --------------------------------------------------------------------------------------------------


def _state_store(policy: Policy) -> StateStore:
    """The policy's state backend: in memory, or shared on Redis (imported only then)."""
    fb = policy.fallback
    if policy.state.backend == "redis":
        from .redis_state import RedisState

        return RedisState(policy.state, fb.circuit_failures, fb.circuit_cooldown_s)
    return MemoryState(fb.circuit_failures, fb.circuit_cooldown_s)


def _response_cache(policy: Policy, source: SourceMap, plugins: PluginHost) -> ResponseCache | None:
    """The policy's response cache (``None`` without one); a :class:`PolicyError` at ``cache`` when it cannot be
    built (no plugin provides the embedder, the redis package is missing)."""
    spec = policy.cache
    if not spec.enabled:
        return None
    if spec.backend == "redis" and not spec.url:
        if policy.state.backend != "redis" or not policy.state.url:
            raise PolicyError(
                [source.issue(("cache", "backend"), "backend: redis needs cache.url, or state: {backend: redis, url}")]
            )
        spec = spec.model_copy(update={"url": policy.state.url})  # the fleet's Redis, as the state backend has it
    metadata = frozenset(k for rule in policy.routes for k in (rule.when.metadata or {}))
    try:
        return ResponseCache(
            spec,
            route_metadata=metadata,
            embedders=plugins.embedders() if spec.semantic is not None else None,
        )
    except (ValueError, ImportError) as exc:
        where = ("cache", "semantic", "embedder") if isinstance(exc, ValueError) else ("cache", "backend")
        raise PolicyError([source.issue(where, str(exc))]) from None


def _prompt_chars(request: RouteRequest) -> int:
    return sum(len(m.content) if isinstance(m.content, str) else len(m.text()) for m in request.messages)


def _request_error(exc: ValidationError) -> str:
    lines = ["invalid request:"]
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p == "weights")))
        lines.append(f"  {loc}: {err['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


def _resolve_policy(
    policy: Policy | str | os.PathLike[str] | Mapping[str, Any] | None,
) -> tuple[Policy, SourceMap, Path]:
    p, source, where = _load(policy)
    if "preferences" not in p.model_fields_set:
        # default weights only for the scorers this policy actually uses
        names = {spec.name for spec in p.score}
        kept = {k: v for k, v in p.preferences.weights.items() if k in names} or dict.fromkeys(names, 1.0)
        p = p.model_copy(update={"preferences": Preferences(weights=kept)})
    return p, source, where


def _load(
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
