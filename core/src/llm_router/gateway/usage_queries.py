"""Usage figures from the ledger's ``usage`` table: every query the dashboard and ``/v1/usage/*`` need.

All SQL of the usage endpoints is here, written in the subset that SQLite and PostgreSQL both accept
(``?`` placeholders, which a PostgreSQL reader turns into its own; window functions; ``VALUES`` lists whose
columns are ``column1``, ``column2`` in both; ``LOWER(...) LIKE ... ESCAPE``; ``LIMIT``/``OFFSET``). A ledger
backend supplies a :class:`LedgerReader`; :class:`SQLiteReader` reads the gateway's SQLite file read-only.

Days are UTC. Latency percentiles are nearest-rank over the requests that succeeded.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "DIMENSIONS",
    "FALLBACK_NOTE",
    "LOG_COLUMNS",
    "MAX_DAYS",
    "Filters",
    "LedgerReader",
    "SQLiteReader",
    "by_day",
    "by_dimension",
    "by_provider",
    "request_log",
    "spend_by_key",
    "summary",
]

DIMENSIONS = {"model": "model", "key": "key_id", "task": "task", "outcome": "outcome"}
"""``/v1/usage/by/{dimension}``: the ledger column behind each dimension (``day`` and ``provider`` are
computed apart)."""

LOG_COLUMNS = (
    "request_id",
    "ts",
    "key_id",
    "endpoint",
    "task",
    "model",
    "input_tokens",
    "output_tokens",
    "estimated_cost_usd",
    "cost_usd",
    "latency_ms",
    "outcome",
    "status",
    "fallbacks",
    "stream",
    "error",
)
"""The request log's columns (``prompt`` is added where the policy has ``log_prompts: true``)."""

MAX_DAYS = 400
"""The longest range ``by_day`` answers (one bucket per day)."""

FALLBACK_NOTE = "fell back from "
"""How the ledger's ``error`` column of a request answered after a fallback begins."""

_SEARCHED = ("request_id", "key_id", "model", "task", "outcome", "error")


class LedgerReader(Protocol):
    """Runs one read-only query on the ledger (``?`` placeholders) and returns its rows."""

    def query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]: ...


class SQLiteReader:
    """The gateway's SQLite ledger, opened read-only for each query (call it from a worker thread)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        if not self.path.exists():
            return []
        conn = sqlite3.connect(f"file:{self.path.resolve()}?mode=ro", uri=True, timeout=10)
        try:
            return list(conn.execute(sql, tuple(params)))
        finally:
            conn.close()


@dataclass(frozen=True, slots=True)
class Filters:
    """Which ledger rows a query covers: ``since <= ts < until`` (epoch seconds) and optional equalities and
    a case-insensitive text search over request id, key, model, task, outcome and error."""

    since: float
    until: float
    model: str | None = None
    key: str | None = None
    task: str | None = None
    outcome: str | None = None
    search: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses = ["ts >= ?", "ts < ?"]
        params: list[Any] = [self.since, self.until]
        for column, value in (("model", self.model), ("key_id", self.key), ("task", self.task)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.outcome is not None:
            clauses.append("outcome = ?")
            params.append(self.outcome)
        if self.search:
            pattern = "%" + _escape_like(self.search.lower()) + "%"
            clauses.append("(" + " OR ".join(f"LOWER({c}) LIKE ? ESCAPE '\\'" for c in _SEARCHED) + ")")
            params += [pattern] * len(_SEARCHED)
        return " AND ".join(clauses), params


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_TOTALS = (
    "COUNT(*), SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END), SUM(CASE WHEN outcome = 'ok' THEN 0 ELSE 1 END), "
    "SUM(input_tokens), SUM(output_tokens), SUM(cost_usd), SUM(fallbacks), AVG(latency_ms)"
)


def _totals(row: Sequence[Any]) -> dict[str, Any]:
    n, ok, err, tin, tout, cost, fbs, lat = row
    return {
        "requests": int(n or 0),
        "ok": int(ok or 0),
        "errors": int(err or 0),
        "input_tokens": int(tin or 0),
        "output_tokens": int(tout or 0),
        "cost_usd": round(float(cost or 0.0), 10),
        "fallbacks": int(fbs or 0),
        "avg_latency_ms": round(float(lat or 0.0), 2),
    }


def _percentiles(reader: LedgerReader, group: str, f: Filters) -> dict[Any, tuple[float, float]]:
    """(p50, p95) latency in ms of the successful requests, per value of ``group`` (a column or a constant)."""
    where, params = f.where()
    sql = (
        "SELECT grp, latency_ms, rn, n FROM ("  # noqa: S608 (group is one of the module's constant names)
        f"SELECT {group} AS grp, latency_ms, "
        f"ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY latency_ms) AS rn, "
        f"COUNT(*) OVER (PARTITION BY {group}) AS n "
        f"FROM usage WHERE {where} AND outcome = 'ok'"
        ") ranked WHERE rn = (n * 50 + 99) / 100 OR rn = (n * 95 + 99) / 100"
    )
    out: dict[Any, list[float]] = {}
    for grp, latency, rn, n in reader.query(sql, params):
        out.setdefault(grp, [0.0, 0.0])
        if rn == (n * 50 + 99) // 100:
            out[grp][0] = round(float(latency), 2)
        if rn == (n * 95 + 99) // 100:
            out[grp][1] = round(float(latency), 2)
    return {k: (v[0], v[1]) for k, v in out.items()}


def summary(reader: LedgerReader, f: Filters) -> dict[str, Any]:
    """Totals of the rows ``f`` covers, with p50/p95 latency."""
    where, params = f.where()
    rows = reader.query(f"SELECT {_TOTALS} FROM usage WHERE {where}", params)  # noqa: S608
    out = _totals(rows[0] if rows else (0,) * 8)
    p50, p95 = _percentiles(reader, "'all'", f).get("all", (0.0, 0.0))
    return {**out, "p50_latency_ms": p50, "p95_latency_ms": p95}


def by_dimension(reader: LedgerReader, dimension: str, f: Filters) -> list[dict[str, Any]]:
    """Totals and p50/p95 latency per model, key, task or outcome (``DIMENSIONS``), most expensive first."""
    column = DIMENSIONS[dimension]
    where, params = f.where()
    sql = (
        f"SELECT {column}, {_TOTALS} FROM usage WHERE {where} "  # noqa: S608 (column: a constant of DIMENSIONS)
        f"GROUP BY {column} ORDER BY SUM(cost_usd) DESC, COUNT(*) DESC"
    )
    rows = reader.query(sql, params)
    latency = _percentiles(reader, column, f)
    out = []
    for row in rows:
        p50, p95 = latency.get(row[0], (0.0, 0.0))
        out.append({dimension: row[0], **_totals(row[1:]), "p50_latency_ms": p50, "p95_latency_ms": p95})
    return out


def _provider(model: str | None) -> str | None:
    return model.split("/", 1)[0] if model else None


def by_provider(reader: LedgerReader, f: Filters) -> list[dict[str, Any]]:
    """Per provider (the part of the model id before ``/``): requests its models answered (``ok``, cost),
    requests that failed there after every fallback (``errors``: outcome ``error``, by the model the router
    chose first), and ``fallbacks``: calls that failed there and were answered by another model (read from the
    ``fell back from ...`` note in the ledger's ``error`` column)."""
    where, params = f.where()
    sql = (
        "SELECT model, SUM(CASE WHEN outcome = 'ok' THEN 1 ELSE 0 END), "  # noqa: S608
        "SUM(CASE WHEN outcome = 'error' THEN 1 ELSE 0 END), SUM(cost_usd) "
        f"FROM usage WHERE {where} AND model IS NOT NULL GROUP BY model"
    )
    merged: dict[str | None, dict[str, Any]] = {}

    def acc(provider: str | None) -> dict[str, Any]:
        return merged.setdefault(
            provider, {"provider": provider, "ok": 0, "errors": 0, "fallbacks": 0, "cost_usd": 0.0}
        )

    for model, ok, errors, cost in reader.query(sql, params):
        row = acc(_provider(model))
        row["ok"] += int(ok or 0)
        row["errors"] += int(errors or 0)
        row["cost_usd"] = round(row["cost_usd"] + float(cost or 0.0), 10)
    notes = reader.query(f"SELECT error FROM usage WHERE {where} AND fallbacks > 0 AND outcome = 'ok'", params)  # noqa: S608
    for (note,) in notes:
        if isinstance(note, str) and note.startswith(FALLBACK_NOTE):
            for failed in note[len(FALLBACK_NOTE) :].split(", "):
                acc(_provider(failed.split(" (", 1)[0]))["fallbacks"] += 1
    return sorted(merged.values(), key=lambda r: (-(r["errors"] + r["fallbacks"]), r["provider"] or ""))


def _day(ts: float) -> float:
    d = datetime.fromtimestamp(ts, UTC)
    return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()


def by_day(reader: LedgerReader, f: Filters) -> list[dict[str, Any]]:
    """Totals per UTC day from ``f.since`` to ``f.until``, every day listed (zeros where nothing ran)."""
    days: list[tuple[float, float]] = []
    start = _day(f.since)
    while start < f.until and len(days) < MAX_DAYS:
        end = start + 86400
        days.append((max(start, f.since), min(end, f.until)))
        start = end
    if not days:
        return []
    where, params = f.where()
    values = ", ".join("(?, ?)" for _ in days)
    sql = (
        f"SELECT d.column1, {_TOTALS} FROM usage "  # noqa: S608 (only placeholders are interpolated)
        f"JOIN (VALUES {values}) AS d ON usage.ts >= d.column1 AND usage.ts < d.column2 "
        f"WHERE {where} GROUP BY d.column1"
    )
    found = {round(r[0]): _totals(r[1:]) for r in reader.query(sql, [v for d in days for v in d] + params)}
    empty = _totals((0,) * 8)
    return [
        {"day": datetime.fromtimestamp(lo, UTC).strftime("%Y-%m-%d"), **found.get(round(lo), empty)} for lo, _ in days
    ]


def spend_by_key(reader: LedgerReader, since: float) -> dict[str, float]:
    """USD spent per key id from ``since`` on."""
    rows = reader.query("SELECT key_id, SUM(cost_usd) FROM usage WHERE ts >= ? GROUP BY key_id", [since])
    return {k: float(v or 0.0) for k, v in rows if k is not None}


def request_log(
    reader: LedgerReader, f: Filters, *, limit: int, offset: int = 0, prompts: bool = False
) -> tuple[int, list[dict[str, Any]]]:
    """(how many rows match, the page of them newest first)."""
    where, params = f.where()
    columns = (*LOG_COLUMNS, "prompt") if prompts else LOG_COLUMNS
    count = reader.query(f"SELECT COUNT(*) FROM usage WHERE {where}", params)  # noqa: S608
    sql = (
        f"SELECT {', '.join(columns)} FROM usage WHERE {where} "  # noqa: S608 (constant column names)
        "ORDER BY ts DESC, request_id LIMIT ? OFFSET ?"
    )
    rows = [dict(zip(columns, r, strict=True)) for r in reader.query(sql, [*params, limit, offset])]
    for row in rows:
        row["stream"] = bool(row["stream"])
    return int(count[0][0]) if count else 0, rows
