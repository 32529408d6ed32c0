"""The usage ledger: one SQLite row per gateway request, written by a thread so the event loop never waits.

Rows are queued with :meth:`Ledger.record` (a non-blocking ``put``); the writer thread
(:class:`~llm_router.gateway.writer.QueuedWriter`, shared with the PostgreSQL ledger) commits them in
batches; :meth:`Ledger.close` drains the queue before returning, so no row is lost on a clean shutdown.
Budget spend per key (today, this month, UTC) is read from the ledger at start and kept in memory.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .writer import QueuedWriter

if TYPE_CHECKING:
    from .pg_ledger import PostgresLedger
    from .usage_queries import SQLiteReader

__all__ = ["Ledger", "LedgerRow", "SpendCache", "record_feedback", "usage_report"]

log = logging.getLogger("llm_router.gateway")

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    request_id TEXT NOT NULL,
    ts REAL NOT NULL,
    key_id TEXT,
    endpoint TEXT NOT NULL,
    task TEXT,
    model TEXT,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    estimated_cost_usd REAL NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    latency_ms REAL NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL,
    status INTEGER NOT NULL,
    fallbacks INTEGER NOT NULL DEFAULT 0,
    stream INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    prompt TEXT,
    cache TEXT,
    saved_cost_usd REAL NOT NULL DEFAULT 0,
    variant TEXT
);
CREATE INDEX IF NOT EXISTS usage_key_ts ON usage (key_id, ts);
CREATE INDEX IF NOT EXISTS usage_ts ON usage (ts);
CREATE TABLE IF NOT EXISTS feedback (
    request_id TEXT NOT NULL,
    ts REAL NOT NULL,
    rating REAL,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS feedback_request ON feedback (request_id);
"""


@dataclass(slots=True)
class LedgerRow:
    request_id: str
    ts: float
    key_id: str | None
    endpoint: str
    task: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    estimated_cost_usd: float
    cost_usd: float
    latency_ms: float
    outcome: str
    status: int
    fallbacks: int
    stream: bool
    error: str | None = None
    prompt: str | None = None
    cache: str | None = None
    saved_cost_usd: float = 0.0
    variant: str | None = None


_COLUMNS = [f.name for f in fields(LedgerRow)]
# constant column names, never user input
_INSERT = f"INSERT INTO usage ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"  # noqa: S608


def connect(path: str | Path) -> sqlite3.Connection:
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    _add_columns(conn)
    return conn


ADDED_COLUMNS = {"cache": "TEXT", "saved_cost_usd": "REAL NOT NULL DEFAULT 0", "variant": "TEXT"}
"""Columns added since the first ledger schema: a ledger written by an older version gets them on open."""


def _add_columns(conn: sqlite3.Connection) -> None:
    have = {row[1] for row in conn.execute("PRAGMA table_info(usage)")}
    for name, decl in ADDED_COLUMNS.items():
        if name not in have:
            conn.execute(f"ALTER TABLE usage ADD COLUMN {name} {decl}")  # constant names, never user input


def record_feedback(path: str | Path, request_id: str, rating: float | None, outcome: str | None) -> None:
    """Append one feedback (blocking: call it from a worker thread)."""
    conn = connect(path)
    try:
        with conn:
            conn.execute(
                "INSERT INTO feedback (request_id, ts, rating, outcome) VALUES (?, ?, ?, ?)",
                (request_id, time.time(), rating, outcome),
            )
    finally:
        conn.close()


def day_start(now: float) -> float:
    d = datetime.fromtimestamp(now, UTC)
    return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()


def month_start(now: float) -> float:
    d = datetime.fromtimestamp(now, UTC)
    return datetime(d.year, d.month, 1, tzinfo=UTC).timestamp()


class SpendCache:
    """Spend per key for the current UTC day and month: loaded from the ledger, then kept up to date in
    memory as rows are recorded. ``reserve``/``release`` hold in-flight estimates so concurrent requests
    cannot all pass a nearly-spent budget."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._day = 0.0
        self._month = 0.0
        self.day: dict[str, float] = {}
        self.month: dict[str, float] = {}
        self.reserved: dict[str, float] = {}

    def load(self, conn: sqlite3.Connection, now: float | None = None) -> None:
        now = time.time() if now is None else now
        d0, m0 = day_start(now), month_start(now)
        day = dict(conn.execute("SELECT key_id, SUM(cost_usd) FROM usage WHERE ts >= ? GROUP BY key_id", (d0,)))
        month = dict(conn.execute("SELECT key_id, SUM(cost_usd) FROM usage WHERE ts >= ? GROUP BY key_id", (m0,)))
        with self._lock:
            self._day, self._month = d0, m0
            self.day = {k: float(v or 0) for k, v in day.items() if k is not None}
            self.month = {k: float(v or 0) for k, v in month.items() if k is not None}

    def replace(self, day: dict[str, Any], month: dict[str, Any], now: float) -> None:
        """Take totals read from a ledger (``key_id → USD`` for today and this month)."""
        with self._lock:
            self._day, self._month = day_start(now), month_start(now)
            self.day = {k: float(v or 0) for k, v in day.items() if k is not None}
            self.month = {k: float(v or 0) for k, v in month.items() if k is not None}

    def _roll(self, now: float) -> None:
        d0 = day_start(now)
        if d0 != self._day:
            self._day, self.day = d0, {}
        m0 = month_start(now)
        if m0 != self._month:
            self._month, self.month = m0, {}

    def spent(self, key_id: str, now: float | None = None) -> tuple[float, float]:
        """(today, this month) including in-flight reservations."""
        with self._lock:
            self._roll(time.time() if now is None else now)
            r = self.reserved.get(key_id, 0.0)
            return self.day.get(key_id, 0.0) + r, self.month.get(key_id, 0.0) + r

    def totals(self, key_id: str, now: float | None = None) -> tuple[float, float, float]:
        """(today, this month, held by requests in flight), each apart."""
        with self._lock:
            self._roll(time.time() if now is None else now)
            return self.day.get(key_id, 0.0), self.month.get(key_id, 0.0), self.reserved.get(key_id, 0.0)

    def try_reserve(
        self, key_id: str, amount: float, check: Callable[[float, float, float], None], now: float | None = None
    ) -> None:
        """``check(day, month, reserved)`` then hold ``amount``, in one step (``check`` raises to refuse)."""
        with self._lock:
            self._roll(time.time() if now is None else now)
            reserved = self.reserved.get(key_id, 0.0)
            check(self.day.get(key_id, 0.0), self.month.get(key_id, 0.0), reserved)
            self.reserved[key_id] = reserved + amount

    def raise_to(self, key_id: str, day: float, month: float, reserved: float) -> None:
        """Take a shared store's last known totals (Redis going away): spend rises to them, never falls; the
        fleet's in-flight holds count as spent until the store is back."""
        with self._lock:
            self.day[key_id] = max(self.day.get(key_id, 0.0), day + reserved)
            self.month[key_id] = max(self.month.get(key_id, 0.0), month + reserved)

    def reserve(self, key_id: str, amount: float) -> None:
        with self._lock:
            self.reserved[key_id] = self.reserved.get(key_id, 0.0) + amount

    def settle(self, key_id: str, reserved: float, actual: float, ts: float) -> None:
        with self._lock:
            self.reserved[key_id] = max(0.0, self.reserved.get(key_id, 0.0) - reserved)
            self._roll(time.time())
            if ts >= self._day:
                self.day[key_id] = self.day.get(key_id, 0.0) + actual
            if ts >= self._month:
                self.month[key_id] = self.month.get(key_id, 0.0) + actual


class Ledger(QueuedWriter):
    """A SQLite file and the thread that writes it."""

    def __init__(self, path: str | Path, *, batch: int = 512, linger_s: float = 0.02, refresh_s: float = 5.0) -> None:
        super().__init__(LedgerRow, batch=batch, linger_s=linger_s)
        self.path = Path(path)
        self.refresh_s = refresh_s
        self._loaded = time.monotonic()
        self.spend = SpendCache()
        conn = connect(self.path)
        try:
            self.spend.load(conn)
        finally:
            conn.close()
        self._conn: sqlite3.Connection | None = None

    def record_feedback(self, request_id: str, rating: float | None, outcome: str | None) -> None:
        """Append one feedback to the ``feedback`` table (blocking: call it from a worker thread)."""
        record_feedback(self.path, request_id, rating, outcome)

    def reader(self) -> SQLiteReader:
        """Read-only queries for the usage endpoints (:mod:`llm_router.gateway.usage_queries`)."""
        from .usage_queries import SQLiteReader

        return SQLiteReader(self.path)

    # the writer thread

    def opened(self) -> None:
        self._conn = connect(self.path)

    def finished(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def write_batch(self, rows: Sequence[tuple[Any, ...]]) -> None:
        assert self._conn is not None
        self._write(self._conn, rows)
        if time.monotonic() - self._loaded >= self.refresh_s:
            # other workers write the same ledger: take their spend into account too
            self.spend.load(self._conn)
            self._loaded = time.monotonic()

    def _write(self, conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        for attempt in range(5):
            try:
                with conn:
                    conn.executemany(_INSERT, rows)
                self.written += len(rows)
                return
            except sqlite3.OperationalError as exc:  # locked by another worker: try again
                log.warning("ledger write failed (%s), retrying", exc)
                time.sleep(0.05 * (attempt + 1))
        self.failed += len(rows)
        log.error("ledger: %d rows could not be written to %s", len(rows), self.path)


def open_ledger(
    target: str | os.PathLike[str], *, spool_dir: str | os.PathLike[str] = ".", spool_max_mb: float = 256
) -> Ledger | PostgresLedger:
    """The ledger at ``target``: a ``postgresql://`` URL (needs the ``postgres`` extra; its outage spool goes
    to ``spool_dir``, at most ``spool_max_mb`` MiB per process) or a SQLite path (relative to the working
    directory)."""
    if str(target).startswith(("postgresql://", "postgres://")):
        from .pg_ledger import PostgresLedger

        return PostgresLedger(str(target), spool_dir=spool_dir, spool_max_bytes=int(spool_max_mb * 1024 * 1024))
    return Ledger(Path(target))


GROUPS = {
    "model": "model",
    "key": "key_id",
    "task": "task",
    "day": "date(ts, 'unixepoch')",
    "outcome": "outcome",
    "cache": "cache",
}


def usage_report(path: str | Path, *, since: float | None = None, by: str = "model") -> list[dict[str, Any]]:
    """Totals per ``by`` (model, key, task, day, outcome, cache) from ``since`` (epoch seconds) on; ``path`` is a
    SQLite file or a ``postgresql://`` URL."""
    if by not in GROUPS:
        raise ValueError(f"--by must be one of {', '.join(GROUPS)}")
    if str(path).startswith(("postgresql://", "postgres://")):
        from .pg_ledger import pg_usage_report

        return pg_usage_report(str(path), since=since, by=by)
    if not Path(path).exists():
        raise FileNotFoundError(f"no ledger at {path}")
    try:
        return _report(path, since, by)
    except sqlite3.DatabaseError as exc:  # not SQLite, not a ledger (no `usage` table), unreadable
        raise ValueError(f"{path} is not a usage ledger of llm-router serve ({exc})") from None


def _report(path: str | Path, since: float | None, by: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    try:
        sql = (
            f"SELECT {GROUPS[by]} AS grp,"  # noqa: S608 (`by` is checked against GROUPS above)
            " COUNT(*), SUM(outcome = 'ok'), SUM(outcome != 'ok'), "
            "SUM(input_tokens), SUM(output_tokens), SUM(cost_usd), AVG(latency_ms), SUM(fallbacks), "
            "SUM(cache IN ('hit', 'semantic')), SUM(saved_cost_usd) "
            "FROM usage WHERE ts >= ? GROUP BY grp ORDER BY SUM(cost_usd) DESC, grp"
        )
        out = []
        for grp, n, ok, err, tin, tout, cost, lat, fbs, hits, saved in conn.execute(sql, (since or 0.0,)):
            out.append(
                {
                    by: grp,
                    "requests": n,
                    "ok": ok or 0,
                    "errors": err or 0,
                    "input_tokens": tin or 0,
                    "output_tokens": tout or 0,
                    "cost_usd": round(cost or 0.0, 10),
                    "avg_latency_ms": round(lat or 0.0, 2),
                    "fallbacks": fbs or 0,
                    "cache_hits": hits or 0,
                    "saved_cost_usd": round(saved or 0.0, 10),
                }
            )
        return out
    finally:
        conn.close()


def rows(path: str | Path) -> Iterable[dict[str, Any]]:
    """Every ledger row as a dict (for tests and exports); ``path`` is a SQLite file or a ``postgresql://``
    URL."""
    if str(path).startswith(("postgresql://", "postgres://")):
        from .pg_ledger import pg_rows

        return pg_rows(str(path))
    conn = sqlite3.connect(str(path))
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM usage ORDER BY ts")]
    finally:
        conn.close()
