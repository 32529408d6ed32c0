"""The data that crosses the router's boundaries: requests, decisions, results.

Every public type is a pydantic v2 model. Models built on the hot path by the router itself (decisions,
candidates) are created with ``model_construct`` from already-validated data; everything that comes from a
caller is validated.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    computed_field,
    field_validator,
    model_validator,
)

__all__ = [
    "Attempt",
    "CacheOptions",
    "Capabilities",
    "Classification",
    "CompletionRequest",
    "CompletionResponse",
    "Constraints",
    "Feedback",
    "Message",
    "ModelInfo",
    "ModelPrice",
    "ModelRef",
    "Preferences",
    "Rejection",
    "RouteRequest",
    "RoutingDecision",
    "RoutingResult",
    "ScoredCandidate",
    "SkippedComponent",
    "StageResult",
    "StreamChunk",
    "StreamSettlement",
    "ToolCall",
    "Usage",
]

JSON_VERSION = 1
"""Version of the JSON form of decisions and results (``to_json``), shared by the CLI and the gateway."""

Role = Literal["system", "user", "assistant", "tool", "developer"]
CAPABILITIES = ("tools", "vision", "json_mode", "streaming")
Capability = Literal["tools", "vision", "json_mode", "streaming"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------------------------------
# Messages and requests
# --------------------------------------------------------------------------------------------------


class Message(_Frozen):
    """One chat message. ``content`` is text, or a list of OpenAI-style content parts (text, image_url)."""

    role: Role
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's text, with non-text parts left out."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")

    def has_image(self) -> bool:
        return isinstance(self.content, list) and any(
            p.get("type") in ("image_url", "image", "input_image") for p in self.content
        )


class Pace(BaseModel):
    """Budget pacing: the cost weight follows the day's spend against an even plan (:mod:`llm_router.pacing`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    budget_usd_per_day: Annotated[float, Field(gt=0)]
    gain: Annotated[float, Field(gt=0)] = Field(default=1.0, description="logits of cost weight per band overspent")
    band: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.02, description="the overspend, as a share of the day's budget, that moves the weight one gain"
    )


class Preferences(BaseModel):
    """How to trade the scorers off: a weight per scorer name (``quality``, ``cost``, ``latency``, …).

    ``cost_weight`` is accepted for ``cost`` (and likewise for every scorer). Weights are non-negative and
    are normalised to sum to 1 when they are used; a weight of 0 switches that scorer off. ``pace`` (not a
    weight) paces the spend through the day by moving the cost weight (:class:`Pace`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    weights: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    pace: Pace | None = None

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        if isinstance(data, Preferences):
            return data
        if isinstance(data, Mapping) and "weights" not in data:
            out: dict[str, Any] = {}
            for key, value in data.items():
                if key == "pace":
                    continue
                if not isinstance(key, str):
                    raise ValueError(f"preference names are strings, got {key!r}")
                name = key.removesuffix("_weight")
                if name in out:
                    raise ValueError(f"preference {name!r} is given twice ({name!r} and {key!r})")
                out[name] = value
            return {"weights": out, "pace": data["pace"]} if "pace" in data else {"weights": out}
        return data

    def merged(self, override: Preferences | None) -> Preferences:
        """These weights with ``override``'s on top, name by name: ``{"cost": 0.5}`` changes the cost
        weight and keeps the others (set one to 0 to switch that scorer off); ``override``'s pace, if any."""
        if override is None or (not override.weights and override.pace is None):
            return self
        return Preferences.model_construct(
            weights={**self.weights, **override.weights}, pace=override.pace or self.pace
        )

    def normalised(self) -> dict[str, float]:
        """The weights scaled to sum to 1 (rounded to 6 places), without the zero ones."""
        total = sum(self.weights.values())
        if total <= 0:
            raise ValueError("preferences: at least one weight must be greater than 0")
        return {k: round(v / total, 6) for k, v in self.weights.items() if v > 0}


class Constraints(BaseModel):
    """Hard limits: a candidate that breaks one is rejected, with the reason recorded."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max_cost_per_1k_tokens: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="USD per 1,000 tokens, blended over this request's input and expected output"
    )
    max_cost_per_request: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="USD for this request (estimated input + expected output)"
    )
    max_latency_ms: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="estimated time to the last token: first-token latency + output / speed"
    )
    min_context_window: Annotated[int, Field(gt=0)] | None = None
    budget_usd: Annotated[float, Field(ge=0)] | None = Field(
        default=None,
        description="USD this request may spend at most (a key's remaining budget): a candidate whose worst-case "
        "cost (counted prompt + the request's max_tokens, else the model's max output, at its prices) is above "
        "it is rejected",
    )
    max_output_tokens: Annotated[int, Field(gt=0)] | None = Field(
        default=None, description="the output the caller will ask for; checked against each model's limits"
    )
    min_quality: Annotated[float, Field(ge=0, le=1)] | None = Field(
        default=None, description="minimum quality prior for the request's task"
    )
    required_capabilities: frozenset[Capability] = Field(default_factory=frozenset)
    allowed_providers: frozenset[str] | None = None
    blocked_providers: frozenset[str] = Field(default_factory=frozenset)
    allowed_models: frozenset[str] | None = None
    blocked_models: frozenset[str] = Field(default_factory=frozenset)

    def merged(self, override: Constraints | None) -> Constraints:
        """These limits with every field that ``override`` sets explicitly on top."""
        if override is None:
            return self
        values = self.model_dump()
        values.update({k: getattr(override, k) for k in override.model_fields_set})
        return Constraints.model_construct(**values)


class CacheOptions(BaseModel):
    """Per-request control of the response cache (``router.cache`` at the gateway, ``cache=`` in the library).

    Without the policy's ``cache:`` section nothing is cached and these options change nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    no_cache: bool = Field(default=False, description="do not answer from the cache (the answer is still stored)")
    no_store: bool = Field(default=False, description="do not store this answer")
    ttl_s: Annotated[float, Field(gt=0)] | None = Field(default=None, description="keep this answer this long")
    semantic: bool | None = Field(
        default=None, description="look this request up semantically (the policy's cache.semantic must be set)"
    )
    partition: str | None = Field(
        default=None, description="entries are shared only within one partition (the gateway sets the key's id)"
    )


class RouteRequest(BaseModel):
    """What the router decides on. Build it from a prompt string or a list of messages."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    messages: tuple[Message, ...] = Field(min_length=1)
    preferences: Preferences | None = None
    constraints: Constraints | None = None
    max_tokens: Annotated[int, Field(gt=0)] | None = None
    default_max_tokens: Annotated[int, Field(gt=0)] | None = Field(
        default=None,
        description="output cap when max_tokens is not given: each call asks its model for this many tokens at "
        "most (within the model's max output), so a budget holds this, not the model's whole max output",
    )
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    stop: tuple[str, ...] | None = None
    response_format: dict[str, Any] | None = None
    tools: tuple[dict[str, Any], ...] | None = None
    tool_choice: str | dict[str, Any] | None = None
    stream: bool = False
    timeout_s: Annotated[float, Field(gt=0)] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    model: str | None = Field(
        default=None,
        description="a catalogue model id to try first (the rest of the ranking are its fallbacks); "
        "None lets the router pick",
    )
    cache: CacheOptions | None = Field(default=None, description="per-request cache control (see CacheOptions)")

    @field_validator("messages", mode="before")
    @classmethod
    def _prompt_to_messages(cls, value: Any) -> Any:
        if isinstance(value, str):
            return (Message(role="user", content=value),)
        if type(value) is list or type(value) is tuple:  # the usual case, without the ABC checks below
            return value
        if isinstance(value, bytes | bytearray | Mapping) or not isinstance(value, Sequence):
            raise ValueError(f"expected a prompt string or a list of messages, got {type(value).__name__}")
        return value

    @field_validator("messages")
    @classmethod
    def _not_empty(cls, value: tuple[Message, ...]) -> tuple[Message, ...]:
        for m in value:
            content = m.content
            if isinstance(content, str) and content and not content.isspace():  # the usual case
                return value
            if m.tool_calls or m.has_image() or m.text().strip():
                return value
        raise ValueError("the prompt is empty: every message is empty or whitespace")

    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text()
        return self.messages[-1].text()

    def needs(self) -> frozenset[str]:
        """Capabilities this request needs by its own content (images, tools, JSON mode, streaming)."""
        need = set()
        if self.tools:
            need.add("tools")
        if self.response_format and self.response_format.get("type") in ("json_object", "json_schema"):
            need.add("json_mode")
        if self.stream:
            need.add("streaming")
        if any(m.has_image() for m in self.messages):
            need.add("vision")
        return frozenset(need)


# --------------------------------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------------------------------


class ModelPrice(_Frozen):
    input_per_mtok: Annotated[float, Field(ge=0)]
    output_per_mtok: Annotated[float, Field(ge=0)]
    source: str = Field(description="where this price comes from (genai-prices, or a cited page)")


class Capabilities(_Frozen):
    tools: bool = False
    vision: bool = False
    json_mode: bool = False
    streaming: bool = True

    def has(self, name: str) -> bool:
        return bool(getattr(self, name, False))


class ModelInfo(_Frozen):
    """One model the router may pick. ``id`` is ``<provider>/<model>``."""

    id: str
    provider: str
    model: str
    display_name: str | None = None
    price: ModelPrice
    context_window: Annotated[int, Field(gt=0)]
    max_output_tokens: Annotated[int, Field(gt=0)]
    capabilities: Capabilities = Field(default_factory=Capabilities)
    quality: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict)
    quality_source: str | None = None
    ttft_ms: Annotated[float, Field(ge=0)] = 800.0
    tokens_per_second: Annotated[float, Field(gt=0)] = 60.0
    latency_source: str | None = None
    tokenizer_exact: bool = Field(
        default=False,
        description="True when the router's token count (OpenAI's o200k_base) is this model's own, so the "
        "context-window check needs no safety margin",
    )
    released: datetime.date | None = Field(default=None, description="when the provider released the model")
    deprecated_on: datetime.date | None = Field(
        default=None, description="when the provider deprecated it (a policy naming it then validates with a warning)"
    )
    retires_on: datetime.date | None = Field(
        default=None,
        description="when the provider shuts it down (from then on the lifecycle constraint excludes it unless pinned)",
    )
    successor: str | None = Field(default=None, description="the model id the provider recommends instead")
    lifecycle_source: str | None = Field(default=None, description="where the lifecycle dates come from")

    def quality_for(self, task: str) -> float:
        """Quality prior for ``task``; the mean over known tasks where this one has no figure."""
        q = self.quality.get(task)
        if q is not None:
            return q
        if self.quality:
            return sum(self.quality.values()) / len(self.quality)
        return 0.5


class ModelRef(_Frozen):
    """Which model answered: the provider name from the policy and the provider's model id."""

    id: str
    provider: str
    model: str


# --------------------------------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------------------------------


class StageResult(_Frozen):
    """What one classifier of the cascade said."""

    classifier: str
    task: str | None
    confidence: float
    threshold: float
    accepted: bool
    time_ms: float
    error: str | None = None


class Classification(_Frozen):
    """The request's task, how sure the cascade is, and which stage decided."""

    task: str
    confidence: Annotated[float, Field(ge=0, le=1)]
    method: str = Field(description="the classifier that decided, or 'fallback' when none cleared its threshold")
    scores: dict[str, float] = Field(default_factory=dict)
    stages: tuple[StageResult, ...] = ()


class ScoredCandidate(_Frozen):
    """A model that met every constraint, with its weighted score and the per-scorer breakdown."""

    model: ModelInfo
    score: float
    breakdown: dict[str, float]
    estimated_cost: float = Field(description="USD for this request: counted input + expected output tokens")
    estimated_latency_ms: float

    @property
    def id(self) -> str:
        return self.model.id


class Rejection(_Frozen):
    """A model a constraint (or the route) ruled out, and why."""

    model_id: str
    constraint: str
    reason: str


class SkippedComponent(_Frozen):
    """A scorer or constraint that raised while deciding and was left out of that decision."""

    kind: Literal["scorer", "constraint"]
    name: str
    error: str


M = TypeVar("M", bound=BaseModel)


def construct(cls: type[M], **values: Any) -> M:
    """Build ``cls`` from trusted, complete values without validation: a leaner ``model_construct`` for the
    hot path. Every field must be given (no defaults are filled in) and ``cls`` must have no private
    attributes that are read before being set."""
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    object.__setattr__(obj, "__pydantic_fields_set__", set(values))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


class RankingSource:
    """What a decision's ranking is built from, kept until the ranking is first read (building every
    candidate's model up front would cost more than the whole decision)."""

    __slots__ = ("built", "candidates", "columns", "names", "order", "totals")

    def __init__(
        self,
        candidates: Sequence[Any],
        order: Sequence[int],
        names: Sequence[str],
        columns: Sequence[Sequence[float]],
        totals: Sequence[float],
    ) -> None:
        self.candidates, self.order, self.names, self.columns, self.totals = candidates, order, names, columns, totals
        self.built: list[ScoredCandidate] = []  # the head of the ranking built so far

    def build(self, position: int) -> ScoredCandidate:
        i = self.order[position]
        cand = self.candidates[i]
        return construct(
            ScoredCandidate,
            model=cand.model,
            score=self.totals[i],
            breakdown={name: float(col[i]) for name, col in zip(self.names, self.columns, strict=True)},
            estimated_cost=cand.estimated_cost,
            estimated_latency_ms=cand.estimated_latency_ms,
        )

    def head(self, n: int) -> list[ScoredCandidate]:
        """The ``n`` best candidates, each built once however often it is read."""
        built = self.built
        for k in range(len(built), min(n, len(self.order))):
            built.append(self.build(k))
        return built


class RoutingDecision(_Frozen):
    """Which model to use and why: the ranking with breakdowns, the rejections, the classification."""

    request_id: str
    classification: Classification
    route: str = Field(description="the policy route that supplied the candidates")
    rejected: tuple[Rejection, ...]
    weights: dict[str, float]
    input_tokens: int
    expected_output_tokens: int
    routing_time_ms: float
    skipped: tuple[SkippedComponent, ...] = Field(
        default=(), description="scorers and constraints that raised and were left out of this decision"
    )
    variant: str | None = Field(
        default=None, description="the A/B variants of this request: '<experiment>=<variant>', ';'-joined"
    )
    cache: Literal["hit", "semantic", "miss", "bypass"] | None = Field(
        default=None, description="what the response cache did (None: the policy has no cache, or not executed)"
    )
    _source: RankingSource | None = PrivateAttr(default=None)
    _ranking: tuple[ScoredCandidate, ...] | None = PrivateAttr(default=None)

    @classmethod
    def from_ranking(cls, source: RankingSource, **fields: Any) -> RoutingDecision:
        """A decision whose ranking is built from ``source`` when first read (the router's hot path; every
        field must be given)."""
        decision = construct(cls, **fields)
        object.__setattr__(decision, "__pydantic_private__", {"_source": source, "_ranking": None})
        return decision

    def note_cache(self, status: Literal["hit", "semantic", "miss", "bypass"]) -> None:
        """Record what the response cache did for this decision's request (the executor calls it once, right
        after the lookup, on the decision it made for that request alone)."""
        self.__dict__["cache"] = status

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ranking(self) -> tuple[ScoredCandidate, ...]:
        """Every candidate that met the constraints, best first, with its score and per-scorer breakdown.
        Ties go to the cheaper model, then to the smaller model id."""
        private = self.__pydantic_private__
        assert private is not None
        ranking: tuple[ScoredCandidate, ...] | None = private["_ranking"]
        if ranking is None:
            source: RankingSource | None = private["_source"]
            ranking = () if source is None else tuple(source.head(len(source.order)))
            private["_ranking"] = ranking
        return ranking

    # The accessors below read the private attributes through ``__pydantic_private__`` directly: pydantic's
    # own ``__getattr__`` for them is slow, and the gateway reads the winner several times per request.

    def _ranking_source(self) -> RankingSource | None:
        private = self.__pydantic_private__
        return private["_source"] if private is not None else None

    @property
    def selected(self) -> ModelInfo:
        """The winner."""
        source = self._ranking_source()
        if source is not None and source.order:
            return source.candidates[source.order[0]].model  # type: ignore[no-any-return]
        return self.ranking[0].model

    def best(self, n: int) -> tuple[ScoredCandidate, ...]:
        """The ``n`` best candidates (``ranking[:n]``, without building the rest of the ranking)."""
        source = self._ranking_source()
        if source is not None:
            return tuple(source.head(n)[:n])
        return self.ranking[:n]

    @property
    def top(self) -> ScoredCandidate:
        """The winner with its score and breakdown (``ranking[0]``)."""
        source = self._ranking_source()
        if source is not None:
            head = source.head(1)
            if head:
                return head[0]
        return self.ranking[0]

    @property
    def candidate_count(self) -> int:
        """How many candidates met the constraints (``len(ranking)``)."""
        source = self._ranking_source()
        if source is not None:
            return len(source.order)
        return len(self.ranking)

    @property
    def confidence(self) -> float:
        return self.classification.confidence

    def explain(self) -> str:
        """One line that says why the winner won."""
        top = self.top
        parts = ", ".join(f"{k} {v:.2f}" for k, v in top.breakdown.items())
        skipped = f"; skipped {', '.join(f'{s.kind} {s.name}' for s in self.skipped)}" if self.skipped else ""
        return (
            f"{top.model.id} for task {self.classification.task!r} "
            f"({self.classification.method}, confidence {self.classification.confidence:.2f}): "
            f"score {top.score:.3f} [{parts}]; {self.candidate_count} candidates, {len(self.rejected)} rejected"
            f"{skipped}"
        )

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form of this decision (``version`` :data:`JSON_VERSION`; documented in docs/cli.md),
        the one the CLI's ``--json`` and the gateway's ``POST /v1/route`` print."""
        return {
            "version": JSON_VERSION,
            "request_id": self.request_id,
            "selected": self.selected.id,
            "classification": self.classification.model_dump(mode="json"),
            "route": self.route,
            "weights": self.weights,
            "input_tokens": self.input_tokens,
            "expected_output_tokens": self.expected_output_tokens,
            "routing_time_ms": round(self.routing_time_ms, 4),
            "ranking": [
                {
                    "model": c.model.id,
                    "score": c.score,
                    "breakdown": c.breakdown,
                    "estimated_cost_usd": c.estimated_cost,
                    "estimated_latency_ms": round(c.estimated_latency_ms, 1),
                }
                for c in self.ranking
            ],
            "rejected": [r.model_dump(mode="json") for r in self.rejected],
            "skipped": [s.model_dump(mode="json") for s in self.skipped],
            **({"variant": self.variant} if self.variant else {}),
            **({"cache": self.cache} if self.cache else {}),
        }


# --------------------------------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------------------------------


class ToolCall(_Frozen):
    id: str
    name: str
    arguments: str


class Usage(_Frozen):
    input_tokens: Annotated[int, Field(ge=0)] = 0
    output_tokens: Annotated[int, Field(ge=0)] = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class CompletionRequest(_Frozen):
    """What the router asks a provider for: one model of that provider, fully specified."""

    model: str
    messages: tuple[Message, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] | None = None
    response_format: dict[str, Any] | None = None
    tools: tuple[dict[str, Any], ...] | None = None
    tool_choice: str | dict[str, Any] | None = None
    timeout_s: float | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class CompletionResponse(_Frozen):
    """A provider's whole answer."""

    text: str
    model: str
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None
    request_id: str | None = None
    raw: dict[str, Any] | None = Field(default=None, repr=False)


class StreamChunk(_Frozen):
    """One piece of a streamed answer. The last chunk of a stream carries ``usage`` when the API sends it."""

    text: str = ""
    finish_reason: str | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()
    usage: Usage | None = None
    request_id: str | None = None


class Attempt(_Frozen):
    """One call to one model: its outcome and timing."""

    model_id: str
    outcome: Literal["ok", "error"]
    error_kind: str | None = None
    error: str | None = None
    latency_ms: float
    retry: int = 0
    deployment: str | None = None
    """The deployment called (``provider/model``), when the model has several (``deployments:``)."""
    passed_over: tuple[str, ...] = ()
    """Why each other deployment of the model was not called."""


class RoutingResult(_Frozen):
    """The decision, the answer, what it cost and how long it took."""

    decision: RoutingDecision
    response: CompletionResponse
    selected_model: ModelRef
    usage: Usage
    estimated_cost: float
    cost: float
    latency_ms: float
    attempts: tuple[Attempt, ...]
    cache: Literal["hit", "semantic", "miss", "bypass"] | None = Field(
        default=None, description="what the response cache did (None: the policy has no cache)"
    )
    saved_cost: float = Field(default=0.0, description="USD a cache hit saved: what the cached answer cost")

    @property
    def generated_response(self) -> str:
        return self.response.text

    @property
    def routing_time_ms(self) -> float:
        return self.decision.routing_time_ms

    @property
    def confidence(self) -> float:
        return self.decision.classification.confidence

    @property
    def fallbacks(self) -> int:
        """How many models failed before the one that answered."""
        return len({a.model_id for a in self.attempts if a.model_id != self.selected_model.id})

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form of this result (``version`` :data:`JSON_VERSION`; documented in docs/cli.md)."""
        return {
            "version": JSON_VERSION,
            "model": self.selected_model.id,
            "text": self.response.text,
            "finish_reason": self.response.finish_reason,
            "usage": {"input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens},
            "estimated_cost_usd": self.estimated_cost,
            "cost_usd": self.cost,
            "latency_ms": round(self.latency_ms, 2),
            "attempts": [a.model_dump(mode="json") for a in self.attempts],
            "cache": self.cache,
            "saved_cost_usd": self.saved_cost,
            "decision": self.decision.to_json(),
        }


class StreamSettlement(_Frozen):
    """What a stream produced and cost, whether it completed, failed midway or was abandoned
    (:meth:`llm_router.RoutedStream.settlement`)."""

    model: ModelRef | None = Field(description="the model that streamed last; None when no call was made")
    usage: Usage = Field(description="the reported usage when the stream completed; else input + text so far")
    cost: float
    attempts: tuple[Attempt, ...]
    completed: bool

    @property
    def fallbacks(self) -> int:
        """How many models failed before the last one called."""
        last = self.model.id if self.model is not None else None
        return len({a.model_id for a in self.attempts if a.model_id != last})


class Feedback(BaseModel):
    """A rating or outcome for a past request, broadcast as ``on_feedback``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str
    model_id: str | None = None
    rating: Annotated[float, Field(ge=0, le=1)] | None = None
    outcome: str | None = None
    comment: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


def as_messages(prompt: str | Sequence[Message | Mapping[str, Any]]) -> tuple[Message, ...]:
    """A prompt string or message list as validated messages."""
    if isinstance(prompt, str):
        return (Message(role="user", content=prompt),)
    return tuple(m if isinstance(m, Message) else Message.model_validate(m) for m in prompt)
