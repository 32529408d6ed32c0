"""The usage ledger on PostgreSQL (``gateway.ledger: postgresql://…``), for a fleet of gateways.

The same rows and columns as the SQLite ledger (:class:`~llm_router.gateway.ledger.LedgerRow`), written by a
thread in batches (``executemany`` of psycopg 3, pipelined; the driver was chosen by
``benchmarks/bench_ledger_pg.py``, see docs/reliability.md) so the event loop never waits, drained on
shutdown (SIGTERM). Each insert is ``ON CONFLICT DO NOTHING`` on (request_id, ts): a row replayed is
written once.

PostgreSQL unreachable (at start or later): rows are appended to a local spool file (JSON lines, bounded by
``spool_max_bytes``) and replayed, in order, when it answers again; a spool left by a process that died is
replayed by the next ledger that starts in the same directory.

Schema: versioned migrations (:data:`MIGRATIONS`, recorded in ``llm_router_schema``), applied under an
advisory lock so concurrent gateways migrate once. A column added to ``LedgerRow`` (with a default) is
added to the table at start-up (``ADD COLUMN IF NOT EXISTS``, its SQL type from the field's type): adding
a column is a one-line change to ``LedgerRow``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .ledger import LedgerRow, SpendCache, day_start, month_start
from .writer import QueuedWriter

__all__ = ["COLUMNS", "MIGRATIONS", "PostgresLedger", "is_postgres", "migrate", "pg_rows", "pg_usage_report"]

log = logging.getLogger("llm_router.gateway")

COLUMNS = [f.name for f in fields(LedgerRow)]

_SQL_TYPES = {"str": "TEXT", "int": "BIGINT", "float": "DOUBLE PRECISION", "bool": "BOOLEAN"}

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "usage table",
        """
        CREATE TABLE IF NOT EXISTS usage (
            request_id TEXT NOT NULL,
            ts DOUBLE PRECISION NOT NULL,
            key_id TEXT,
            endpoint TEXT NOT NULL,
            task TEXT,
            model TEXT,
            input_tokens BIGINT NOT NULL DEFAULT 0,
            output_tokens BIGINT NOT NULL DEFAULT 0,
            estimated_cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            latency_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
            outcome TEXT NOT NULL,
            status INTEGER NOT NULL,
            fallbacks INTEGER NOT NULL DEFAULT 0,
            stream BOOLEAN NOT NULL DEFAULT false,
            error TEXT,
            prompt TEXT,
            PRIMARY KEY (request_id, ts)
        );
        CREATE INDEX IF NOT EXISTS usage_key_ts ON usage (key_id, ts);
        CREATE INDEX IF NOT EXISTS usage_ts ON usage (ts);
        """,
    ),
    (
        2,
        "feedback table",
        """
        CREATE TABLE IF NOT EXISTS feedback (
            request_id TEXT NOT NULL,
            ts DOUBLE PRECISION NOT NULL,
            rating DOUBLE PRECISION,
            outcome TEXT
        );
        CREATE INDEX IF NOT EXISTS feedback_request ON feedback (request_id);
        """,
    ),
]
"""(version, name, SQL), applied in order; append one to change the schema in a way ``LedgerRow`` alone
cannot (an index, a type)."""

_LOCK_ID = 0x6C6C6D72  # pg_advisory_xact_lock id of the migrations ("llmr")


def is_postgres(target: str | os.PathLike[str]) -> bool:
    return str(target).startswith(("postgresql://", "postgres://"))


def redact(url: str) -> str:
    """``url`` without its password (for logs and reports)."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def insert_sql(style: str = "%s") -> str:
    """The idempotent insert, with ``%s`` (psycopg) or ``$`` (``$1, $2…``, asyncpg) placeholders."""
    marks = ", ".join(f"${i + 1}" if style == "$" else "%s" for i in range(len(COLUMNS)))
    # constant column names, never user input
    return (
        f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES ({marks}) "  # noqa: S608
        "ON CONFLICT (request_id, ts) DO NOTHING"
    )


def _sql_type(annotation: Any) -> str:
    text = str(annotation).replace("None", "").replace("|", "").strip()
    return _SQL_TYPES.get(text, "TEXT")


def migrate(conn: Any) -> int:
    """Bring the schema up to date (psycopg connection); return the schema version."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS llm_router_schema "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
        )
        current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM llm_router_schema").fetchone()[0]
        for version, name, sql in MIGRATIONS:
            if version > current:
                conn.execute(sql)
                conn.execute(
                    "INSERT INTO llm_router_schema (version, name, applied_at) VALUES (%s, %s, %s)",
                    (version, name, time.time()),
                )
                current = version
        have = {
            r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'usage'")
        }
        for f in fields(LedgerRow):
            if f.name not in have:
                # a field name of LedgerRow and a fixed type, never user input
                conn.execute(f"ALTER TABLE usage ADD COLUMN IF NOT EXISTS {f.name} {_sql_type(f.type)}")
        return int(current)


def _connect(url: str) -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigurationError("a postgresql:// ledger needs psycopg: pip install 'llm-router[postgres]'") from None

    return psycopg.connect(url, connect_timeout=3, autocommit=False)


def _load_spend(conn: Any, spend: SpendCache) -> None:
    now = time.time()
    d0, m0 = day_start(now), month_start(now)
    sql = "SELECT key_id, SUM(cost_usd) FROM usage WHERE ts >= %s AND key_id IS NOT NULL GROUP BY key_id"
    day = dict(conn.execute(sql, (d0,)).fetchall())
    month = dict(conn.execute(sql, (m0,)).fetchall())
    conn.rollback()
    spend.replace(day, month, now)


class PostgresLedger(QueuedWriter):
    """The ledger's PostgreSQL writer: same interface as :class:`~llm_router.gateway.ledger.Ledger`
    (``record``, ``start``, ``close``, ``spend``, ``written``, ``failed``), the same queued writer thread."""

    thread_name = "llm-router-pg-ledger"

    def __init__(
        self,
        url: str,
        *,
        batch: int = 512,
        linger_s: float = 0.02,
        refresh_s: float = 5.0,
        spool_dir: str | os.PathLike[str] = ".",
        spool_max_bytes: int = 256 * 1024 * 1024,
        retry_s: float = 1.0,
    ) -> None:
        super().__init__(LedgerRow, batch=batch, linger_s=linger_s)
        self.url = url
        self.path = redact(url)
        self.refresh_s, self.retry_s, self.idle_s = refresh_s, retry_s, retry_s
        spool_path = Path(spool_dir).resolve()
        spool_path.mkdir(parents=True, exist_ok=True)
        self.spool = spool_path / f"llm-router-ledger-spool-{os.getpid()}.jsonl"
        self.spool_max_bytes = spool_max_bytes
        self.spend = SpendCache()
        self.spooled = 0
        self.replayed = 0
        self.up = False
        self._conn: Any = None
        self._loaded = 0.0
        self._next_try = 0.0
        self._ensure()  # at start: schema and today's spend (or a warning, and the spool)

    # the ledger's interface

    def record_feedback(self, request_id: str, rating: float | None, outcome: str | None) -> None:
        """Append one feedback to the ``feedback`` table (blocking: call it from a worker thread)."""
        with _connect(self.url) as conn:
            conn.execute(
                "INSERT INTO feedback (request_id, ts, rating, outcome) VALUES (%s, %s, %s, %s)",
                (request_id, time.time(), rating, outcome),
            )

    def reader(self) -> PostgresReader:
        """Read-only queries for the usage endpoints (:mod:`llm_router.gateway.usage_queries`)."""
        return PostgresReader(self.url)

    def close(self, timeout: float | None = 30) -> None:
        """Write (or spool) every queued row, then stop the writer."""
        super().close(timeout)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    # the writer thread

    def _ensure(self) -> bool:
        """A live connection (schema migrated, spend loaded, spools replayed), or ``False`` (down)."""
        if self._conn is not None and not self._conn.closed:
            return True
        if time.monotonic() < self._next_try:
            return False
        try:
            conn = _connect(self.url)
            with conn.transaction():
                pass
            conn.autocommit = True
            migrate(conn)
            conn.autocommit = False
            _load_spend(conn, self.spend)
        except ConfigurationError:
            raise
        except Exception as exc:
            self._down(exc)
            return False
        self._conn, self.up, self._loaded = conn, True, time.monotonic()
        log.info("gateway: usage ledger on PostgreSQL at %s", self.path)
        self._replay_spools()
        return True

    def _down(self, exc: BaseException) -> None:
        if self.up or self._next_try == 0.0:
            log.warning(
                "ledger: PostgreSQL at %s unreachable (%s: %s); rows spool to %s until it is back",
                self.path, type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc) else "", self.spool,
            )  # fmt: skip
        self.up = False
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None
        self._next_try = time.monotonic() + self.retry_s

    def idle(self) -> None:
        if not self.up and self._spools():
            self._ensure()

    def finished(self) -> None:
        if not self.up and self._spools():  # shutting down: one last try to hand the spool over
            self._next_try = 0.0
            self._ensure()

    def write_batch(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self._write(rows)

    def _write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if self._ensure():
            try:
                self._insert(rows)
                self.written += len(rows)
                if time.monotonic() - self._loaded >= self.refresh_s:
                    _load_spend(self._conn, self.spend)  # other gateways write the same ledger
                    self._loaded = time.monotonic()
                return
            except Exception as exc:
                self._down(exc)
        self._spool(rows)

    def _insert(self, rows: Iterable[tuple[Any, ...]]) -> None:
        conn = self._conn
        with conn.cursor() as cur:
            cur.executemany(insert_sql(), list(rows))
        conn.commit()

    # the spool

    def _spool(self, rows: Sequence[tuple[Any, ...]]) -> None:
        size = self.spool.stat().st_size if self.spool.exists() else 0
        data = "".join(json.dumps(dict(zip(COLUMNS, r, strict=True))) + "\n" for r in rows)
        if size + len(data) > self.spool_max_bytes:
            self.failed += len(rows)
            log.error("ledger: spool %s is full (%d bytes): %d rows lost", self.spool, size, len(rows))
            return
        with self.spool.open("a", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.spooled += len(rows)

    def _spools(self) -> list[Path]:
        """This process's spool, and those of processes that are gone (same directory)."""
        out = []
        for path in sorted(self.spool.parent.glob("llm-router-ledger-spool-*.jsonl")):
            pid = path.stem.rsplit("-", 1)[-1]
            if path == self.spool or (pid.isdigit() and not _alive(int(pid))):
                out.append(path)
        return out

    def _replay_spools(self) -> None:
        for path in self._spools():
            try:
                self._replay(path)
            except Exception as exc:
                self._down(exc)
                return

    def _replay(self, path: Path) -> None:
        """Insert a spool's rows (idempotent: a row already written is skipped), then remove the file."""
        with path.open(encoding="utf-8") as f:
            lines = [line for line in f if line.strip()]
        rows = []
        for line in lines:
            data = json.loads(line)
            rows.append(tuple(data.get(c) for c in COLUMNS))
        for i in range(0, len(rows), self.batch):
            self._insert(rows[i : i + self.batch])
        self.replayed += len(rows)
        path.unlink()
        log.warning("ledger: %d spooled rows replayed into PostgreSQL from %s", len(rows), path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------------------------------
# reading


PG_GROUPS = {
    "model": "model",
    "key": "key_id",
    "task": "task",
    "day": "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    "outcome": "outcome",
    "cache": "cache",
}


def pg_usage_report(url: str, *, since: float | None = None, by: str = "model") -> list[dict[str, Any]]:
    """:func:`~llm_router.gateway.ledger.usage_report` of a PostgreSQL ledger."""
    sql = (
        f"SELECT {PG_GROUPS[by]} AS grp, COUNT(*), "  # noqa: S608 (`by` is checked against GROUPS by the caller)
        "COUNT(*) FILTER (WHERE outcome = 'ok'), COUNT(*) FILTER (WHERE outcome != 'ok'), "
        "SUM(input_tokens), SUM(output_tokens), SUM(cost_usd), AVG(latency_ms), SUM(fallbacks) "
        "FROM usage WHERE ts >= %s GROUP BY grp ORDER BY SUM(cost_usd) DESC, grp"
    )
    try:
        conn = _connect(url)
    except Exception as exc:
        raise ValueError(f"cannot read the ledger at {redact(url)}: {str(exc).strip()}") from None
    with conn:
        try:
            result = conn.execute(sql, (since or 0.0,)).fetchall()
        except Exception as exc:
            raise ValueError(f"{redact(url)} is not a usage ledger of llm-router serve ({exc})") from None
    return [
        {
            by: grp,
            "requests": n,
            "ok": ok or 0,
            "errors": err or 0,
            "input_tokens": int(tin or 0),
            "output_tokens": int(tout or 0),
            "cost_usd": round(float(cost or 0.0), 10),
            "avg_latency_ms": round(float(lat or 0.0), 2),
            "fallbacks": int(fbs or 0),
        }
        for grp, n, ok, err, tin, tout, cost, lat, fbs in result
    ]


def pg_rows(url: str) -> list[dict[str, Any]]:
    """Every row of a PostgreSQL ledger as a dict, oldest first (``stream`` as 0/1, as SQLite has it)."""
    with _connect(url) as conn:
        cur = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM usage ORDER BY ts")  # noqa: S608 (fixed names)
        out = [dict(zip(COLUMNS, r, strict=True)) for r in cur.fetchall()]
    for row in out:
        row["stream"] = int(bool(row["stream"]))
    return out


class PostgresReader:
    """A :class:`~llm_router.gateway.usage_queries.LedgerReader` on a PostgreSQL ledger: the usage endpoints'
    portable SQL, its ``?`` placeholders turned into psycopg's ``%s`` (call it from a worker thread)."""

    def __init__(self, url: str) -> None:
        self._url = url

    def __repr__(self) -> str:
        return f"PostgresReader({redact(self._url)!r})"

    def query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        # the SQL is the usage module's constants: no literal '?' or '%' in it (patterns are parameters)
        with _connect(self._url) as conn:
            return [tuple(r) for r in conn.execute(sql.replace("?", "%s"), tuple(params)).fetchall()]


def pg_variant_rows(url: str, since: float | None = None) -> list[dict[str, Any]]:
    """``llm-router ab report``'s rows from a PostgreSQL ledger: requests that carry a variant (from ``since``
    on), each with its last feedback rating."""
    rating = (
        "(SELECT f.rating FROM feedback f WHERE f.request_id = u.request_id AND f.rating IS NOT NULL "
        "ORDER BY f.ts DESC LIMIT 1)"
    )
    sql = (
        f"SELECT u.variant, u.cost_usd, u.latency_ms, u.outcome, {rating} AS rating "  # noqa: S608 (constants)
        "FROM usage u WHERE u.variant IS NOT NULL AND u.ts >= %s ORDER BY u.ts"
    )
    names = ("variant", "cost_usd", "latency_ms", "outcome", "rating")
    with _connect(url) as conn:
        migrate(conn)  # an older ledger gains the variant column and the feedback table
        return [dict(zip(names, r, strict=True)) for r in conn.execute(sql, (since or 0.0,)).fetchall()]
