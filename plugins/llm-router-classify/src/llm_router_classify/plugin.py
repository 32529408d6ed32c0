"""The ``llm_router`` entry point: classifiers ``learned``, ``fewshot``, ``llm`` and ``embeddings``; commands
``train classifier``, ``eval classify``, ``calibrate classifier`` and ``classify``; the embedding back-ends (for
the core's semantic cache)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from llm_router import Classifier, hookimpl

from .embeddings import Embedder, EmbeddingsClassifier
from .fewshot import FewShotClassifier
from .learned import LearnedClassifier
from .llm import LLMClassifier

if TYPE_CHECKING:
    from llm_router.commands import CommandGroups


@hookimpl
def register_classifiers(register: Callable[[type[Classifier]], None]) -> None:
    register(LearnedClassifier)
    register(LLMClassifier)
    register(EmbeddingsClassifier)
    register(FewShotClassifier)


@hookimpl
def register_embedders(register: Callable[[str, Callable[[int], Embedder]], None]) -> None:
    """Every back-end of this plugin's embedder registry (``e5``, and whatever else is registered there)."""
    from . import embeddings

    for name in sorted(embeddings._factories):
        register(name, lambda threads, _name=name: embeddings.get_embedder(_name, threads))


@hookimpl
def register_commands(cli: CommandGroups) -> None:
    from . import commands

    commands.register(cli)
