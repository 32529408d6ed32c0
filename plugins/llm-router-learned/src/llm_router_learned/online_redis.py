"""The online learner's state shared by a fleet on Redis (``state: {backend: redis}``).

Every gateway instance (and worker) learns from every rating, and each rating is learned once:

* **The arms are a log.** A rating is appended to a Redis stream (``XADD``: the model, the prompt's features,
  the residual); every instance tails the stream after each refresh of the state's snapshot and folds each
  entry into its local arms (Sherman–Morrison), in the stream's order, so every instance holds the same arms.
  The decision path reads the local arms only: it never waits on Redis. An instance that starts reads the
  log from its beginning (trimmed to about ``max_log`` entries) and so catches up.
* **A rating is taken once.** A decision's pending entry (features, base estimates, chosen model) is a key with
  the ``ttl_s`` expiry; feedback takes it with one Lua script (read and delete), so of two instances given the
  same request id one learns and the other says "rated already". A longer-lived "seen" key tells an expired
  request id from an unknown one.
* **Reset and import are log entries too**: ``reset`` empties every instance's arms, ``load`` replaces them by
  an export stored beside the log; entries after the marker apply on top.

While Redis is away, ratings and parked decisions are queued (in order, bounded) and sent when it is back;
the arms do not move in the meantime, and feedback is taken from this process's own parked decisions (a
request decided on another instance is then "unknown" until Redis is back).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from .online_store import Arm, Missing, Pending, read_export, write_export

__all__ = ["RedisOnlineStore"]

_log = logging.getLogger(__name__)

_APPEND = """
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'op', ARGV[2], 'model', ARGV[3],
                  'phi', ARGV[4], 'r', ARGV[5], 'dim', ARGV[6], 'ridge', ARGV[7])
"""

_PARK = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
return 1
"""

_TAKE = """
local v = redis.call('GET', KEYS[1])
if v then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], 'rated', 'PX', ARGV[1])
  return {'ok', v}
end
if redis.call('GET', KEYS[2]) then return {'rated', ''} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'expired', ''} end
return {'unknown', ''}
"""

_KEEP = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

_DROP = """
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], 'rated', 'PX', ARGV[1])
return 1
"""


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.float64).tobytes()).decode()


def _header(fields: dict[str, str]) -> dict[str, Any]:
    """A ``load`` entry's header: the snapshot's key, dimension and features."""
    header = json.loads(fields["phi"])
    if not isinstance(header, dict):
        raise ValueError("a load entry's header is not an object")
    return header


def _snapshot_key(fields: dict[str, str]) -> str | None:
    """The snapshot a ``load`` entry names (None for other entries, or a header :meth:`_apply` will reject)."""
    if fields.get("op") != "load":
        return None
    try:
        key = _header(fields)["key"]
    except (ValueError, KeyError):
        return None
    return key if isinstance(key, str) else None


def _array(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.float64).copy()


class RedisOnlineStore:
    """:class:`~llm_router_learned.online_store.OnlineStore` on the router's Redis state (module docstring).

    :param link: the state's :class:`llm_router.redis_state.PluginLink` for this scorer.
    """

    def __init__(self, link: Any, ttl_s: float = 86_400.0, max_pending: int = 100_000, max_log: int = 1_000_000):
        self.link, self.ttl_s, self.max_log = link, ttl_s, max_log
        self._arms: dict[str, Arm] = {}
        self._local: dict[str, Pending] = {}  # this process's parked decisions (until rated, or Redis is back)
        self.max_pending = max_pending
        self._last = "0"  # the stream entry read last
        self._lock = threading.Lock()
        self._append, self._park = link.script(_APPEND), link.script(_PARK)
        self._take, self._drop, self._keep = link.script(_TAKE), link.script(_DROP), link.script(_KEEP)
        self.log_key, self.snapshots = link.key("log"), link.key("snapshot")
        link.on_refresh(self.catch_up)

    # the arms: read locally, written through the log

    def arm(self, model_id: str) -> Arm | None:
        return self._arms.get(model_id)

    def arms(self) -> dict[str, Arm]:
        return dict(self._arms)

    def update(self, model_id: str, phi: np.ndarray, residual: float, dim: int, ridge: float) -> None:
        args = [self.max_log, "obs", model_id, _b64(phi), repr(float(residual)), dim, repr(float(ridge))]
        self.link.queue(self._append, [self.log_key], args)

    async def catch_up(self) -> None:
        """Fold the log's new entries into the local arms (run after each refresh of the state).

        Redis errors propagate (the next refresh retries from the same entry); an entry that cannot be applied
        (malformed, another dimension, a snapshot that no longer reads) is named in a warning and passed over, so
        one bad entry never blocks the entries after it.
        """
        while True:
            answer = await self.link.redis.xread({self.log_key: self._last}, count=5000)
            if not answer:
                return
            entries = answer[0][1]
            for entry_id, fields in entries:
                key = _snapshot_key(fields)  # a Redis error here propagates: the entry is read again next time
                blob = None if key is None else await self.link.redis.get(key)
                try:
                    self._apply(fields, blob)
                except Exception as exc:  # any bad entry: named, passed over, never blocking
                    _log.warning(
                        "online learner: log entry %s (op %r) of %s not applied: %s: %s",
                        entry_id, fields.get("op"), self.log_key, type(exc).__name__, exc,
                    )  # fmt: skip
                self._last = entry_id
            if len(entries) < 5000:
                return

    def _apply(self, fields: dict[str, str], blob: str | bytes | None) -> None:
        op = fields.get("op")
        if op == "obs":
            phi, residual = _array(fields["phi"]), float(fields["r"])
            with self._lock:
                model = fields["model"]
                arm = self._arms.get(model)
                if arm is None:
                    arm = Arm.fresh(int(fields["dim"]), float(fields["ridge"]))
                if phi.shape != arm.b.shape:
                    raise ValueError(f"features of dimension {phi.size}, the arm of {model!r} has {arm.b.size}")
                arm.update(phi, residual)
                self._arms[model] = arm
        elif op == "reset":
            with self._lock:
                self._arms = {}
        elif op == "load":
            header = _header(fields)
            if blob is None:  # the import still replaces what came before it, but with nothing
                with self._lock:
                    self._arms = {}
                raise LookupError(f"its snapshot {header['key']} is gone (kept 30 days): the arms restart empty")
            arms = read_export(io.BytesIO(base64.b64decode(blob)), header["dim"], header["features"])
            with self._lock:
                self._arms = arms
        else:
            raise ValueError(f"unknown op {op!r}")

    # parked decisions: one key each, taken once

    def _keys(self, request_id: str) -> list[str]:
        link = self.link
        return [link.key("pending", request_id), link.key("gone", request_id), link.key("seen", request_id)]

    def remember(self, request_id: str, pending: Pending) -> None:
        value = json.dumps(
            {"phi": _b64(pending.features), "base": pending.base, "model": pending.model_id, "at": pending.at}
        )
        ttl_ms = int(self.ttl_s * 1000)
        pending_key, _gone, seen = self._keys(request_id)
        self.link.queue(self._park, [pending_key, seen], [value, ttl_ms, 2 * ttl_ms + 86_400_000])
        with self._lock:
            self._local[request_id] = pending
            while len(self._local) > self.max_pending:
                self._local.pop(next(iter(self._local)))

    def take(self, request_id: str, now: float | None = None) -> Pending | Missing:
        """This process's own parked decision (the fleet's: :meth:`atake`); its key in Redis is dropped too."""
        now = time.time() if now is None else now
        with self._lock:
            pending = self._local.pop(request_id, None)
        if pending is None:
            return "unknown"
        pending_key, gone, _seen = self._keys(request_id)
        self.link.queue(self._drop, [pending_key, gone], [int(self.ttl_s * 1000)])
        return pending if now - pending.at <= self.ttl_s else "expired"

    async def atake(self, request_id: str, now: float | None = None) -> Pending | Missing:
        """The fleet's parked decision for ``request_id``, taken once fleet-wide; else why there is none."""
        if not self.link.up:
            return self.take(request_id, now)
        status, value = await self.link.call(self._take, self._keys(request_id), [2 * int(self.ttl_s * 1000)])
        with self._lock:
            self._local.pop(request_id, None)
        if status != "ok":
            return status  # type: ignore[no-any-return]
        data = json.loads(value)
        return Pending(_array(data["phi"]), {k: float(v) for k, v in data["base"].items()}, data["model"], data["at"])

    def pending_count(self) -> int:
        return len(self._local)

    # reset, export, import

    def reset(self) -> None:
        self.link.queue(self._append, [self.log_key], [self.max_log, "reset", "", "", "0", 0, "0"])
        with self._lock:
            self._arms = {}
            self._local.clear()

    def export(self, path: Path, dim: int, features: str) -> None:
        with self._lock:
            arms = {m: a.copy() for m, a in self._arms.items()}
        write_export(path, arms, dim, features)

    def import_file(self, path: Path, dim: int, features: str) -> int:
        arms = read_export(Path(path), dim, features)  # checked here, before the fleet sees it
        key = f"{self.snapshots}:{time.time_ns()}"
        blob = base64.b64encode(Path(path).read_bytes()).decode()
        header = json.dumps({"key": key, "dim": dim, "features": features})
        self.link.queue(self._keep, [key], [blob, 30 * 86_400_000])  # kept 30 days: instances that start replay it
        self.link.queue(self._append, [self.log_key], [self.max_log, "load", "", header, "0", dim, "0"])
        with self._lock:
            self._arms = arms
        return len(arms)
