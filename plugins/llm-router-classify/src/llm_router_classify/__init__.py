"""llm-router classifiers: ``learned`` (an offline hashed-n-gram model, numpy only), ``fewshot`` (a team's own
labels from a few examples each, or none) and ``llm`` (asks a cheap catalogue model), plus the ``train
classifier``, ``eval classify``, ``calibrate classifier`` and ``classify`` commands.

The model (:class:`Model`, :func:`train`, :class:`ArtifactError`) is imported on first access: it needs numpy,
which registering the plugin (every ``llm-router`` command does) must not load.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .fewshot import FewShotClassifier, FewShotConfig
from .learned import BUILTIN_ARTIFACT, LearnedClassifier, LearnedConfig, load_artifact
from .llm import LLMClassifier, LLMClassifierError, LLMConfig

if TYPE_CHECKING:
    from .model import ArtifactError, Model, train

__all__ = [
    "BUILTIN_ARTIFACT",
    "ArtifactError",
    "FewShotClassifier",
    "FewShotConfig",
    "LLMClassifier",
    "LLMClassifierError",
    "LLMConfig",
    "LearnedClassifier",
    "LearnedConfig",
    "Model",
    "load_artifact",
    "train",
]

_LAZY = {"ArtifactError": ".model", "Model": ".model", "train": ".model"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
