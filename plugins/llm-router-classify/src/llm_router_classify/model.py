"""The learned prompt-task model: hashed TF-IDF n-grams + 16 structural features + a linear head.

Ported from the research library (see docs/classification.md and docs/research/classification-results.md).
Inference needs numpy only; training additionally needs scikit-learn and scipy (the ``[train]`` extra).
The artifact is pickle-free: ``<path>.json`` (header: format version,
labels, hyper-parameters, feature layout, temperature) + ``<path>.npz`` (idf, weights, bias).

Input handling (one prompt at a time, deliberate truncation):
  * a prompt is split at the first blank line into instruction / context (Dolly's format;
    also a common "question, then pasted text" pattern in real traffic);
  * instruction: first ``max_instr_chars`` characters (default 600) are featurised;
  * context: only its head (``ctx_head_chars``, default 300) and tail (``ctx_tail_chars``,
    default 100) are featurised as text, but its *full* length feeds the length features;
  * multi-turn: ``classify_conversation`` featurises the latest user turn with weight 1 and
    earlier user turns with a decaying weight (default 0.3, 0.09, ...), summing the sparse
    vectors before normalisation, so the latest turn dominates.
"""

from __future__ import annotations

import json
import math
import re
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
FORMAT_NAME = "llm-router-prompt-classifier"

_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]", re.IGNORECASE)
_BULLET_RE = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+", re.MULTILINE)
_BLANK_RE = re.compile(r"\n[ \t\r]*\n")
_CODE_RE = re.compile(r"[{}();=<>\[\]_#`\\]")
_MATH_RE = re.compile(r"[0-9+\-*/^=%$]")

QUESTION_WORDS = (
    "what",
    "who",
    "whom",
    "whose",
    "when",
    "where",
    "why",
    "how",
    "which",
    "is",
    "are",
    "do",
    "does",
    "did",
    "can",
    "could",
    "should",
    "would",
    "will",
    "was",
    "were",
    "has",
    "have",
)
LIST_WORDS = ("list", "bullet", "bullets", "comma", "separated", "enumerate", "ideas", "ways")

DEFAULT_HYPER: dict[str, Any] = {
    "n_bits": 18,  # hashed feature space 2**n_bits
    "word_ngrams": 2,
    "char_min": 2,
    "char_max": 5,
    "first_words": 3,
    "max_instr_chars": 600,
    "ctx_head_chars": 300,
    "ctx_tail_chars": 100,
    "ctx_text_weight": 0.35,  # weight of the context block relative to the instruction blocks
    "dense_weight": 1.0,
    "C": 10.0,
    "max_iter": 300,
    "history_decay": 0.3,
}

N_DENSE = 16
_REQUIRED_HYPER = frozenset(
    (
        "n_bits",
        "word_ngrams",
        "char_min",
        "char_max",
        "first_words",
        "max_instr_chars",
        "ctx_head_chars",
        "ctx_tail_chars",
        "ctx_text_weight",
        "dense_weight",
    )
)

Progress = Callable[[int], None]
"""Called with the number of rows just processed (for progress bars)."""


class ArtifactError(ValueError):
    """An artifact file is missing, malformed, of another format or version, or inconsistent."""


def split_prompt(text: str, search_chars: int = 4000) -> tuple[str, str]:
    """Split a prompt into (instruction, context) at the first blank line.

    Only the first ``search_chars`` characters are searched for the separator, so the cost is
    bounded for huge prompts (the context string itself is a slice, not scanned).
    """
    m = _BLANK_RE.search(text, 0, search_chars)
    if m is None:
        return text.strip(), ""
    return text[: m.start()].strip(), text[m.end() :]


def _hash(token: str, mask: int) -> int:
    return zlib.crc32(token.encode("utf-8")) & mask


def dense_features(instruction: str, context: str) -> np.ndarray:
    """Structural features Dolly's format makes informative (all roughly in [0, 1]).

    Cost is bounded: only ``len(context)`` and the context's first 2,000 characters are used.
    """
    instruction = instruction[:2000]
    n_ctx = len(context.strip()) if len(context) < 4000 else len(context)
    context = context[:2000]
    low = instruction.lower()
    words = _WORD_RE.findall(low)
    first = words[0] if words else ""
    n_ins = len(instruction)
    f = np.zeros(N_DENSE, dtype=np.float32)
    f[0] = 1.0 if n_ctx > 0 else 0.0
    f[1] = math.log1p(n_ctx) / 9.0
    f[2] = math.log1p(n_ins) / 7.0
    f[3] = 1.0 if instruction.rstrip().endswith("?") else 0.0
    f[4] = 1.0 if first in QUESTION_WORDS else 0.0
    f[5] = 1.0 if any(w in LIST_WORDS for w in words) else 0.0
    f[6] = min(len(_BULLET_RE.findall(context)), 10) / 10.0
    f[7] = min(instruction.count("\n"), 10) / 10.0
    f[8] = min(len(_CODE_RE.findall(instruction)) / max(n_ins, 1) * 10.0, 1.0)
    f[9] = min(len(_MATH_RE.findall(instruction)) / max(n_ins, 1) * 5.0, 1.0)
    f[10] = (
        1.0
        if (
            "passage" in low
            or "text" in low
            or "paragraph" in low
            or "article" in low
            or "reference" in low
            or "given" in low
        )
        else 0.0
    )
    f[11] = 1.0 if ("summar" in low or "tl;dr" in low or "key points" in low) else 0.0
    f[12] = 1.0 if ("extract" in low or "list" in low) else 0.0
    f[13] = (
        1.0
        if ("classify" in low or "categor" in low or "which of" in low or " or " in low or "identify which" in low)
        else 0.0
    )
    f[14] = 1.0 if ("write" in low or "story" in low or "poem" in low or "imagine" in low) else 0.0
    f[15] = min(len(words), 60) / 60.0
    return f


@dataclass
class Featurizer:
    """Hashed sparse features with namespaces; deterministic (crc32), no vocabulary needed."""

    hyper: dict[str, Any]
    idf: np.ndarray | None = None

    @property
    def n_hash(self) -> int:
        return 1 << int(self.hyper["n_bits"])

    @property
    def n_features(self) -> int:
        return self.n_hash + N_DENSE

    def _block(self, text: str, prefix: str, counts: dict[int, float], weight: float, chars: bool) -> None:
        mask = self.n_hash - 1
        low = text.lower()
        words = _WORD_RE.findall(low)
        local: dict[int, float] = {}
        nw = int(self.hyper["word_ngrams"])
        for n in range(1, nw + 1):
            for i in range(len(words) - n + 1):
                h = _hash(prefix + "w" + " ".join(words[i : i + n]), mask)
                local[h] = local.get(h, 0.0) + 1.0
        if chars:
            cmin, cmax = int(self.hyper["char_min"]), int(self.hyper["char_max"])
            for w in words:
                pw = " " + w + " "
                lw = len(pw)
                for n in range(cmin, cmax + 1):
                    for i in range(0, lw - n + 1):
                        h = _hash(prefix + "c" + pw[i : i + n], mask)
                        local[h] = local.get(h, 0.0) + 1.0
        # sublinear tf, then l2-normalise the block (after idf) later: store raw here
        for h, c in local.items():
            counts[h] = counts.get(h, 0.0) + weight * (1.0 + math.log(c))

    def raw_sparse(self, text: str) -> tuple[dict[int, float], np.ndarray]:
        """Sparse hashed counts (block-weighted) and dense features for one prompt."""
        instr, ctx = split_prompt(text)
        ctx = ctx.strip() if len(ctx) < 4000 else ctx
        hy = self.hyper
        instr_t = instr[: int(hy["max_instr_chars"])]
        ctx_t = ctx[: int(hy["ctx_head_chars"])]
        if len(ctx) > int(hy["ctx_head_chars"]):
            ctx_t += " " + ctx[-int(hy["ctx_tail_chars"]) :]
        counts: dict[int, float] = {}
        self._block(instr_t, "I", counts, 1.0, chars=True)
        words = _WORD_RE.findall(instr_t.lower())
        mask = self.n_hash - 1
        for k in range(1, int(hy["first_words"]) + 1):
            if len(words) >= k:
                h = _hash("F" + " ".join(words[:k]), mask)
                counts[h] = counts.get(h, 0.0) + 1.0
        if ctx_t:
            self._block(ctx_t, "C", counts, float(hy["ctx_text_weight"]), chars=False)
        dense = dense_features(instr, ctx) * float(hy["dense_weight"])
        return counts, dense

    def finish(self, counts: Mapping[int, float], dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply idf + l2 norm; returns (indices, values) over n_features (dense appended)."""
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        val = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        if self.idf is not None and len(idx):
            val = val * self.idf[idx]
        nrm = float(np.sqrt(np.dot(val, val)))
        if nrm > 0:
            val = val / nrm
        didx = np.arange(self.n_hash, self.n_hash + N_DENSE, dtype=np.int64)
        return np.concatenate([idx, didx]), np.concatenate([val, dense.astype(np.float32)])

    def transform_one(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        counts, dense = self.raw_sparse(text)
        return self.finish(counts, dense)

    def transform(self, texts: Sequence[str], progress: Progress | None = None) -> Any:
        """Batch transform to a scipy CSR matrix (scipy needed only here / for training)."""
        import scipy.sparse as sp

        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        for i, t in enumerate(texts):
            idx, val = self.transform_one(t)
            rows.append(np.full(len(idx), i, dtype=np.int64))
            cols.append(idx)
            vals.append(val)
            if progress is not None:
                progress(1)
        return sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(len(texts), self.n_features),
            dtype=np.float32,
        )

    def fit_idf(self, texts: Sequence[str], progress: Progress | None = None) -> None:
        df = np.zeros(self.n_hash, dtype=np.float64)
        for t in texts:
            counts, _ = self.raw_sparse(t)
            df[np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))] += 1.0
            if progress is not None:
                progress(1)
        n = len(texts)
        self.idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)


@dataclass
class Model:
    labels: list[str]
    hyper: dict[str, Any]
    featurizer: Featurizer
    coef: np.ndarray  # (n_features, n_labels) float32
    bias: np.ndarray  # (n_labels,)
    temperature: float = 1.0
    meta: dict[str, Any] = field(default_factory=dict)

    # ---- inference -------------------------------------------------------------------
    def logits_one(self, text: str) -> np.ndarray:
        idx, val = self.featurizer.transform_one(text)
        z: np.ndarray = val @ self.coef[idx].astype(np.float32) + self.bias
        return z

    def _softmax(self, z: np.ndarray) -> np.ndarray:
        z = z / self.temperature
        z = z - z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        p: np.ndarray = e / e.sum(axis=-1, keepdims=True)
        return p

    def predict_proba(self, texts: Sequence[str] | str) -> tuple[list[str], np.ndarray]:
        """Return (labels, probabilities of shape (n_texts, n_labels))."""
        if isinstance(texts, str):
            texts = [texts]
        z = np.stack([self.logits_one(t) for t in texts]) if texts else np.zeros((0, len(self.labels)))
        return list(self.labels), self._softmax(z)

    def predict(self, texts: Sequence[str]) -> list[str]:
        _, p = self.predict_proba(texts)
        return [self.labels[i] for i in p.argmax(axis=1)]

    def classify_conversation(self, user_turns: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """Classify a conversation: latest user turn weight 1, earlier ones decay geometrically."""
        decay = float(self.hyper.get("history_decay", 0.3))
        total: dict[int, float] = {}
        dense_total = np.zeros(N_DENSE, dtype=np.float32)
        w = 1.0
        for turn in reversed(list(user_turns)):
            counts, dense = self.featurizer.raw_sparse(turn)
            for k, v in counts.items():
                total[k] = total.get(k, 0.0) + w * v
            if w == 1.0:
                dense_total = dense  # structure features come from the latest turn only
            w *= decay
            if w < 1e-3:
                break
        idx, val = self.featurizer.finish(total, dense_total)
        z = val @ self.coef[idx] + self.bias
        return list(self.labels), self._softmax(z[None, :])

    # ---- persistence (no pickle) ------------------------------------------------------
    def save(self, path: str | Path) -> None:
        p = Path(path)
        header = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "labels": self.labels,
            "hyper": self.hyper,
            "n_features": self.featurizer.n_features,
            "n_dense": N_DENSE,
            "hash": "crc32 of utf-8 'namespace+token' masked to n_bits",
            "temperature": self.temperature,
            "meta": self.meta,
        }
        # store only rows of coef that are non-zero in some class to keep the file small
        nz = np.flatnonzero(np.abs(self.coef).max(axis=1) > 0)
        assert self.featurizer.idf is not None
        np.savez_compressed(
            p.with_suffix(".npz"),
            idf=self.featurizer.idf.astype(np.float16),
            coef_rows=nz.astype(np.int32),
            coef=self.coef[nz].astype(np.float16),
            bias=self.bias.astype(np.float32),
        )
        p.with_suffix(".json").write_text(json.dumps(header, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Model:
        """Load ``<path>.json`` + ``<path>.npz``; refuse anything that is not a valid artifact of this format.

        Never unpickles (``allow_pickle=False``). Raises :class:`ArtifactError` with the reason.
        """
        p = Path(path)
        json_path, npz_path = p.with_suffix(".json"), p.with_suffix(".npz")
        try:
            header = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{json_path}: cannot read the header: {exc}") from exc
        if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
            raise ArtifactError(f"{json_path}: not an {FORMAT_NAME} artifact")
        version = header.get("format_version")
        if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
            raise ArtifactError(
                f"{json_path}: unsupported format_version {version!r} (this code reads 1..{FORMAT_VERSION})"
            )
        labels = header.get("labels")
        hyper = header.get("hyper")
        if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) for x in labels):
            raise ArtifactError(f"{json_path}: 'labels' must be a list of at least two strings")
        if not isinstance(hyper, dict) or any(k not in hyper for k in _REQUIRED_HYPER):
            raise ArtifactError(f"{json_path}: 'hyper' lacks one of {sorted(_REQUIRED_HYPER)}")
        n_features = (1 << int(hyper["n_bits"])) + N_DENSE
        if header.get("n_features") != n_features or header.get("n_dense") != N_DENSE:
            raise ArtifactError(f"{json_path}: feature layout does not match n_bits={hyper['n_bits']}")
        try:
            with np.load(npz_path, allow_pickle=False) as z:
                idf = z["idf"].astype(np.float32)
                rows = z["coef_rows"].astype(np.int64)
                coef_nz = z["coef"].astype(np.float32)
                bias = z["bias"].astype(np.float32)
        except (OSError, ValueError, KeyError) as exc:
            raise ArtifactError(f"{npz_path}: cannot read the arrays: {exc}") from exc
        n_labels = len(labels)
        if (
            idf.shape != (n_features - N_DENSE,)
            or bias.shape != (n_labels,)
            or coef_nz.shape != (len(rows), n_labels)
            or (len(rows) and (rows.min() < 0 or rows.max() >= n_features))
            or not (np.isfinite(idf).all() and np.isfinite(coef_nz).all() and np.isfinite(bias).all())
        ):
            raise ArtifactError(f"{npz_path}: array shapes or values do not match the header")
        coef = np.zeros((n_features, n_labels), dtype=np.float32)
        coef[rows] = coef_nz
        temperature = float(header.get("temperature", 1.0))
        if not temperature > 0:
            raise ArtifactError(f"{json_path}: temperature must be > 0")
        feat = Featurizer(hyper=dict(hyper), idf=idf)
        return cls(
            labels=list(labels),
            hyper=dict(hyper),
            featurizer=feat,
            coef=coef,
            bias=bias,
            temperature=temperature,
            meta=dict(header.get("meta", {})),
        )


def train(texts: Sequence[str], labels: Sequence[str], progress: Progress | None = None, **hyper: Any) -> Model:
    """Fit hashed TF-IDF (+ structural features) and a multinomial logistic regression.

    ``progress`` is called once per row in each of the two passes over the data (idf, then features).
    Needs scikit-learn and scipy: ``pip install 'llm-router-classify[train]'``.
    """
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("training needs scikit-learn: pip install 'llm-router-classify[train]'") from exc
    if len(set(labels)) < 2:
        raise ValueError("training needs at least two labels")

    hy = dict(DEFAULT_HYPER)
    hy.update(hyper)
    feat = Featurizer(hyper=hy)
    feat.fit_idf(texts, progress)
    x = feat.transform(texts, progress)
    labs = sorted(set(labels))
    y = np.array([labs.index(lab) for lab in labels])
    clf = LogisticRegression(C=float(hy["C"]), max_iter=int(hy["max_iter"]), class_weight=hy.get("class_weight"))
    clf.fit(x, y)
    coef = clf.coef_.T.astype(np.float32)
    bias = clf.intercept_.astype(np.float32)
    if coef.shape[1] == 1:  # binary case -> two columns
        coef = np.concatenate([-coef / 2, coef / 2], axis=1)
        bias = np.array([-bias[0] / 2, bias[0] / 2], dtype=np.float32)
    return Model(
        labels=labs,
        hyper=hy,
        featurizer=feat,
        coef=coef,
        bias=bias,
        meta={"trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "n_train": len(texts)},
    )


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising NLL on held-out logits (grid + golden refinement)."""

    def nll(t: float) -> float:
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-lp[np.arange(len(y)), y].mean())

    grid = np.exp(np.linspace(np.log(0.2), np.log(10), 60))
    best = min(grid, key=nll)
    lo, hi = best / 1.2, best * 1.2
    for _ in range(30):
        a, b = lo + (hi - lo) * 0.382, lo + (hi - lo) * 0.618
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    return float((lo + hi) / 2)
