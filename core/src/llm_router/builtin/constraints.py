"""Built-in constraints. Their limits come from the merged ``constraints`` of the policy, the matching
route and the request; a constraint whose limit is not set keeps every candidate."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ..components import Candidate, Constraint, RoutingContext
from ..hookspecs import hookimpl
from ..limits import BUDGET_REASON, worst_case_cost
from ..model_lifecycle import LifecycleConstraint

Reasons = list[str | None]


def _matches(model_id: str, patterns: frozenset[str]) -> bool:
    return model_id in patterns or any(fnmatch.fnmatchcase(model_id, p) for p in patterns)


class ProvidersConstraint(Constraint):
    """``allowed_providers`` / ``blocked_providers`` and ``allowed_models`` / ``blocked_models`` (globs)."""

    name = "providers"

    def check(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[str | None]:
        c = ctx.constraints
        if (
            c.allowed_providers is None
            and not c.blocked_providers
            and c.allowed_models is None
            and not c.blocked_models
        ):
            return [None] * len(candidates)
        out: Reasons = []
        for cand in candidates:
            m = cand.model
            if c.allowed_providers is not None and m.provider not in c.allowed_providers:
                out.append(f"provider {m.provider!r} is not in allowed_providers {sorted(c.allowed_providers)}")
            elif m.provider in c.blocked_providers:
                out.append(f"provider {m.provider!r} is blocked")
            elif c.allowed_models is not None and not _matches(m.id, c.allowed_models):
                out.append("not in allowed_models")
            elif c.blocked_models and _matches(m.id, c.blocked_models):
                out.append("in blocked_models")
            else:
                out.append(None)
        return out


class CapabilitiesConstraint(Constraint):
    """Tools, vision, JSON mode, streaming: those the constraints require and those the request needs."""

    name = "capabilities"

    def check(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[str | None]:
        need = ctx.required_capabilities
        if not need:
            return [None] * len(candidates)
        out: Reasons = []
        for cand in candidates:
            missing = sorted(n for n in need if not cand.model.capabilities.has(n))
            out.append(f"lacks {', '.join(missing)}" if missing else None)
        return out


class ContextWindowConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    margin: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.05,
        description="head-room on the counted prompt for models whose tokenizer the router only estimates",
    )


class ContextWindowConstraint(Constraint):
    """The counted prompt plus the requested output must fit the model's context window, and the requested
    output its maximum output."""

    name = "context_window"
    Config: ClassVar[type[BaseModel]] = ContextWindowConfig

    def check(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[str | None]:
        assert isinstance(self.config, ContextWindowConfig)
        requested = ctx.request.max_tokens or ctx.constraints.max_output_tokens
        min_window = ctx.constraints.min_context_window
        if requested is None and min_window is None:
            # the common case, in one pass: every model fits even with the margin and the full expected output
            worst = int(ctx.input_tokens * (1 + self.config.margin)) + ctx.expected_output_tokens
            if min(c.model.context_window for c in candidates) >= worst:
                return [None] * len(candidates)
        out: Reasons = []
        for cand in candidates:
            m = cand.model
            prompt = ctx.input_tokens if m.tokenizer_exact else int(ctx.input_tokens * (1 + self.config.margin))
            output = requested if requested is not None else min(ctx.expected_output_tokens, m.max_output_tokens)
            if requested is not None and requested > m.max_output_tokens:
                out.append(f"max output {m.max_output_tokens} < {requested} requested")
            elif prompt + output > m.context_window:
                out.append(
                    f"context window {m.context_window} < {prompt + output} needed "
                    f"({prompt} prompt + {output} output tokens)"
                )
            elif min_window is not None and m.context_window < min_window:
                out.append(f"context window {m.context_window} < min_context_window {min_window}")
            else:
                out.append(None)
        return out


class CostConstraint(Constraint):
    """``max_cost_per_1k_tokens`` (the request's estimated cost per 1,000 tokens, input and expected output
    together) and ``max_cost_per_request`` (USD)."""

    name = "cost"

    def check(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[str | None]:
        c = ctx.constraints
        per_1k, per_request, budget = c.max_cost_per_1k_tokens, c.max_cost_per_request, c.budget_usd
        if per_1k is None and per_request is None and budget is None:
            return [None] * len(candidates)
        tokens = max(1, ctx.input_tokens + ctx.expected_output_tokens)
        max_tokens, cap, tokens_in = ctx.request.max_tokens, ctx.request.default_max_tokens, ctx.input_tokens
        out: Reasons = []
        for cand in candidates:
            blended = cand.estimated_cost / tokens * 1000
            if per_1k is not None and blended > per_1k:
                out.append(f"${blended:.5f} per 1k tokens > max_cost_per_1k_tokens ${per_1k:g}")
            elif per_request is not None and cand.estimated_cost > per_request:
                out.append(f"estimated ${cand.estimated_cost:.6f} > max_cost_per_request ${per_request:g}")
            elif budget is not None and (worst := worst_case_cost(cand.model, tokens_in, max_tokens, cap)) > budget:
                out.append(f"{BUDGET_REASON} ${worst:.6f} > remaining budget ${budget:.6f}")
            else:
                out.append(None)
        return out


class LatencyConstraint(Constraint):
    """``max_latency_ms`` against the estimated time to the last token."""

    name = "latency"

    def check(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[str | None]:
        limit = ctx.constraints.max_latency_ms
        if limit is None:
            return [None] * len(candidates)
        return [
            f"estimated {c.estimated_latency_ms:.0f} ms > max_latency_ms {limit:g}"
            if c.estimated_latency_ms > limit
            else None
            for c in candidates
        ]


class QualityConstraint(Constraint):
    """``min_quality`` against the model's quality prior for the request's task."""

    name = "quality"

    def check(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[str | None]:
        limit = ctx.constraints.min_quality
        if limit is None:
            return [None] * len(candidates)
        task = ctx.classification.task
        out: Reasons = []
        for c in candidates:
            q = c.model.quality_for(task)
            out.append(f"quality {q:.2f} for {task} < min_quality {limit:g}" if q < limit else None)
        return out


class HealthConstraint(Constraint):
    """Open circuit breakers always; when the decision is to be executed, also providers that cannot be
    called (plugin not installed, key missing, provider not configured)."""

    name = "health"

    def check(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[str | None]:
        circuits = ctx.state.has_open_circuits()
        if not circuits and not ctx.executing:
            return [None] * len(candidates)
        out: Reasons = []
        status: dict[str, str | None] = {}
        for c in candidates:
            reason = ctx.state.open_circuit_reason(c.model.id) if circuits else None
            if reason is None and ctx.executing:
                provider = c.model.provider
                if provider not in status:
                    status[provider] = ctx.provider_status(provider)
                reason = status[provider]
            out.append(reason)
        return out


ALL: tuple[type[Constraint], ...] = (
    ProvidersConstraint,
    CapabilitiesConstraint,
    ContextWindowConstraint,
    CostConstraint,
    LatencyConstraint,
    QualityConstraint,
    HealthConstraint,
    LifecycleConstraint,
)


@hookimpl
def register_constraints(register: Callable[[type[Constraint]], None]) -> None:
    for cls in ALL:
        register(cls)
