"""psycopg 3 vs asyncpg for the PostgreSQL usage ledger: the gateway's CPU and the wall time per ledger row.

Writes ``--rows`` real ledger rows in batches of ``--batch`` (the ledger writer's batch) with
``INSERT … ON CONFLICT (request_id) DO NOTHING`` (the ledger's idempotent insert) into a PostgreSQL made by
``initdb`` in a temporary directory (tests/services.py), each driver ``--rounds`` times, interleaved.
Prints, per driver, the median wall time and client CPU (this process: what the gateway pays) per 1,000 rows.

    python benchmarks/bench_ledger_pg.py --rows 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from llm_router.gateway.ledger import LedgerRow
from llm_router.gateway.pg_ledger import COLUMNS, insert_sql, migrate
from services import postgres_server


def make_rows(n: int) -> list[tuple[Any, ...]]:
    out = []
    for i in range(n):
        row = LedgerRow(
            request_id=uuid.uuid4().hex, ts=time.time(), key_id="team-a", endpoint="chat", task="code",
            model="openai/gpt-4.1-mini", input_tokens=120 + i % 50, output_tokens=300, estimated_cost_usd=0.001,
            cost_usd=0.0009, latency_ms=812.5, outcome="ok", status=200, fallbacks=0, stream=bool(i % 3 == 0),
        )  # fmt: skip
        out.append(tuple(getattr(row, c) for c in COLUMNS))
    return out


def with_psycopg(url: str, rows: list[tuple[Any, ...]], batch: int) -> None:
    import psycopg

    sql = insert_sql("%s")
    with psycopg.connect(url, autocommit=False) as conn:
        for i in range(0, len(rows), batch):
            with conn.cursor() as cur:
                cur.executemany(sql, rows[i : i + batch])
            conn.commit()


def with_asyncpg(url: str, rows: list[tuple[Any, ...]], batch: int) -> None:
    import asyncpg

    sql = insert_sql("$")

    async def main() -> None:
        conn = await asyncpg.connect(url)
        try:
            for i in range(0, len(rows), batch):
                async with conn.transaction():
                    await conn.executemany(sql, rows[i : i + batch])
        finally:
            await conn.close()

    asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    drivers = {"psycopg": with_psycopg, "asyncpg": with_asyncpg}
    wall: dict[str, list[float]] = {d: [] for d in drivers}
    cpu: dict[str, list[float]] = {d: [] for d in drivers}
    with postgres_server() as pg:
        import psycopg

        with psycopg.connect(pg.url, autocommit=True) as conn:
            migrate(conn)
        for _ in range(args.rounds):
            for name, write in drivers.items():
                rows = make_rows(args.rows)
                w0, c0 = time.perf_counter(), time.process_time()
                write(pg.url, rows, args.batch)
                wall[name].append((time.perf_counter() - w0) / args.rows * 1000)
                cpu[name].append((time.process_time() - c0) / args.rows * 1000)
    print(f"{args.rows} rows in batches of {args.batch}, {args.rounds} rounds; per 1,000 rows (median, min-max):")
    for name in drivers:
        print(
            f"  {name:8s} wall {statistics.median(wall[name]) * 1000:7.1f} ms ({min(wall[name]) * 1000:.1f}-"
            f"{max(wall[name]) * 1000:.1f})   client CPU {statistics.median(cpu[name]) * 1000:7.1f} ms "
            f"({min(cpu[name]) * 1000:.1f}-{max(cpu[name]) * 1000:.1f})"
        )


if __name__ == "__main__":
    main()
