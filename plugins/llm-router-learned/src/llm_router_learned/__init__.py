"""llm-router learned routing: a quality scorer trained on per-prompt model scores, and its tools."""

from .model import ArtifactError, QualityModel, train
from .scorer import LearnedQualityConfig, LearnedQualityScorer

__all__ = ["ArtifactError", "LearnedQualityConfig", "LearnedQualityScorer", "QualityModel", "train"]
