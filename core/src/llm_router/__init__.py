"""llm-router: pick the right LLM for every prompt, run it, and say what it chose and why.

>>> from llm_router import Router
>>> decision = Router().route("Write a Python function to calculate fibonacci numbers")
>>> decision.classification.task
'code'

The public surface, for applications and plugins alike (docs/plugins.md, "What a plugin may import"): the
names in ``__all__`` below, and the names in the ``__all__`` of four documented sub-modules,
:mod:`llm_router.errors` (the error kinds), :mod:`llm_router.types` (the data types),
:mod:`llm_router.commands` (the command line's extension API) and :mod:`llm_router.testing` (the provider
conformance kit). Anything else is internal and may change in any release.

Each name is imported on first use (PEP 562), so ``import llm_router`` costs almost nothing and
``from llm_router import hookimpl`` does not load the router.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .catalogue import Catalogue
    from .components import (
        ApiKeyConfig,
        Candidate,
        Classifier,
        ComponentContext,
        Constraint,
        KeyedProvider,
        PostProcessor,
        Prediction,
        Provider,
        RoutingContext,
        Scorer,
    )
    from .decision import rank_order, weighted_totals
    from .errors import (
        FeedbackError,
        NoCandidatesError,
        PluginError,
        PolicyError,
        ProviderError,
        RouterError,
    )
    from .hookspecs import hookimpl
    from .policy import Policy
    from .router import RoutedStream, Router
    from .taxonomy import DEFAULT_TASKS, TaskSpec, Taxonomy
    from .types import (
        Attempt,
        Classification,
        CompletionRequest,
        CompletionResponse,
        Constraints,
        Feedback,
        Message,
        ModelInfo,
        Preferences,
        RouteRequest,
        RoutingDecision,
        RoutingResult,
        StreamChunk,
        Usage,
    )

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TASKS",
    "ApiKeyConfig",
    "Attempt",
    "Candidate",
    "Catalogue",
    "Classification",
    "Classifier",
    "CompletionRequest",
    "CompletionResponse",
    "ComponentContext",
    "Constraint",
    "Constraints",
    "Feedback",
    "FeedbackError",
    "KeyedProvider",
    "Message",
    "ModelInfo",
    "NoCandidatesError",
    "PluginError",
    "Policy",
    "PolicyError",
    "PostProcessor",
    "Prediction",
    "Preferences",
    "Provider",
    "ProviderError",
    "RouteRequest",
    "RoutedStream",
    "Router",
    "RouterError",
    "RoutingContext",
    "RoutingDecision",
    "RoutingResult",
    "Scorer",
    "StreamChunk",
    "TaskSpec",
    "Taxonomy",
    "Usage",
    "hookimpl",
    "rank_order",
    "weighted_totals",
]

_HOME: dict[str, str] = {
    "Catalogue": "catalogue",
    **dict.fromkeys(
        [
            "ApiKeyConfig",
            "Candidate",
            "Classifier",
            "ComponentContext",
            "Constraint",
            "KeyedProvider",
            "PostProcessor",
            "Prediction",
            "Provider",
            "RoutingContext",
            "Scorer",
        ],
        "components",
    ),
    **dict.fromkeys(
        ["FeedbackError", "NoCandidatesError", "PluginError", "PolicyError", "ProviderError", "RouterError"], "errors"
    ),
    "hookimpl": "hookspecs",
    **dict.fromkeys(["rank_order", "weighted_totals"], "decision"),
    "Policy": "policy",
    "RoutedStream": "router",
    "Router": "router",
    **dict.fromkeys(["DEFAULT_TASKS", "TaskSpec", "Taxonomy"], "taxonomy"),
    **dict.fromkeys(
        [
            "Attempt",
            "Classification",
            "CompletionRequest",
            "CompletionResponse",
            "Constraints",
            "Feedback",
            "Message",
            "ModelInfo",
            "Preferences",
            "RouteRequest",
            "RoutingDecision",
            "RoutingResult",
            "StreamChunk",
            "Usage",
        ],
        "types",
    ),
}
"""The module each public name lives in."""

if not TYPE_CHECKING:  # seen by type checkers, a module __getattr__ would let any misspelt name through

    def __getattr__(name: str) -> Any:
        home = _HOME.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(import_module(f".{home}", __name__), name)
        globals()[name] = value  # the next look-up is a plain module attribute
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
