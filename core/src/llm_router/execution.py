"""Execution: the one executor that runs a decision, for completions and streams alike.

It walks the decision's ranking (at most ``fallback.max_models`` candidates), calls each candidate's
provider, retries a retryable failure on the same model with backoff, then falls back to the next
candidate; it updates circuit breakers (only for failures that say the upstream is unhealthy) and live
latency (only with what a call really measured), runs the post-processors, settles the cost and emits
``on_result`` / ``on_error``. The walk itself (:class:`_Run`) is shared: a completion and a stream differ
only in the "call once" step.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import anyio

from .cache.service import Lookup, ResponseCache
from .components import PostProcessor, Provider
from .deployments import Deployment, DeploymentPool
from .errors import PostprocessError, ProviderError, RateLimitError, RouterError
from .errors import TimeoutError as RouterTimeoutError
from .limits import output_cap
from .policy import FallbackPolicy
from .state import StateStore, blend
from .tokens import count_text_tokens
from .tracing import RequestTrace, Tracing
from .types import (
    Attempt,
    CompletionRequest,
    CompletionResponse,
    Message,
    ModelInfo,
    ModelRef,
    RouteRequest,
    RoutingDecision,
    RoutingResult,
    ScoredCandidate,
    StreamChunk,
    StreamSettlement,
    Usage,
    construct,
)

__all__ = ["Executor", "RoutedStream", "prices"]

log = logging.getLogger("llm_router")
T = TypeVar("T")

MIN_SPEED_TOKENS = 16
"""Output tokens a call needs before its duration says anything about a model's output speed (a handful of
tokens in a few milliseconds would read as thousands of tokens per second)."""


class Emit(Protocol):
    def __call__(self, hook: str, **kwargs: Any) -> Awaitable[None]: ...


def _ref(model: ModelInfo) -> ModelRef:
    return construct(ModelRef, id=model.id, provider=model.provider, model=model.model)


def prices(model: ModelInfo, input_tokens: int, output_tokens: int) -> float:
    """USD for ``input_tokens`` in and ``output_tokens`` out at ``model``'s catalogue prices."""
    return (input_tokens * model.price.input_per_mtok + output_tokens * model.price.output_per_mtok) / 1_000_000


async def within(seconds: float | None, awaitable: Awaitable[T]) -> T:
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


@dataclass(slots=True)
class _Call:
    """One call to one candidate (a retry is a new call)."""

    candidate: ScoredCandidate
    provider: Provider
    request: CompletionRequest
    retry: int
    started_at: float = field(default_factory=time.perf_counter)
    retry_same: bool = False
    error: RouterError | None = None
    deployment: Deployment | None = None
    pool: DeploymentPool | None = None
    passed_over: tuple[str, ...] = ()
    switch: bool = False
    """Failed on one deployment of its model: the next call goes to another one, without a retry's backoff."""
    span: Any = None

    @property
    def model(self) -> ModelInfo:
        return self.candidate.model

    @property
    def circuit(self) -> str:
        """The key of this call's circuit breaker and latency: its deployment's, else its model's."""
        return self.deployment.key if self.deployment is not None else self.candidate.model.id

    def end(self, latency_ms: float | None = None, tokens: int = 0, error: RouterError | None = None) -> None:
        """Tell the deployment's pool the call ended (once): latency, tokens, and a cooldown after a 429."""
        pool, dep = self.pool, self.deployment
        if pool is None or dep is None:
            return
        self.pool = None
        limited = isinstance(error, RateLimitError)
        retry_after = error.retry_after_s if isinstance(error, RateLimitError) else None
        pool.done(dep, latency_ms=latency_ms, tokens=tokens, retry_after_s=retry_after, limited=limited)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started_at) * 1000


class Executor:
    """Runs decisions: see the module's docstring. Built once per Router by its assembly."""

    def __init__(
        self,
        *,
        providers: Mapping[str, Provider],
        provider_status: Callable[[str], str | None],
        state: StateStore,
        fallback: FallbackPolicy,
        postprocessors: Sequence[tuple[str, PostProcessor]],
        emit: Emit,
        deployments: Mapping[str, DeploymentPool] | None = None,
        cache: ResponseCache | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.providers = providers
        self.provider_status = provider_status
        self.state = state
        self.fallback = fallback
        self.postprocessors = tuple(postprocessors)
        self.emit = emit
        self.deployments: Mapping[str, DeploymentPool] = deployments or {}
        self.cache = cache
        self.tracing = tracing if tracing is not None and tracing.on else None

    # ----------------------------------------------------------------------------------------------
    # completions

    async def execute(self, request: RouteRequest, decision: RoutingDecision, t0: float) -> RoutingResult:
        """Answer from the cache when it holds the answer; else call down the ranking until a candidate
        answers (and store its answer); raise the last error (with ``attempts``) when none does."""
        found = await self.look_up(request)
        if found is not None:
            decision.note_cache(found.status)
        if found is not None and found.answer is not None:
            assert self.cache is not None
            result = self.cache.hit_result(found, decision, t0)
            await self.emit("on_result", result=result, request=request)
            return result
        run = _Run(self, request, decision, found)
        for call in run.calls():
            try:
                response = await within(call.request.timeout_s, call.provider.complete(call.request))
            except Exception as exc:
                run.failed(call, self.provider_failure(exc, call, "no answer"))
                await run.before_retry(call)
                continue
            latency = call.elapsed_ms()
            try:
                response = await self.postprocess(response, request, call.model)
            except PostprocessError as error:
                run.failed(call, error)
                await run.before_retry(call)
                continue
            usage = response.usage or Usage(
                input_tokens=decision.input_tokens, output_tokens=self.output_tokens(call.model, response.text)
            )
            self._learn_from_answer(call.model, latency, usage.output_tokens, call.circuit)
            result = run.result(call, response, usage, latency, t0)
            if found is not None:
                await self.cache.store(found, result)  # type: ignore[union-attr]
            await self.emit("on_result", result=result, request=request)
            return result
        raise await run.exhausted()

    async def look_up(self, request: RouteRequest, context: Any = None) -> Lookup | None:
        """The cache's answer for ``request`` (``None`` when the policy has no cache), in a span when tracing."""
        cache = self.cache
        if cache is None:
            return None
        tracing = self.tracing
        if tracing is None or not tracing.recording(context):
            return await cache.lookup(request)
        span = tracing.span("llm_router.cache", {}, context)
        found = await cache.lookup(request)
        tracing.end_attempt(span, {"llm_router.cache": found.status})
        return found

    async def postprocess(
        self, response: CompletionResponse, request: RouteRequest, model: ModelInfo
    ) -> CompletionResponse:
        """Run the policy's post-processors in order. A post-processor that raises anything but
        :class:`PostprocessError` is a broken plugin: its error becomes a ``PostprocessError`` (logged with
        the plugin's name), which falls back to the next candidate and never touches a circuit breaker."""
        if self.tracing is not None and self.postprocessors and self.tracing.recording():
            span = self.tracing.span("llm_router.postprocess", {"llm_router.model_id": model.id})
            try:
                response = await self._postprocess(response, request, model)
            except PostprocessError as exc:
                self.tracing.end_attempt(span, error=exc)
                raise
            self.tracing.end_attempt(span)
            return response
        return await self._postprocess(response, request, model)

    async def _postprocess(
        self, response: CompletionResponse, request: RouteRequest, model: ModelInfo
    ) -> CompletionResponse:
        for name, post in self.postprocessors:
            try:
                response = await post.process(response, request, model)
            except PostprocessError:
                raise
            except Exception as exc:
                log.error("post-processor %r raised %s: %s", name, type(exc).__name__, exc, exc_info=exc)
                raise PostprocessError(name, f"raised {type(exc).__name__}: {exc}", broken=True) from exc
        return response

    # ----------------------------------------------------------------------------------------------
    # streams

    def stream(self, request: RouteRequest, decision: RoutingDecision, t0: float) -> RoutedStream:
        """A stream of the decision's winner (falling back while nothing has been received)."""
        return RoutedStream(self, request, decision, t0)

    # ----------------------------------------------------------------------------------------------
    # shared steps

    def completion_request(self, request: RouteRequest, model: ModelInfo) -> CompletionRequest:
        return construct(
            CompletionRequest,
            model=model.model,
            messages=request.messages,
            max_tokens=(
                request.max_tokens
                if request.default_max_tokens is None
                else output_cap(model, request.max_tokens, request.default_max_tokens)
            ),
            temperature=request.temperature,
            stop=request.stop,
            response_format=request.response_format,
            tools=request.tools,
            tool_choice=request.tool_choice,
            timeout_s=request.timeout_s or self.fallback.timeout_s,
            extra={},
        )

    def provider_failure(self, exc: Exception, call: _Call, what: str) -> RouterError:
        """A provider call's exception in the router's vocabulary."""
        model = call.model
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, TimeoutError):
            return RouterTimeoutError(
                f"{what} within {call.request.timeout_s:g}s", provider=model.provider, model=model.model
            )
        log.error("provider %r raised an untyped error", model.provider, exc_info=exc)
        return ProviderError(
            f"provider plugin raised {type(exc).__name__}: {exc}", provider=model.provider, model=model.model
        )

    def output_tokens(self, model: ModelInfo, text: str) -> int:
        """Output tokens of an answer whose provider reported no usage: the provider's own count where it
        has one, else the router's."""
        provider = self.providers.get(model.provider)
        if provider is not None:
            try:
                counted = provider.count_tokens([Message(role="assistant", content=text)], model.model)
            except Exception:
                counted = None
            if counted is not None:
                return counted
        return count_text_tokens(text)

    def backoff_s(self, retry: int, error: RouterError | None) -> float:
        fb = self.fallback
        delay = min(fb.max_backoff_ms, fb.backoff_ms * (2**retry)) / 1000
        retry_after = getattr(error, "retry_after_s", None)
        if retry_after is not None:
            delay = min(max(delay, float(retry_after)), fb.max_backoff_ms / 1000)
        return float(delay)

    def _estimates(self, model: ModelInfo) -> tuple[float, float]:
        live = self.state.latency_table().get(model.id)
        if live is None:
            return model.ttft_ms, model.tokens_per_second
        return (
            blend(model.ttft_ms, live.ttft_ms, live.ttft_samples),
            blend(model.tokens_per_second, live.tokens_per_second, live.tps_samples),
        )

    def _learn_from_answer(self, model: ModelInfo, latency_ms: float, output_tokens: int, key: str) -> None:
        """A whole (non-streamed) answer cannot separate time to first token from generation: its latency
        is an upper bound on TTFT, and ``tokens / latency`` a lower bound on output speed. Each bound is
        recorded only where it proves the current estimate wrong (TTFT lower, speed higher), under ``key`` (the
        call's deployment, else its model)."""
        ttft_est, tps_est = self._estimates(model)
        ttft = latency_ms if latency_ms < ttft_est else None
        tps = None
        if output_tokens >= MIN_SPEED_TOKENS and latency_ms > 0:
            floor = output_tokens / (latency_ms / 1000)
            tps = floor if floor > tps_est else None
        self.state.record_success(key, ttft, tps)

    def learn_from_stream(
        self, model: ModelInfo, ttft_ms: float | None, latency_ms: float, output_tokens: int, key: str | None = None
    ) -> None:
        """A stream measures both: TTFT to its first chunk, speed over the rest (given enough tokens)."""
        tps = None
        generation_s = (latency_ms - (ttft_ms or 0.0)) / 1000
        if output_tokens >= MIN_SPEED_TOKENS and generation_s > 0:
            tps = output_tokens / generation_s
        self.state.record_success(key or model.id, ttft_ms, tps)


class _Run:
    """One request's walk down the ranking: which call to make next, and what the calls did."""

    def __init__(
        self, executor: Executor, request: RouteRequest, decision: RoutingDecision, found: Lookup | None = None
    ) -> None:
        self.executor = executor
        self.request = request
        self.decision = decision
        self.attempts: list[Attempt] = []
        self.last_error: RouterError | None = None
        self._tried: frozenset[str] = frozenset()
        """Deployments of the current candidate that failed for this request (the next call goes elsewhere)."""
        self.cache_status = found.status if found is not None else None
        self.trace_context: Any = None  # a stream's parent context for its attempts' spans

    def calls(self) -> Iterator[_Call]:
        """The calls to make, in order; each failed call says (through :meth:`failed`) whether to retry the
        same model, and the consumer waits :meth:`before_retry`. Ends when a call succeeds (the consumer
        stops asking) or the candidates run out. A plain generator: an async one costs an ``aclosing`` and
        an ``aclose`` on every request."""
        ex = self.executor
        fb = ex.fallback
        tracing = ex.tracing if ex.tracing is not None and ex.tracing.recording(self.trace_context) else None
        if not ex.deployments:  # the common case, kept as lean as it was
            for candidate in self.decision.best(fb.max_models):
                provider = ex.providers.get(candidate.model.provider)
                if provider is None:
                    self._unavailable(candidate.model)
                    continue
                creq = ex.completion_request(self.request, candidate.model)
                for retry in range(fb.retries + 1):
                    call = _Call(candidate, provider, creq, retry)
                    if tracing is not None:
                        self._span(tracing, call)
                    yield call
                    if not call.retry_same or retry >= fb.retries:
                        break
            return
        yield from self._deployed_calls(tracing)

    def _span(self, tracing: Tracing, call: _Call) -> None:
        model = call.model
        call.span = tracing.attempt(model.provider, model.model, model.id, call.retry, self.request, self.trace_context)

    def _deployed_calls(self, tracing: Tracing | None) -> Iterator[_Call]:
        """:meth:`calls` when some models have deployments: a call goes to the deployment its pool picks, and
        after a failure on one deployment the next call goes to another (not counted as a retry)."""
        ex = self.executor
        fb = ex.fallback
        for candidate in self.decision.best(fb.max_models):
            pool = ex.deployments.get(candidate.model.id)
            provider = ex.providers.get(candidate.model.provider)
            if provider is None and pool is None:
                self._unavailable(candidate.model)
                continue
            creq = ex.completion_request(self.request, candidate.model)
            self._tried = frozenset()
            retry = 0
            while retry <= fb.retries:
                if pool is None:
                    assert provider is not None
                    call: _Call | None = _Call(candidate, provider, creq, retry)
                else:
                    call = self._deployed(candidate, pool, creq, retry)
                if call is None:
                    break
                if tracing is not None:
                    self._span(tracing, call)
                try:
                    yield call
                finally:
                    call.end()  # a call abandoned (a cancelled request) leaves its deployment's in-flight count
                if call.switch:
                    self._tried |= {call.deployment.name} if call.deployment is not None else set()
                    continue
                if not call.retry_same:
                    break
                retry += 1
                self._tried = frozenset()

    def _deployed(
        self, candidate: ScoredCandidate, pool: DeploymentPool, creq: CompletionRequest, retry: int
    ) -> _Call | None:
        """The call to the deployment ``pool`` picks; ``None`` (a failed attempt naming each deployment and
        why) when none can take it now."""
        ex, model = self.executor, candidate.model
        dep, passed = pool.pick(self._tried)
        provider = ex.providers.get(dep.provider) if dep is not None else None
        if dep is None or provider is None:
            if dep is not None:
                pool.done(dep, latency_ms=None, tokens=0, retry_after_s=None, limited=False)
                passed = (*passed, f"{dep.name}: {ex.provider_status(dep.provider) or 'not available'}")
            error = RateLimitError(
                f"every deployment of {model.id} is at its limit or cooling down: {'; '.join(passed)}",
                provider=model.provider,
                model=model.model,
            )
            self.last_error = error
            self._record(model.id, error, 0.0, retry, None, passed)
            return None
        request = creq if dep.model == creq.model else creq.model_copy(update={"model": dep.model})
        return _Call(candidate, provider, request, retry, deployment=dep, pool=pool, passed_over=passed)

    async def before_retry(self, call: _Call) -> None:
        """After ``call`` failed: wait the backoff when the same model is tried again."""
        if call.switch:
            return
        if call.retry_same and call.retry < self.executor.fallback.retries:
            await anyio.sleep(self.executor.backoff_s(call.retry, call.error))

    def failed(self, call: _Call, error: RouterError) -> None:
        """Record a failed call: its attempt, the circuit breaker (upstream-health failures only) and
        whether the same model is worth another try."""
        ex = self.executor
        self.last_error = call.error = error
        self._record(call.model.id, error, call.elapsed_ms(), call.retry, call.deployment, call.passed_over)
        pool = call.pool
        call.end(error=error)
        if call.span is not None and ex.tracing is not None:
            ex.tracing.end_attempt(call.span, error=error)
            call.span = None
        if isinstance(error, ProviderError):
            if error.health:
                ex.state.record_failure(call.circuit, error.kind)
            call.retry_same = error.retryable and error.kind in ex.fallback.on
            # another deployment of the same model may answer at once (a 429 or an outage of one key or region)
            tried = self._tried | ({call.deployment.name} if call.deployment is not None else set())
            call.switch = pool is not None and (error.retryable or error.health) and pool.any_ready(tried)

    def succeeded(self, call: _Call, latency_ms: float, response: CompletionResponse, usage: Usage) -> None:
        self._record(call.model.id, None, latency_ms, call.retry, call.deployment, call.passed_over)
        tracing = self.executor.tracing
        if call.span is not None and tracing is not None:
            tracing.end_attempt(
                call.span,
                {
                    "gen_ai.response.model": response.model,
                    "gen_ai.response.id": response.request_id,
                    "gen_ai.usage.input_tokens": usage.input_tokens,
                    "gen_ai.usage.output_tokens": usage.output_tokens,
                },
            )
            call.span = None

    def abandoned(self, call: _Call) -> None:
        """The consumer stopped a stream midway: the attempt's span ends as cancelled."""
        tracing = self.executor.tracing
        if call.span is not None and tracing is not None:
            tracing.end_attempt(call.span, {"error.type": "cancelled"})
            call.span = None

    def _record(
        self,
        model_id: str,
        error: RouterError | None,
        latency_ms: float,
        retry: int,
        deployment: Deployment | None = None,
        passed_over: tuple[str, ...] = (),
    ) -> None:
        """One attempt: ``ok`` without an error, else ``error`` with the error's kind and message."""
        self.attempts.append(
            construct(
                Attempt,
                model_id=model_id,
                outcome="ok" if error is None else "error",
                error_kind=None if error is None else getattr(error, "kind", None),
                error=None if error is None else str(error),
                latency_ms=latency_ms,
                retry=retry,
                deployment=deployment.name if deployment is not None else None,
                passed_over=passed_over,
            )
        )

    def result(
        self, call: _Call, response: CompletionResponse, usage: Usage, latency_ms: float, t0: float
    ) -> RoutingResult:
        if call.pool is not None:
            call.end(latency_ms, usage.input_tokens + usage.output_tokens)
        self.succeeded(call, latency_ms, response, usage)
        model = call.model
        return construct(
            RoutingResult,
            decision=self.decision,
            response=response,
            selected_model=_ref(model),
            usage=usage,
            estimated_cost=call.candidate.estimated_cost,
            cost=prices(model, usage.input_tokens, usage.output_tokens),
            latency_ms=(time.perf_counter() - t0) * 1000,
            attempts=tuple(self.attempts),
            cache=self.cache_status,
            saved_cost=0.0,
        )

    def _unavailable(self, model: ModelInfo) -> None:
        """A candidate whose provider cannot be called (only reachable when the policy leaves the ``health``
        constraint out): recorded as a failed attempt, and the next candidate is tried."""
        reason = self.executor.provider_status(model.provider) or f"provider {model.provider!r} is not available"
        error = ProviderError(reason, provider=model.provider, model=model.model)
        self.last_error = error
        self._record(model.id, error, 0.0, 0)

    async def exhausted(self) -> RouterError:
        """The error to raise when no call succeeded: the last one, carrying every attempt; ``on_error`` is
        emitted."""
        error = self.last_error
        if error is None:  # no candidate at all (a decision always has one; kept for safety)
            error = ProviderError("no candidate could be called")
        error.attempts = tuple(self.attempts)
        await self.executor.emit("on_error", error=error, request=self.request, decision=self.decision)
        return error


class RoutedStream:
    """A streamed answer with its decision.

    Iterate it (``async for chunk in stream``) once; falls back to the next candidate while nothing has been
    received, and raises the provider's error once text has arrived. ``model`` is the model streaming now;
    ``result`` is set when the stream has ended normally (for a cache hit, as soon as the replay starts); ``cache``
    says what the response cache did once the first chunk is out; :meth:`settlement` says what the stream cost
    whatever happened (completed, failed midway, or abandoned by the consumer). Use it as an async context
    manager (or call :meth:`aclose`) so an abandoned stream closes its upstream at once.
    """

    def __init__(self, executor: Executor, request: RouteRequest, decision: RoutingDecision, t0: float) -> None:
        self.request = request
        self.decision = decision
        self.result: RoutingResult | None = None
        self.model: ModelInfo | None = None
        """The model currently streaming (it changes when the stream falls back before any text)."""
        self._executor = executor
        self._t0 = t0
        self._run = _Run(executor, request, decision)
        self._parts: list[str] = []
        self._chunks: AsyncGenerator[StreamChunk, None] | None = None
        self.cache: str | None = None
        """What the response cache did (``hit``, ``semantic``, ``miss``, ``bypass``; ``None``: no cache)."""
        self._found: Lookup | None = None
        self.trace: RequestTrace | None = None
        """The request's span, ended with the stream (set by ``Router.astream`` when tracing is on)."""
        if executor.tracing is not None:
            self._run.trace_context = executor.tracing.current()

    async def __aenter__(self) -> RoutedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[StreamChunk]:
        if self._chunks is None:
            self._chunks = self._walk() if self.trace is None else self._traced(self.trace)
        return self._chunks

    async def _traced(self, trace: RequestTrace) -> AsyncGenerator[StreamChunk, None]:
        """The stream, its request span ended when it ends (an error, or ``cancelled`` when abandoned)."""
        error: BaseException | None = None
        try:
            async with aclosing(self._walk()) as chunks:
                async for chunk in chunks:
                    yield chunk
        except BaseException as exc:
            error = exc
            raise
        finally:
            if self.result is not None or isinstance(error, Exception):
                trace.finish(result=self.result, decision=self.decision, error=error)
            else:
                trace.finish(decision=self.decision, attributes={"error.type": "cancelled"})

    async def aclose(self) -> None:
        """Stop the stream and close the upstream call (idempotent)."""
        chunks = self._chunks
        if chunks is not None:
            with anyio.CancelScope(shield=True):
                await chunks.aclose()

    def settlement(self) -> StreamSettlement:
        """What this stream produced and cost so far: the result's usage once it completed; else the input
        plus the text delivered so far, counted, at the streaming model's prices."""
        attempts = tuple(self._run.attempts)
        result = self.result
        if result is not None:
            return construct(
                StreamSettlement,
                model=result.selected_model,
                usage=result.usage,
                cost=result.cost,
                attempts=result.attempts,
                completed=True,
            )
        model = self.model
        if model is None:
            return construct(StreamSettlement, model=None, usage=Usage(), cost=0.0, attempts=attempts, completed=False)
        text = "".join(self._parts)
        usage = Usage(
            input_tokens=self.decision.input_tokens,
            output_tokens=self._executor.output_tokens(model, text) if text else 0,
        )
        return construct(
            StreamSettlement,
            model=_ref(model),
            usage=usage,
            cost=prices(model, usage.input_tokens, usage.output_tokens),
            attempts=attempts,
            completed=False,
        )

    async def _walk(self) -> AsyncGenerator[StreamChunk, None]:
        run, ex = self._run, self._executor
        found = self._found = await ex.look_up(self.request, run.trace_context)
        if found is not None:
            self.cache = run.cache_status = found.status
            self.decision.note_cache(found.status)
            if found.answer is not None:
                async for chunk in self._replay(found):
                    yield chunk
                return
        for call in run.calls():
            self.model = call.model
            self._parts = []
            attempt = _StreamAttempt(call)
            try:
                async with aclosing(attempt.chunks()) as chunks:
                    async for chunk in chunks:
                        self._parts.append(chunk.text)
                        yield chunk
            except Exception as exc:
                run.failed(call, ex.provider_failure(exc, call, "stream stalled: no chunk"))
                if attempt.started:  # text already delivered: falling back would duplicate or garble it
                    raise await run.exhausted() from None
                await run.before_retry(call)
                continue
            except BaseException:  # closed or cancelled by the consumer
                run.abandoned(call)
                raise
            self.result = await self._finish(call, attempt)
            return
        raise await run.exhausted()

    async def _finish(self, call: _Call, attempt: _StreamAttempt) -> RoutingResult:
        ex, model = self._executor, call.model
        latency = call.elapsed_ms()
        text = "".join(self._parts)
        usage = attempt.usage or Usage(
            input_tokens=self.decision.input_tokens, output_tokens=ex.output_tokens(model, text)
        )
        ex.learn_from_stream(model, attempt.ttft_ms, latency, usage.output_tokens, call.circuit)
        response = construct(
            CompletionResponse,
            text=text,
            model=model.model,
            finish_reason=attempt.finish_reason,
            tool_calls=(),
            usage=usage,
            request_id=attempt.request_id,
            raw=None,
        )
        result = self._run.result(call, response, usage, latency, self._t0)
        if self._found is not None and not attempt.tool_calls:  # streamed tool calls are not replayed
            await ex.cache.store(self._found, result)  # type: ignore[union-attr]
        await ex.emit("on_result", result=result, request=self.request)
        return result

    async def _replay(self, found: Lookup) -> AsyncGenerator[StreamChunk, None]:
        """A cache hit as a stream: the cached text in chunks, then the finish reason and usage."""
        ex = self._executor
        assert ex.cache is not None
        assert found.answer is not None
        self.result = result = ex.cache.hit_result(found, self.decision, self._t0)
        for chunk in found.answer.chunks():
            yield chunk
        await ex.emit("on_result", result=result, request=self.request)


class _StreamAttempt:
    """One streamed call: its chunks, and what they said (first-token time, usage, finish reason)."""

    __slots__ = ("call", "finish_reason", "request_id", "started", "tool_calls", "ttft_ms", "usage")

    def __init__(self, call: _Call) -> None:
        self.call = call
        self.started = False
        self.tool_calls = False
        self.ttft_ms: float | None = None
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.request_id: str | None = None

    async def chunks(self) -> AsyncGenerator[StreamChunk, None]:
        call = self.call
        upstream = call.provider.stream(call.request).__aiter__()
        try:
            while True:
                try:
                    chunk = await within(call.request.timeout_s, upstream.__anext__())
                except StopAsyncIteration:
                    return
                if self.ttft_ms is None:
                    self.ttft_ms = call.elapsed_ms()
                self.started = self.started or bool(chunk.text or chunk.tool_calls)
                self.tool_calls = self.tool_calls or bool(chunk.tool_calls)
                self.usage = chunk.usage or self.usage
                self.finish_reason = chunk.finish_reason or self.finish_reason
                self.request_id = chunk.request_id or self.request_id
                yield chunk
        finally:
            close = getattr(upstream, "aclose", None)
            if close is not None:
                with anyio.CancelScope(shield=True):
                    try:
                        await close()
                    except Exception as exc:  # a provider's stream that fails to close must not mask the outcome
                        log.debug("closing the upstream stream of %s failed: %s", call.model.id, exc)
