"""llm-router classifiers: ``learned`` (an offline hashed-n-gram model, numpy only) and ``llm`` (asks a cheap
catalogue model), plus the ``train classifier``, ``eval classify`` and ``calibrate classifier`` commands."""

from __future__ import annotations

from .learned import BUILTIN_ARTIFACT, LearnedClassifier, LearnedConfig, load_artifact
from .llm import LLMClassifier, LLMClassifierError, LLMConfig
from .model import ArtifactError, Model, train

__all__ = [
    "BUILTIN_ARTIFACT",
    "ArtifactError",
    "LLMClassifier",
    "LLMClassifierError",
    "LLMConfig",
    "LearnedClassifier",
    "LearnedConfig",
    "Model",
    "load_artifact",
    "train",
]
