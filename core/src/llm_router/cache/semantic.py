"""The semantic cache's index: unit embeddings of earlier prompts, searched by context.

Entries live in fixed arrays of ``max_entries`` rows used as a ring (the oldest entry is overwritten first).
A lookup keeps the rows of the same context that have not expired; with many of them it first ranks them by a
random projection of the embeddings to :data:`PROJECTED` dimensions (one small matrix-vector product over every
row) and computes the exact cosine similarity of the best :data:`RERANK` only, so a lookup among 100,000 entries
stays within a few milliseconds (``benchmarks/bench_cache.py``). Vectors are kept as float16 (768 bytes a row at
384 dimensions, plus 128 for the projection). numpy is imported when the index is created.

Embedders come from plugins (the ``register_embedders`` hook): the core knows none by name.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["EmbedderFactory", "SemanticIndex", "resolve_embedder"]

Embed = Callable[[Sequence[str]], Any]
"""texts → an (n, d) array of embeddings."""
EmbedderFactory = Callable[[int], Embed]
"""``factory(threads)`` → the embedding function (called once)."""

RERANK = 64
"""Rows whose exact similarity is computed after the projected pre-selection."""
PROJECTED = 32
"""Dimensions of the random projection that pre-selects rows (Johnson-Lindenstrauss: dot products are kept
closely enough to rank near neighbours first)."""
EXACT_BELOW = 512
"""With fewer candidate rows than this the similarity of every one is computed exactly."""


def resolve_embedder(name: str, embedders: dict[str, tuple[str, EmbedderFactory]], threads: int) -> Embed:
    """The embedding function registered as ``name``; a clear error naming what to install when none is."""
    found = embedders.get(name)
    if found is None:
        known = ", ".join(f"{n} (plugin {p})" for n, (p, _) in sorted(embedders.items())) or "none"
        raise ValueError(
            f"cache.semantic.embedder: no plugin provides the embedder {name!r} (registered: {known}); "
            "install the classify plugin with an embedding back-end: pip install 'llm-router-classify[e5]'"
        )
    return found[1](threads)


class SemanticIndex:
    """Embeddings with their context, expiry and payload; thread-safe (lookups run in a worker thread)."""

    def __init__(self, max_entries: int) -> None:
        import numpy as np

        self._np = np
        self.capacity = max_entries
        self.size = 0
        self._next = 0
        self._lock = threading.Lock()
        self._ctx = np.zeros(max_entries, dtype=np.uint64)
        self._expires = np.zeros(max_entries, dtype=np.float64)
        self._payloads: list[bytes | None] = [None] * max_entries
        self._proj: np.ndarray | None = None  # (capacity, PROJECTED) float32 projected vectors
        self._vecs: np.ndarray | None = None  # (capacity, d) float16 unit vectors
        self._matrix: np.ndarray | None = None  # (d, PROJECTED) the random projection

    @staticmethod
    def context_id(context: str) -> int:
        return int(context[:16], 16)

    def unit(self, vector: Any) -> np.ndarray:
        xp = self._np
        v = xp.asarray(vector, dtype=xp.float32).reshape(-1)
        norm = float(xp.linalg.norm(v))
        out: np.ndarray = v / max(norm, 1e-12)
        return out

    def _project(self, v: np.ndarray) -> np.ndarray:
        assert self._matrix is not None
        out: np.ndarray = v @ self._matrix
        return out

    def add(self, context: str, vector: np.ndarray, payload: bytes, ttl_s: float, now: float | None = None) -> None:
        np = self._np
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._vecs is None or self._proj is None:
                d = len(vector)
                self._matrix = np.random.default_rng(0).standard_normal((d, PROJECTED)).astype(np.float32)
                self._vecs = np.zeros((self.capacity, d), dtype=np.float16)
                self._proj = np.zeros((self.capacity, PROJECTED), dtype=np.float32)
            elif self._vecs.shape[1] != len(vector):
                raise ValueError(f"embedding of {len(vector)} dimensions in an index of {self._vecs.shape[1]}")
            row = self._next
            self._ctx[row] = self.context_id(context)
            self._expires[row] = now + ttl_s
            self._vecs[row] = vector
            self._proj[row] = self._project(vector)
            self._payloads[row] = payload
            self._next = (row + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def search(self, context: str, vector: np.ndarray, threshold: float, now: float | None = None) -> bytes | None:
        """The payload of the most similar live entry of ``context`` when its similarity is ≥ ``threshold``."""
        best = self.nearest(context, vector, now)
        return best[1] if best is not None and best[0] >= threshold else None

    def nearest(self, context: str, vector: np.ndarray, now: float | None = None) -> tuple[float, bytes] | None:
        np = self._np
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._vecs is None or self._proj is None or self.size == 0:
                return None
            n = self.size
            mask = (self._ctx[:n] == np.uint64(self.context_id(context))) & (self._expires[:n] > now)
            count = int(np.count_nonzero(mask))
            if count == 0:
                return None
            if count > EXACT_BELOW:  # rank every row by the projection, without gathering them
                approx = self._proj[:n] @ self._project(vector)
                approx[~mask] = -np.inf
                rows = np.argpartition(approx, -RERANK)[-RERANK:]
                rows = rows[mask[rows]]
            else:
                rows = np.flatnonzero(mask)
            sims = self._vecs[rows].astype(np.float32) @ vector
            i = int(np.argmax(sims))
            payload = self._payloads[int(rows[i])]
            if payload is None:
                return None
            return float(sims[i]), payload

    def clear(self) -> int:
        with self._lock:
            n = self.size
            self.size = 0
            self._next = 0
            self._payloads = [None] * self.capacity
            return n
