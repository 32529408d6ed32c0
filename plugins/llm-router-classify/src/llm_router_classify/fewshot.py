"""The ``fewshot`` classifier: a team's own labels from their names, descriptions, keywords and a few examples.

Every label of the policy's taxonomy brings *support texts*: one made of its name, description and keywords (so
a label with no example still has one: zero-shot), and each of its example prompts. A prompt is compared with
every support text by four similarities, added with weights into one kernel:

* ``embedding``: cosine of sentence embeddings (back-end ``static`` by default, see
  :mod:`llm_router_classify.embeddings`): meaning, synonyms;
* ``words``: cosine of TF-IDF vectors of words and word pairs (idf from the support texts);
* ``chars``: cosine of TF-IDF vectors of character 2–5-grams inside words (spelling variants, code, symbols);
* ``structure``: cosine of the 16 structural features of :func:`llm_router_classify.model.dense_features`
  (length, context passage, question words, code and math characters, …), centred on the support texts.

A kernel logistic regression fitted on the support texts (L2, ``C``, ``iterations`` steps of functional gradient
descent, numpy only, at start-up) turns the similarities into label probabilities. With a linear kernel on the
TF-IDF features alone it is exactly the TF-IDF + logistic-regression baseline; the embedding and structure
kernels add what five examples cannot show. The weights were chosen on the dev halves of eight public label
sets (docs/classification.md#your-own-labels). The confidence is the softmax probability, not calibrated:
``llm-router calibrate classifier`` picks the threshold.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Annotated, ClassVar

from llm_router import Classifier, ComponentContext, Prediction, TaskSpec
from llm_router.types import RouteRequest
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import numpy as np

    from .embeddings import Embedder

_WORD = re.compile(r"\b\w\w+\b")
_models: dict[str, FewShotModel] = {}
_lock = threading.Lock()


class FewShotConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: str = Field(default="static", description="embedding back-end (llm_router_classify.embeddings)")
    threads: Annotated[int, Field(ge=1)] = 1
    max_chars: Annotated[int, Field(ge=50, description="characters of the instruction that are read")] = 600
    embedding: Annotated[float, Field(ge=0, description="weight of the embedding cosine")] = 1.0
    words: Annotated[float, Field(ge=0, description="weight of the word TF-IDF cosine")] = 1.0
    chars: Annotated[float, Field(ge=0, description="weight of the character n-gram TF-IDF cosine")] = 1.0
    structure: Annotated[float, Field(ge=0, description="weight of the structural-feature cosine")] = 0.25
    C: Annotated[float, Field(gt=0, description="inverse L2 strength of the kernel logistic regression")] = 10.0
    iterations: Annotated[int, Field(ge=1, le=10_000)] = 300


def label_text(name: str, spec: TaskSpec) -> str:
    """The text that stands for a label itself: its name (underscores as spaces), description and keywords."""
    parts = [name.replace("_", " ").replace("-", " "), spec.description, *spec.keywords]
    return ". ".join(p for p in parts if p)


def instruction(prompt: str, max_chars: int) -> str:
    """The part of a prompt whose words are read: the text before its first blank line, at most ``max_chars``."""
    from .model import split_prompt

    return split_prompt(prompt)[0][:max_chars] or prompt[:max_chars]


def _unit(x: np.ndarray) -> np.ndarray:
    import numpy as np

    out: np.ndarray = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    return out


def word_terms(text: str) -> list[str]:
    """Lower-cased words of two or more characters, and each pair of neighbouring words."""
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in pairwise(words)]


def char_terms(text: str) -> list[str]:
    """Character 2–5-grams inside each space-padded word (scikit-learn's ``char_wb``)."""
    out: list[str] = []
    for word in text.lower().split():
        padded = f" {word} "
        for n in range(2, 6):
            out += [padded[i : i + n] for i in range(len(padded) - n + 1)]
            if n >= len(padded):
                break
    return out


class SparseTfidf:
    """Sublinear, l2-normalised TF-IDF (smooth idf) fitted on the support texts, with a term-major index so that
    a prompt's cosine to every support text costs one pass over the prompt's own terms."""

    def __init__(self, docs: Sequence[str], terms: Callable[[str], Iterable[str]]) -> None:
        import numpy as np

        self.terms = terms
        counts = [Counter(terms(d)) for d in docs]
        df = Counter(t for c in counts for t in c)
        self.vocab = {t: i for i, t in enumerate(sorted(df))}
        n = len(docs)
        self.idf = np.array([math.log((1 + n) / (1 + df[t])) + 1 for t in sorted(df)], dtype=np.float32)
        postings: list[list[tuple[int, float]]] = [[] for _ in self.vocab]
        for row, c in enumerate(counts):
            ids, w = self._weights(c)
            for i, x in zip(ids.tolist(), w.tolist(), strict=True):
                postings[i].append((row, x))
        self.n = n
        self.indptr = np.cumsum([0] + [len(p) for p in postings]).astype(np.int64)
        self.rows = np.array([r for p in postings for r, _ in p], dtype=np.int64)
        self.vals = np.array([x for p in postings for _, x in p], dtype=np.float32)

    def _weights(self, counts: Counter[str]) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        known = [(self.vocab[t], c) for t, c in counts.items() if t in self.vocab]
        ids = np.array([i for i, _ in known], dtype=np.int64)
        w = np.array([1 + math.log(c) for _, c in known], dtype=np.float32) * self.idf[ids]
        norm = float(np.linalg.norm(w))
        return ids, (w / norm if norm else w)

    def similarities(self, text: str) -> np.ndarray:
        """Cosine of ``text`` to every support text."""
        import numpy as np

        ids, w = self._weights(Counter(self.terms(text)))
        starts, ends = self.indptr[ids], self.indptr[ids + 1]
        lengths = ends - starts
        if not lengths.sum():
            return np.zeros(self.n, dtype=np.float32)
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        sims: np.ndarray = np.bincount(
            self.rows[offsets], weights=self.vals[offsets] * np.repeat(w, lengths), minlength=self.n
        ).astype(np.float32)
        return sims

    def gram(self) -> np.ndarray:
        """The support texts' cosine matrix."""
        import numpy as np

        g = np.zeros((self.n, self.n), dtype=np.float32)
        for i in range(len(self.vocab)):
            rows = self.rows[self.indptr[i] : self.indptr[i + 1]]
            vals = self.vals[self.indptr[i] : self.indptr[i + 1]]
            g[np.ix_(rows, rows)] += np.outer(vals, vals)
        return g


def fit_kernel_logreg(
    k: np.ndarray, y: np.ndarray, n_labels: int, c: float, iterations: int, balanced: bool = True
) -> np.ndarray:
    """Multinomial kernel logistic regression, ``C·Σ log-loss + ½‖f‖²``, by functional gradient descent.

    Returns the (n + 1, labels) coefficients: one row per support text, then the intercept."""
    import numpy as np

    k = k.astype(np.float32)  # float32 halves the time; the coefficients agree with float64 to 1e-6
    n = len(y)
    target = np.eye(n_labels, dtype=np.float32)[y]
    # each label weighs the same whatever its number of support texts (a zero-shot label has one)
    counts = np.bincount(y, minlength=n_labels)[y]
    weight = (n / (n_labels * counts) if balanced else np.ones(n)).astype(np.float32)[:, None]
    alpha = np.zeros((n, n_labels), dtype=np.float32)
    bias = np.zeros(n_labels, dtype=np.float32)
    v = np.ones(n, dtype=np.float32) / math.sqrt(n)
    for _ in range(30):  # power iteration: the largest eigenvalue of k sets the step
        v = k @ v
        v /= max(float(np.linalg.norm(v)), 1e-12)
    step = np.float32(4.0 / max(float(v @ k @ v), 1e-6))
    inverse_c = np.float32(1.0 / c)
    for _ in range(iterations):
        z = k @ alpha + bias
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        residual = weight * (p - target)
        alpha -= step * (residual + alpha * inverse_c)
        bias -= np.float32(2.0) * residual.mean(axis=0)
    out: np.ndarray = np.vstack([alpha, bias]).astype(np.float32)
    return out


@dataclass(frozen=True)
class Neighbour:
    """A support text close to the prompt: its label, its text, the kernel similarity divided by the sum of the
    kernel weights (so 1.0 is identical and about 0 unrelated), and whether it is an example."""

    label: str
    text: str
    similarity: float
    example: bool


class FewShotModel:
    """The label scorer behind the ``fewshot`` stage (built once per taxonomy and configuration)."""

    def __init__(self, tasks: Mapping[str, TaskSpec], embed: Embedder, config: FewShotConfig) -> None:
        import numpy as np

        if len(tasks) < 2:
            raise ValueError("the fewshot classifier needs at least two tasks in the taxonomy")
        self.cfg, self.embed, self.labels = config, embed, list(tasks)
        prompts: list[str] = []
        owner: list[int] = []
        for j, (name, spec) in enumerate(tasks.items()):
            prompts += [label_text(name, spec), *spec.examples]
            owner += [j] * (1 + len(spec.examples))
        self.prompts = prompts
        self.is_example = np.array([i > 0 and owner[i - 1] == owner[i] for i in range(len(owner))])
        self.owner = np.array(owner, dtype=np.int64)
        texts = [instruction(p, config.max_chars) for p in prompts]
        self.support = _unit(np.asarray(embed(texts), dtype=np.float32))
        self.word_index = SparseTfidf(texts, word_terms)
        self.char_index = SparseTfidf(texts, char_terms)
        dense = np.stack([self._dense(p) for p in prompts])
        self.dense_mean = dense.mean(axis=0)
        self.dense = _unit(dense - self.dense_mean)
        gram = (
            config.embedding * (self.support @ self.support.T)
            + config.words * self.word_index.gram()
            + config.chars * self.char_index.gram()
            + config.structure * (self.dense @ self.dense.T)
        )
        self.coef = fit_kernel_logreg(gram, self.owner, len(tasks), config.C, config.iterations)

    @staticmethod
    def _dense(prompt: str) -> np.ndarray:
        from .model import dense_features, split_prompt

        return dense_features(*split_prompt(prompt))

    def similarities(self, prompt: str) -> np.ndarray:
        """The weighted kernel similarity of ``prompt`` to every support text."""
        import numpy as np

        cfg = self.cfg
        text = instruction(prompt, cfg.max_chars)
        q = _unit(np.asarray(self.embed([text]), dtype=np.float32))[0]
        d = _unit(self._dense(prompt) - self.dense_mean)
        sims: np.ndarray = (
            cfg.embedding * (self.support @ q)
            + cfg.words * self.word_index.similarities(text)
            + cfg.chars * self.char_index.similarities(text)
            + cfg.structure * (self.dense @ d)
        )
        return sims

    def predict(self, prompt: str, neighbours: int = 0) -> tuple[dict[str, float], list[Neighbour]]:
        """Each label's probability, and the ``neighbours`` support texts most similar to the prompt."""
        import numpy as np

        sims = self.similarities(prompt)
        z = sims @ self.coef[:-1] + self.coef[-1]
        p = np.exp(z - z.max())
        p /= p.sum()
        scale = self.cfg.embedding + self.cfg.words + self.cfg.chars + self.cfg.structure
        near = [
            Neighbour(
                self.labels[int(self.owner[i])], self.prompts[i], float(sims[i]) / scale, bool(self.is_example[i])
            )
            for i in np.argsort(-sims, kind="stable")[:neighbours]
        ]
        return {label: float(x) for label, x in zip(self.labels, p, strict=True)}, near


def build_model(tasks: Mapping[str, TaskSpec], config: FewShotConfig) -> FewShotModel:
    """The model for this taxonomy and configuration, built once per process and shared by every Router."""
    from .embeddings import get_embedder

    payload = {name: spec.model_dump(mode="json") for name, spec in tasks.items()}
    key = hashlib.sha256(json.dumps([config.model_dump(), payload], sort_keys=True).encode()).hexdigest()
    with _lock:
        model = _models.get(key)
    if model is None:
        model = FewShotModel(tasks, get_embedder(config.backend, config.threads), config)
        with _lock:
            _models[key] = model
    return model


class FewShotClassifier(Classifier):
    """A team's own labels from their names, descriptions, keywords and a few examples (or none)."""

    name: ClassVar[str] = "fewshot"
    Config: ClassVar[type[BaseModel]] = FewShotConfig
    learns_taxonomy: ClassVar[bool] = True  # the default stage of a policy with its own labels

    def __init__(self, config: BaseModel, context: ComponentContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, FewShotConfig)
        self.model = build_model(dict(context.taxonomy.tasks), config)

    def explain(self, request: RouteRequest, neighbours: int = 3) -> tuple[dict[str, float], list[Neighbour]] | None:
        """Label probabilities and the nearest support texts of the latest user turn (``None`` without one)."""
        turns = [m.text() for m in request.messages if m.role == "user" and m.text().strip()]
        return self.model.predict(turns[-1], neighbours) if turns else None

    def classify(self, request: RouteRequest) -> Prediction | None:
        explained = self.explain(request, 0)
        if explained is None:
            return None
        scores = explained[0]
        best = max(scores, key=scores.__getitem__)
        return Prediction(task=best, confidence=scores[best], scores=scores)
