"""llm-router: pick the right LLM for every prompt, run it, and say what it chose and why.

>>> from llm_router import Router
>>> decision = Router().route("Write a Python function to calculate fibonacci numbers")
>>> decision.classification.task
'code'
"""

from __future__ import annotations

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
    NoCandidatesError,
    PluginError,
    PolicyError,
    ProviderError,
    RouterError,
)
from .hookspecs import hookimpl
from .policy import Policy
from .router import RoutedStream, Router
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
    "Attempt",
    "Candidate",
    "Classification",
    "Classifier",
    "CompletionRequest",
    "CompletionResponse",
    "ComponentContext",
    "Constraint",
    "Constraints",
    "Feedback",
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
    "Usage",
    "hookimpl",
]
