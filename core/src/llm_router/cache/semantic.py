"""The semantic cache's index: unit embeddings of earlier prompts, searched by context.

Entries live in fixed arrays of ``max_entries`` rows used as a ring (the oldest entry is overwritten first).
A lookup keeps the rows of the same context that have not expired; with many of them it first ranks them by
the Hamming distance of the embeddings' sign bits (48 bytes per row for 384 dimensions, a popcount each) and
computes the exact cosine similarity of the best :data:`RERANK` only, so a lookup among 100,000 entries stays
within a few milliseconds (``benchmarks/bench_cache.py``). numpy is imported when the index is created.

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
"""Rows whose exact similarity is computed after the sign-bit pre-selection."""
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
        self._bits: np.ndarray | None = None  # (capacity, words) uint64 sign bits
        self._vecs: np.ndarray | None = None  # (capacity, d) float16 unit vectors

    @staticmethod
    def context_id(context: str) -> int:
        return int(context[:16], 16)

    def unit(self, vector: Any) -> np.ndarray:
        xp = self._np
        v = xp.asarray(vector, dtype=xp.float32).reshape(-1)
        norm = float(xp.linalg.norm(v))
        out: np.ndarray = v / max(norm, 1e-12)
        return out

    def _signs(self, v: np.ndarray) -> np.ndarray:
        xp = self._np
        packed = xp.packbits(v > 0)
        pad = (-len(packed)) % 8
        if pad:
            packed = xp.concatenate([packed, xp.zeros(pad, dtype=xp.uint8)])
        out: np.ndarray = packed.view(xp.uint64)
        return out

    def add(self, context: str, vector: np.ndarray, payload: bytes, ttl_s: float, now: float | None = None) -> None:
        np = self._np
        now = time.monotonic() if now is None else now
        bits = self._signs(vector)
        with self._lock:
            if self._vecs is None or self._bits is None:
                self._vecs = np.zeros((self.capacity, len(vector)), dtype=np.float16)
                self._bits = np.zeros((self.capacity, len(bits)), dtype=np.uint64)
            elif self._vecs.shape[1] != len(vector):
                raise ValueError(f"embedding of {len(vector)} dimensions in an index of {self._vecs.shape[1]}")
            row = self._next
            self._ctx[row] = self.context_id(context)
            self._expires[row] = now + ttl_s
            self._vecs[row] = vector
            self._bits[row] = bits
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
            if self._vecs is None or self._bits is None or self.size == 0:
                return None
            n = self.size
            rows = np.flatnonzero((self._ctx[:n] == np.uint64(self.context_id(context))) & (self._expires[:n] > now))
            if len(rows) == 0:
                return None
            if len(rows) > EXACT_BELOW:
                distance = np.bitwise_count(self._bits[rows] ^ self._signs(vector)).sum(axis=1)
                rows = rows[np.argpartition(distance, RERANK)[:RERANK]]
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
