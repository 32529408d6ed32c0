"""A usage ledger written before the cache columns existed gets them when it is opened, and keeps its rows."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from llm_router.gateway.ledger import Ledger, LedgerRow, rows, usage_report

OLD_SCHEMA = """
CREATE TABLE usage (
    request_id TEXT NOT NULL, ts REAL NOT NULL, key_id TEXT, endpoint TEXT NOT NULL, task TEXT, model TEXT,
    input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
    estimated_cost_usd REAL NOT NULL DEFAULT 0, cost_usd REAL NOT NULL DEFAULT 0, latency_ms REAL NOT NULL DEFAULT 0,
    outcome TEXT NOT NULL, status INTEGER NOT NULL, fallbacks INTEGER NOT NULL DEFAULT 0,
    stream INTEGER NOT NULL DEFAULT 0, error TEXT, prompt TEXT
);
"""


def _row(request_id: str, cache: str | None, saved: float) -> LedgerRow:
    return LedgerRow(
        request_id,
        time.time(),
        "k",
        "chat",
        "chat",
        "a/small",
        10,
        2,
        0.1,
        0.0 if cache else 0.2,
        1.0,
        "ok",
        200,
        0,
        False,
        cache=cache,
        saved_cost_usd=saved,
    )


def test_old_ledger_gets_the_cache_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    conn.execute("INSERT INTO usage (request_id, ts, endpoint, outcome, status) VALUES ('old', 1.0, 'chat', 'ok', 200)")
    conn.commit()
    conn.close()
    ledger = Ledger(path)
    ledger.start()
    ledger.record(_row("fresh", "miss", 0.0))
    ledger.record(_row("again", "hit", 0.2))
    ledger.close()
    got = {r["request_id"]: (r["cache"], r["saved_cost_usd"]) for r in rows(path)}
    assert got == {"old": (None, 0.0), "fresh": ("miss", 0.0), "again": ("hit", 0.2)}
    by_cache = {r["cache"]: r for r in usage_report(path, by="cache")}
    assert by_cache["hit"]["cache_hits"] == 1 and by_cache["hit"]["saved_cost_usd"] == 0.2
    assert by_cache["miss"]["cache_hits"] == 0
