"""Where the online learner keeps what it has learned, behind a small interface.

:class:`OnlineStore` is the seam: the scorer reads each model's arm (a ridge regression's inverse Gram matrix
and moment vector) and writes updates through it, and parks each decision it may hear feedback for. The
:class:`MemoryOnlineStore` keeps both in this process; :meth:`~MemoryOnlineStore.export` /
:meth:`~MemoryOnlineStore.import_file` carry the arms across restarts, :meth:`~MemoryOnlineStore.reset`
forgets them. A shared backend (Redis, for several gateway instances) implements the same methods.

The export file is a ``.npz`` (loaded with ``allow_pickle=False``): one ``A_inv/<model>``, ``b/<model>`` and
``n/<model>`` array per arm and a ``__header__`` holding UTF-8 JSON (``format``, ``version``, ``dim``,
``features``, ``models``). Pending decisions are not exported: feedback for a decision made before a restart
is refused as unknown.
"""

from __future__ import annotations

import json
import threading
import time
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Protocol, runtime_checkable

import numpy as np

from .base import ArtifactError

__all__ = ["EXPORT_FORMAT", "Arm", "MemoryOnlineStore", "OnlineStore", "Pending"]

EXPORT_FORMAT = "llm-router-online-learner"
EXPORT_VERSION = 1


@dataclass(slots=True)
class Arm:
    """One model's ridge regression of (rating − base) on the prompt features: ``A_inv`` = (λI + Σ φφᵀ)⁻¹,
    ``b`` = Σ (r − base)·φ, ``n`` ratings; the estimate is θ = A_inv·b."""

    A_inv: np.ndarray
    b: np.ndarray
    n: int = 0

    @classmethod
    def fresh(cls, dim: int, ridge: float) -> Arm:
        return cls(np.eye(dim) / ridge, np.zeros(dim))

    def copy(self) -> Arm:
        return Arm(self.A_inv.copy(), self.b.copy(), self.n)

    def theta(self) -> np.ndarray:
        return self.A_inv @ self.b  # type: ignore[no-any-return]

    def update(self, phi: np.ndarray, residual: float) -> None:
        """Fold in one observation (Sherman–Morrison: O(d²), no inversion)."""
        u = self.A_inv @ phi
        self.A_inv -= np.outer(u, u) / (1.0 + float(phi @ u))
        self.b += residual * phi
        self.n += 1


@dataclass(frozen=True, slots=True)
class Pending:
    """A decision that may still be rated: its features, each candidate's base estimate, the chosen model."""

    features: np.ndarray
    base: dict[str, float]
    model_id: str
    at: float


Missing = Literal["unknown", "expired", "rated"]


@runtime_checkable
class OnlineStore(Protocol):
    """What the online learner remembers (see the module docstring)."""

    def arm(self, model_id: str) -> Arm | None:
        """``model_id``'s arm, ``None`` before its first rating (the scorer then uses a fresh one)."""

    def update(self, model_id: str, phi: np.ndarray, residual: float, dim: int, ridge: float) -> None:
        """Fold one rating into ``model_id``'s arm (created fresh with ``dim`` and ``ridge`` if new)."""

    def remember(self, request_id: str, pending: Pending) -> None:
        """Park a decision until its feedback arrives (or it expires)."""

    def take(self, request_id: str, now: float) -> Pending | Missing:
        """The parked decision for ``request_id``, removed; else why there is none."""

    def reset(self) -> None:
        """Forget every arm and parked decision."""

    def export(self, path: Path, dim: int, features: str) -> None:
        """Write the arms to ``path``."""

    def import_file(self, path: Path, dim: int, features: str) -> int:
        """Replace the arms by those of ``path``; returns how many were read."""


class MemoryOnlineStore:
    """The in-process :class:`OnlineStore`: arms in a dict, parked decisions in an ordered dict that drops the
    oldest beyond ``max_pending`` and refuses those older than ``ttl_s``."""

    def __init__(self, ttl_s: float = 86_400.0, max_pending: int = 100_000) -> None:
        self.ttl_s = ttl_s
        self.max_pending = max_pending
        self._arms: dict[str, Arm] = {}
        self._pending: OrderedDict[str, Pending] = OrderedDict()
        self._gone: OrderedDict[str, Missing] = OrderedDict()  # recently expired or rated ids, to say which
        self._lock = threading.Lock()

    def arm(self, model_id: str) -> Arm | None:
        return self._arms.get(model_id)

    def arms(self) -> dict[str, Arm]:
        return dict(self._arms)

    def update(self, model_id: str, phi: np.ndarray, residual: float, dim: int, ridge: float) -> None:
        with self._lock:
            arm = self._arms.get(model_id)
            if arm is None:
                arm = self._arms[model_id] = Arm.fresh(dim, ridge)
            arm.update(phi, residual)

    def remember(self, request_id: str, pending: Pending) -> None:
        with self._lock:
            self._pending[request_id] = pending
            while len(self._pending) > self.max_pending:
                old, _ = self._pending.popitem(last=False)
                self._forget(old, "expired")

    def take(self, request_id: str, now: float | None = None) -> Pending | Missing:
        now = time.time() if now is None else now
        with self._lock:
            self._expire(now)
            pending = self._pending.pop(request_id, None)
            if pending is None:
                return self._gone.get(request_id, "unknown")
            self._forget(request_id, "rated")
            return pending

    def _expire(self, now: float) -> None:
        while self._pending:
            rid, oldest = next(iter(self._pending.items()))
            if now - oldest.at <= self.ttl_s:
                break
            self._pending.popitem(last=False)
            self._forget(rid, "expired")

    def _forget(self, request_id: str, why: Missing) -> None:
        self._gone[request_id] = why
        while len(self._gone) > self.max_pending:
            self._gone.popitem(last=False)

    def pending_count(self) -> int:
        return len(self._pending)

    def reset(self) -> None:
        with self._lock:
            self._arms.clear()
            self._pending.clear()
            self._gone.clear()

    def export(self, path: Path, dim: int, features: str) -> None:
        with self._lock:
            arms = {m: a.copy() for m, a in self._arms.items()}
        write_export(path, arms, dim, features)

    def import_file(self, path: Path, dim: int, features: str) -> int:
        arms = read_export(Path(path), dim, features)
        with self._lock:
            self._arms = arms
        return len(arms)


def write_export(path: Path, arms: dict[str, Arm], dim: int, features: str) -> None:
    """Write ``arms`` to ``path`` atomically (a reader never sees half a file); see the module docstring."""
    models = sorted(arms)
    header = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "dim": dim, "features": features}
    arrays: dict[str, np.ndarray] = {
        "__header__": np.frombuffer(json.dumps({**header, "models": models}).encode(), dtype=np.uint8)
    }
    for i, m in enumerate(models):
        arrays[f"A_inv_{i}"], arrays[f"b_{i}"], arrays[f"n_{i}"] = arms[m].A_inv, arms[m].b, np.array(arms[m].n)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        np.savez_compressed(fh, **arrays)
    tmp.replace(path)  # a reader never sees half a file


def read_export(path: Path | BinaryIO, dim: int, features: str) -> dict[str, Arm]:
    """The arms of an export file; :class:`ArtifactError` naming the file when it is not one this learner
    can use (another format, a newer version, other features)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(bytes(z["__header__"]).decode())
            if header.get("format") != EXPORT_FORMAT:
                raise ArtifactError(f"{path}: not an online learner export (format {header.get('format')!r})")
            if int(header.get("version", 0)) > EXPORT_VERSION:
                raise ArtifactError(f"{path}: export version {header['version']} is newer than {EXPORT_VERSION}")
            if header.get("dim") != dim or header.get("features") != features:
                raise ArtifactError(
                    f"{path}: learned over {header.get('features')!r} features of dimension {header.get('dim')}, "
                    f"but this scorer uses {features!r} of dimension {dim}"
                )
            return {
                m: Arm(
                    np.array(z[f"A_inv_{i}"], dtype=np.float64),
                    np.array(z[f"b_{i}"], dtype=np.float64),
                    int(z[f"n_{i}"]),
                )
                for i, m in enumerate(header["models"])
            }
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        if isinstance(exc, ArtifactError):
            raise
        raise ArtifactError(f"{path}: cannot read the online learner export: {type(exc).__name__}: {exc}") from None
