"""The usage ledger on a real PostgreSQL (initdb in a temporary directory): same rows as SQLite, versioned
migrations, `llm-router usage` on it, and no row lost nor written twice when PostgreSQL goes away."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _gateway_helpers import wait_for
from llm_router.gateway.ledger import LedgerRow, rows, usage_report
from llm_router_test_plugin import plugin as tp
from services import PostgresServer, postgres_server
from test_gateway_limits import MSG, client, key_line, policy, start

psycopg = pytest.importorskip("psycopg", reason="the postgres extra is not installed: pip install llm-router[postgres]")

from llm_router.gateway.pg_ledger import MIGRATIONS, PostgresLedger, migrate  # noqa: E402


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def url(pg: PostgresServer) -> str:
    """A fresh database of the module's server for each test."""
    name = f"t{time.time_ns()}"
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg.url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(autouse=True)
def _reset() -> None:
    tp.SCRIPTS.clear()
    tp.CALLS.clear()


def row(request_id: str, cost: float = 0.001, key: str = "k") -> LedgerRow:
    now = time.time()
    return LedgerRow(request_id, now, key, "chat", "chat", "a/small", 10, 5, cost, cost, 12.5, "ok", 200, 0, True)


def test_gateway_writes_the_same_rows_and_usage_reads_them(
    tmp_path: Path, write_policy: Callable[..., Path], url: str
) -> None:
    tp.SCRIPTS["a"] = ["text:one two three"]
    server = start(tmp_path, write_policy, policy([key_line("ann", budget_usd_per_day=1)]), ledger=url)
    try:
        for _ in range(3):
            client(server, "ann").chat.completions.create(model="auto", messages=MSG)
        stream = client(server, "ann").chat.completions.create(model="auto", messages=MSG, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    finally:
        server.stop()
    got = list(rows(url))
    assert len(got) == 4
    assert {r["key_id"] for r in got} == {"ann"}
    assert [r["stream"] for r in got] == [0, 0, 0, 1]
    assert sum(r["cost_usd"] for r in got) == pytest.approx(3 * (10 + 3 * 2) / 1e6 + (10 + 1 * 2) / 1e6)
    report = usage_report(url, by="key")
    assert report[0]["key"] == "ann" and report[0]["requests"] == 4 and report[0]["ok"] == 4
    # `llm-router usage` reads it (the password, if any, never printed)
    from llm_router.cli import build_app
    from typer.testing import CliRunner

    result = CliRunner().invoke(build_app(), ["usage", "--ledger", url, "--by", "day", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["rows"][0]["requests"] == 4


def test_budget_is_read_back_from_postgres(tmp_path: Path, write_policy: Callable[..., Path], url: str) -> None:
    ledger = PostgresLedger(url)
    ledger.start()
    ledger.record(row("r1", cost=0.5, key="ann"))
    ledger.close()
    again = PostgresLedger(url)
    assert again.spend.totals("ann")[:2] == (0.5, 0.5)
    again.close()


def test_migrations_are_versioned_and_add_new_columns(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        assert migrate(conn) == MIGRATIONS[-1][0]
        assert migrate(conn) == MIGRATIONS[-1][0]  # applied once
        versions = conn.execute("SELECT version FROM llm_router_schema").fetchall()
        assert versions == [(v,) for v, _, _ in MIGRATIONS]
        # an older table without a column LedgerRow now has: the column is added at start-up
        conn.execute("ALTER TABLE usage DROP COLUMN prompt")
        migrate(conn)
        sql = "SELECT column_name FROM information_schema.columns WHERE table_name = 'usage'"
        cols = {r[0] for r in conn.execute(sql)}
        assert "prompt" in cols


def test_outage_spools_and_replays_each_row_once(tmp_path: Path, url: str, pg: PostgresServer) -> None:
    ledger = PostgresLedger(url, spool_dir=tmp_path, retry_s=0.05)
    ledger.start()
    try:
        ledger.record(row("before"))
        wait_for(lambda: ledger.written == 1, "the first row")
        pg.stop()
        for i in range(5):
            ledger.record(row(f"during-{i}"))
        wait_for(lambda: ledger.spooled == 5, "five rows in the spool")
        assert ledger.spool.exists() and not ledger.up
        spooled = ledger.spool.read_text()
        pg.start()
        ledger.record(row("after"))
        wait_for(lambda: ledger.up and not ledger.spool.exists() and ledger.replayed >= 5, "the replay")
        wait_for(lambda: len(list(rows(url))) == 7, "every row in PostgreSQL")
    finally:
        ledger.close()
    ids = [r["request_id"] for r in rows(url)]
    assert sorted(ids) == sorted(["before", "after", *(f"during-{i}" for i in range(5))])
    # a spool replayed again (a crash before its file was removed) adds nothing
    orphan = tmp_path / "llm-router-ledger-spool-999999999.jsonl"
    orphan.write_text(spooled)
    again = PostgresLedger(url, spool_dir=tmp_path)
    again.close()
    assert not orphan.exists()
    assert len(list(rows(url))) == 7


def test_gateway_starts_with_postgres_away_and_loses_nothing(
    tmp_path: Path, write_policy: Callable[..., Path], url: str, pg: PostgresServer
) -> None:
    pg.stop()
    try:
        cwd = os.getcwd()
        os.chdir(tmp_path)  # the spool goes to the working directory
        try:
            server = start(tmp_path, write_policy, policy([key_line("bo")]), ledger=url)
        finally:
            os.chdir(cwd)
        for _ in range(3):
            client(server, "bo").chat.completions.create(model="auto", messages=MSG)
        ledger = server.gateway.ledger
        wait_for(lambda: ledger.spooled == 3, "three spooled rows")
    finally:
        pg.start()
    server.stop()  # drains on shutdown: the spool is replayed now that PostgreSQL is back, or at the next start
    if list(tmp_path.glob("llm-router-ledger-spool-*.jsonl")):
        PostgresLedger(url, spool_dir=tmp_path).close()
    assert len(list(rows(url))) == 3


def test_passwords_stay_out_of_reprs_and_logs(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    from llm_router.gateway.pg_ledger import redact
    from llm_router.policy import GatewayPolicy, StatePolicy

    secret = "s3cret-pw"
    url = f"postgresql://llmr:{secret}@127.0.0.1:1/llmr"  # nothing listens on port 1: unreachable
    assert secret not in repr(GatewayPolicy(ledger=url))
    assert secret not in repr(StatePolicy(backend="redis", url=f"redis://:{secret}@127.0.0.1:1/0"))
    assert redact(url) == "postgresql://llmr:***@127.0.0.1:1/llmr"
    ledger = PostgresLedger(url, spool_dir=tmp_path)
    ledger.close()
    assert ledger.path == redact(url)
    assert "unreachable" in caplog.text and secret not in caplog.text


def test_usage_api_feedback_and_ab_report_read_the_postgres_ledger(
    tmp_path: Path, write_policy: Callable[..., Path], url: str
) -> None:
    """What the SQLite ledger serves, PostgreSQL serves too: the dashboard's `/v1/usage/*` queries, feedback
    rows from `/v1/feedback`, and `llm-router ab report`'s variant rows."""
    import httpx
    from llm_router.abtest import ab_report, ledger_rows

    tp.SCRIPTS["a"] = ["text:one two three"]
    extra = (
        "  admin_keys: [ann]\n"
        "experiments:\n"
        "  - name: thrift\n"
        "    split_by: key\n"
        "    variants:\n"
        "      control: {}\n"
        "      other: {}\n"
    )
    server = start(tmp_path, write_policy, policy([key_line("ann"), key_line("bob")], extra), ledger=url)
    try:
        ids = []
        for who in ("ann", "ann", "bob"):
            r = httpx.post(
                f"{server.url}/v1/chat/completions",
                headers={"authorization": f"Bearer {who}"},
                json={"model": "auto", "messages": MSG},
            )
            assert r.status_code == 200, r.text
            assert r.headers["x-router-variant"] in {"thrift=control", "thrift=other"}
            ids.append(r.headers["x-request-id"])
        fb = httpx.post(
            f"{server.url}/v1/feedback",
            headers={"authorization": "Bearer ann"},
            json={"request_id": ids[0], "rating": 1},
        )
        assert fb.status_code == 200, fb.text
        wait_for(lambda: len(list(rows(url))) == 3, "three ledger rows")
        admin = {"authorization": "Bearer ann"}
        summary = httpx.get(f"{server.url}/v1/usage/summary", headers=admin).json()
        assert summary["requests"] == 3, summary
        by_key = httpx.get(f"{server.url}/v1/usage/by/key", headers=admin).json()
        assert {g["key"]: g["requests"] for g in by_key["rows"]} == {"ann": 2, "bob": 1}, by_key
        by_day = httpx.get(f"{server.url}/v1/usage/by/day", headers=admin).json()
        assert sum(d["requests"] for d in by_day["rows"]) == 3, by_day
        log = httpx.get(f"{server.url}/v1/usage/requests", headers=admin, params={"q": "bob"}).json()
        assert [r["request_id"] for r in log["rows"]] == [ids[2]], log
        csv = httpx.get(f"{server.url}/v1/usage/requests.csv", headers=admin)
        assert csv.status_code == 200 and csv.text.count("\n") == 4, csv.text
        assert httpx.get(f"{server.url}/v1/usage/summary", headers={"authorization": "Bearer bob"}).status_code == 403
    finally:
        server.stop()
    variants = ledger_rows(url)
    assert len(variants) == 3 and {v["variant"] for v in variants} <= {"thrift=control", "thrift=other"}
    assert sorted(v["rating"] for v in variants if v["rating"] is not None) == [1.0]
    report = ab_report(variants, None, None)
    assert report["experiment"] == "thrift"


def test_spool_directory_and_bound_come_from_the_policy(
    tmp_path: Path, write_policy: Callable[..., Path], url: str, pg: PostgresServer
) -> None:
    """`gateway.ledger_spool` names the spool's directory (created if missing) and `ledger_spool_max_mb` bounds
    one process's spool: rows beyond it are counted lost (`failed`), never written past the bound."""
    spool_dir = tmp_path / "spool" / "gw1"
    extra = f"  ledger_spool: {spool_dir}\n  ledger_spool_max_mb: 0.001\n"  # 1,048 bytes: two or three rows
    pg.stop()
    try:
        server = start(tmp_path, write_policy, policy([key_line("cy")], extra), ledger=url)
        try:
            for _ in range(6):
                client(server, "cy").chat.completions.create(model="auto", messages=MSG)
            ledger = server.gateway.ledger
            wait_for(lambda: ledger.spooled + ledger.failed == 6, "six rows spooled or counted lost")
        finally:
            server.stop()
    finally:
        pg.start()
    assert isinstance(ledger, PostgresLedger)
    assert ledger.spool.parent == spool_dir.resolve()
    assert ledger.spooled >= 1 and ledger.failed >= 1
    assert ledger.spool.stat().st_size <= 1024 * 1024 * 0.001
    assert not list(tmp_path.glob("llm-router-ledger-spool-*.jsonl"))  # not in the working directory
    PostgresLedger(url, spool_dir=spool_dir).close()  # the next start in that directory replays it
    assert len(list(rows(url))) == ledger.spooled
    assert not list(spool_dir.glob("*.jsonl"))
