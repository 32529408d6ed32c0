"""The five kinds of component a plugin can contribute, and what the router hands them.

Each kind is a small base class: subclass it, set ``name``, declare the parameters the policy may pass in
a nested pydantic ``Config`` model, and implement one or two methods. The router creates one instance per
use in the policy with ``Cls(config, context)``.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from .types import (
    Classification,
    CompletionRequest,
    CompletionResponse,
    Constraints,
    Message,
    ModelInfo,
    RouteRequest,
    StreamChunk,
)

if TYPE_CHECKING:
    from .state import StateStore
    from .taxonomy import Taxonomy

__all__ = [
    "ApiKeyConfig",
    "Candidate",
    "Classifier",
    "Component",
    "ComponentContext",
    "Constraint",
    "EmptyConfig",
    "KeyedProvider",
    "PostProcessor",
    "Prediction",
    "Provider",
    "RoutingContext",
    "Scorer",
]


_C = TypeVar("_C")


class EmptyConfig(BaseModel):
    """Parameters of a component that takes none."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class ComponentContext:
    """What a component may use besides its own parameters.

    :ivar name: the name this instance has in the policy (for providers: the key under ``providers:``).
    :ivar policy_dir: the folder of the policy file, for resolving relative paths (artifacts, data).
    :ivar taxonomy: the policy's task taxonomy.
    :ivar state: the router's state store (counters, latency averages, circuit breakers).
    :ivar complete: call a catalogue model through the normal provider layer (for LLM classifiers):
        ``await context.complete("openai/gpt-4o-mini", request)``.
    """

    name: str
    policy_dir: Path
    taxonomy: Taxonomy
    state: StateStore
    complete: Callable[[str, CompletionRequest], Awaitable[CompletionResponse]] | None = None


class Component:
    """Base of every component kind."""

    name: ClassVar[str] = ""
    """The name the policy uses for this component type."""

    Config: ClassVar[type[BaseModel]] = EmptyConfig
    """The pydantic model that validates the component's parameters in the policy."""

    def __init__(self, config: BaseModel, context: ComponentContext) -> None:
        self.config = config
        self.context = context

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.context.name!r}>"


# --------------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prediction:
    """One classifier's answer: its best label, how sure it is (calibrated, in [0, 1]), and per-label scores."""

    task: str
    confidence: float
    scores: Mapping[str, float] = field(default_factory=dict)


class Classifier(Component):
    """A stage of the classification cascade.

    Implement :meth:`classify` (pure CPU work, called inline on the hot path) or, for a stage that does I/O
    (an embedding API, an LLM), set ``is_async = True`` and implement :meth:`aclassify`. Return ``None`` when
    the stage has no opinion (the cascade moves on).
    """

    is_async: ClassVar[bool] = False
    learns_taxonomy: ClassVar[bool] = False
    """True for a stage that learns a policy's own labels from their names, descriptions, keywords and
    examples (no training step): a policy with a taxonomy of its own and no ``classify:`` list gets ``rules``
    then this stage by default."""

    def classify(self, request: RouteRequest) -> Prediction | None:
        raise NotImplementedError(f"{type(self).__name__} implements aclassify() only; use the async router")

    async def aclassify(self, request: RouteRequest) -> Prediction | None:
        return self.classify(request)


# --------------------------------------------------------------------------------------------------
# Constraints and scorers
# --------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Candidate:
    """A model under consideration for one request, with the request-specific estimates."""

    model: ModelInfo
    estimated_cost: float
    """USD: counted input tokens and the expected output at the model's price."""
    estimated_latency_ms: float
    """Time to the last token: first-token latency plus expected output at the model's speed."""


@dataclass(slots=True)
class RoutingContext:
    """Everything known about the request while candidates are filtered and scored."""

    request: RouteRequest
    classification: Classification
    constraints: Constraints
    input_tokens: int
    expected_output_tokens: int
    required_capabilities: frozenset[str]
    executing: bool
    """True when the decision will be executed now (readiness of providers matters)."""
    state: StateStore
    provider_status: Callable[[str], str | None]
    """``provider_status(name)`` is ``None`` when provider ``name`` can be called, else why not."""

    @property
    def task(self) -> str:
        return self.classification.task


class Constraint(Component):
    """Keeps or rejects each candidate.

    :meth:`check` receives all candidates still in the running and returns, position by position, ``None``
    to keep a candidate or a short reason (``"context window 8192 < 9000 needed"``) to reject it.
    """

    def check(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[str | None]:
        raise NotImplementedError


class Scorer(Component):
    """Rates each candidate in [0, 1] (1 is best). :meth:`score` returns one number per candidate."""

    def score(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[float]:
        raise NotImplementedError


# --------------------------------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------------------------------


class Provider(Component):
    """Talks to one LLM API. One instance per ``providers:`` entry of the policy.

    Failures must be raised as :class:`llm_router.errors.ProviderError` subclasses (never the SDK's own),
    with ``provider``, ``model`` and the upstream request id set, and without any secret in the message.
    Retries are the router's job: switch the SDK's own retries off.
    """

    def models(self) -> Sequence[ModelInfo]:
        """Models this provider adds to the catalogue (beyond the built-in ones). Default: none."""
        return ()

    def unavailable_reason(self) -> str | None:
        """``None`` when calls can be made; else why not, e.g. ``"set OPENAI_API_KEY"``."""
        return None

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        raise NotImplementedError

    def stream(self, request: CompletionRequest) -> AsyncIterator[StreamChunk]:
        """Stream the answer. The last chunk should carry ``usage`` where the API reports it."""
        raise NotImplementedError

    def count_tokens(self, messages: Sequence[Message], model: str) -> int | None:
        """An offline token count for ``model``, or ``None`` to let the router estimate."""
        return None

    def warm_up(self) -> None:
        """Import now what calls need (the vendor SDK, its HTTP library), so that the first call does not pay
        for it inside its timeout. Default: nothing.

        A provider imports its SDK on first use, never at import or construction: every ``llm-router``
        command and every router creates the providers its policy declares, and routing a prompt calls none of
        them. A face about to call models (a gateway before it serves) calls this first. Must not do I/O."""

    async def aclose(self) -> None:
        """Release connections. Called when the router closes."""


class ApiKeyConfig(BaseModel):
    """The key fields every hosted-API provider takes; subclass it for a provider's ``Config``."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr | None = Field(
        default=None, description="the API key (write ${VAR} to read it from the environment)"
    )
    api_key_env: str | None = Field(
        default=None, description="environment variable that holds the key (default: the SDK's usual one)"
    )


class KeyedProvider(Provider):
    """A provider that needs an API key: the policy's ``api_key``, else the environment variable
    ``api_key_env``, else the SDK's usual variable ``default_key_env``. When none is set the provider is
    unavailable, and the reason names the variable to set (never the key)."""

    default_key_env: ClassVar[str | None] = None
    """The variable the vendor's SDK reads by default, e.g. ``OPENAI_API_KEY``."""

    default_key_envs: ClassVar[tuple[str, ...]] = ()
    """When the SDK reads more than one variable: all of them, in its order of precedence (the first one set
    wins), e.g. ``("GOOGLE_API_KEY", "GEMINI_API_KEY")``; ``default_key_env`` is the one hints name first."""

    @property
    def key_env(self) -> str | None:
        return getattr(self.config, "api_key_env", None) or self.default_key_env

    def api_key(self) -> str | None:
        """The key to use, or ``None`` when there is none."""
        key: SecretStr | None = getattr(self.config, "api_key", None)
        if key is not None:
            return key.get_secret_value() or None
        envs = self._key_envs()
        return next((os.environ[env] for env in envs if os.environ.get(env)), None)

    def _key_envs(self) -> tuple[str, ...]:
        """The variables to read, in order: ``api_key_env`` alone when set, else the SDK's."""
        chosen: str | None = getattr(self.config, "api_key_env", None)
        if chosen:
            return (chosen,)
        if self.default_key_envs:
            return self.default_key_envs
        return (self.default_key_env,) if self.default_key_env else ()

    def key_hint(self) -> str:
        """What to do about a missing or rejected key."""
        envs = sorted(self._key_envs(), key=lambda env: env != self.key_env)  # the usual one first
        named = " or ".join(envs) or "an API key variable (api_key_env)"
        return f"set {named} (or providers.{self.context.name}.api_key in the policy)"

    def unavailable_reason(self) -> str | None:
        return self.key_hint() if self.api_key() is None else None

    _retired_clients: tuple[Any, ...] = ()

    def keyed_client(self, make: Callable[[str | None], _C], slot: str = "default") -> _C:
        """The SDK client for the current key: ``make(key)`` on first use, and again when the key changes
        (a rotated environment variable takes effect without a restart). A replaced client may still be
        serving calls in flight, so it is closed with the provider (:meth:`aclose`), not at once.

        ``slot`` names the client when a provider keeps more than one per key (e.g. an HTTP session of its
        own beside the SDK client)."""
        key = self.api_key()
        clients: dict[str, tuple[str | None, Any]] = self.__dict__.setdefault("_keyed_clients", {})
        current = clients.get(slot)
        if current is None or current[0] != key:
            if current is not None:
                self._retired_clients = (*self._retired_clients, current[1])
            current = clients[slot] = (key, make(key))
        return cast(_C, current[1])

    async def aclose(self) -> None:
        """Close the SDK clients made so far (each one's ``close()``, awaited when it is a coroutine)."""
        clients: dict[str, tuple[str | None, Any]] = self.__dict__.pop("_keyed_clients", {})
        retired, self._retired_clients = self._retired_clients, ()
        for client in (*retired, *(client for _, client in clients.values())):
            close = getattr(client, "close", None)
            if close is not None:
                result = close()
                if inspect.isawaitable(result):
                    await result


class PostProcessor(Component):
    """Checks or transforms a response before it is returned.

    Return the (possibly new) response; raise :class:`~llm_router.errors.PostprocessError` to reject it,
    which makes the router try the next candidate.
    """

    async def process(
        self, response: CompletionResponse, request: RouteRequest, model: ModelInfo
    ) -> CompletionResponse:
        raise NotImplementedError


COMPONENT_KINDS: dict[str, type[Component]] = {
    "provider": Provider,
    "classifier": Classifier,
    "scorer": Scorer,
    "constraint": Constraint,
    "postprocessor": PostProcessor,
}


def config_of(cls: type[Component], params: Mapping[str, Any] | None) -> BaseModel:
    """Validate ``params`` against the component's ``Config`` model."""
    return cls.Config.model_validate(dict(params or {}))
