"""llm-router learned routing: a quality scorer trained on per-prompt model scores, and its tools.

:class:`QualityModel` and :func:`train` are imported on first access: they need numpy and scipy, which
registering the plugin (every ``llm-router`` command does) must not load.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .base import ArtifactError
from .scorer import LearnedQualityConfig, LearnedQualityScorer

if TYPE_CHECKING:
    from .model import QualityModel, train

__all__ = ["ArtifactError", "LearnedQualityConfig", "LearnedQualityScorer", "QualityModel", "train"]

_LAZY = {"QualityModel": ".model", "train": ".model"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
