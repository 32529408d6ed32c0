"""The ledger on its own: batching, draining on close, spend per key shared through the file."""

from __future__ import annotations

import time
from pathlib import Path

from llm_router.gateway.ledger import Ledger, LedgerRow, rows, usage_report


def row(key: str, cost: float, model: str = "a/small", ts: float | None = None) -> LedgerRow:
    return LedgerRow(
        request_id=f"r{cost}",
        ts=time.time() if ts is None else ts,
        key_id=key,
        endpoint="chat",
        task="chat",
        model=model,
        input_tokens=10,
        output_tokens=5,
        estimated_cost_usd=cost,
        cost_usd=cost,
        latency_ms=1.0,
        outcome="ok",
        status=200,
        fallbacks=0,
        stream=False,
    )


def test_close_drains_every_queued_row(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3", batch=7)
    ledger.start()
    for i in range(100):
        ledger.record(row("k", i / 1000))
    ledger.close()
    assert len(list(rows(ledger.path))) == 100 and ledger.written == 100


def test_spend_is_shared_between_workers_through_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    a, b = Ledger(path, refresh_s=0), Ledger(path, refresh_s=0)
    a.start()
    b.start()
    a.record(row("k", 1.0))
    a.close()
    b.record(row("k", 0.5))  # b re-reads the totals after its own write
    b.close()
    assert b.spend.spent("k") == (1.5, 1.5)
    old = row("k", 7.0, ts=time.time() - 40 * 86400)  # last month or earlier: in no current budget
    c = Ledger(path)
    c.start()
    c.record(old)
    c.close()
    assert Ledger(path).spend.spent("k") == (1.5, 1.5)
    report = usage_report(path, by="key")
    assert report[0]["key"] == "k" and report[0]["requests"] == 3


def test_reservations_count_until_settled(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3")
    ledger.spend.reserve("k", 0.25)
    assert ledger.spend.spent("k") == (0.25, 0.25)
    ledger.spend.settle("k", 0.25, 0.1, time.time())
    assert ledger.spend.spent("k") == (0.1, 0.1)
