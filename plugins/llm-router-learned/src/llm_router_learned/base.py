"""What the command line and the scorer need of the model without importing numpy or scipy: the training
methods' names and the error for an unusable artifact (:mod:`.model` re-exports both)."""

from __future__ import annotations

__all__ = ["METHODS", "ArtifactError"]

METHODS = ("stack", "knn_tfidf")
"""The training methods of :func:`llm_router_learned.model.train`."""


class ArtifactError(ValueError):
    """An artifact that cannot be used (missing, corrupt, unknown format or version)."""
