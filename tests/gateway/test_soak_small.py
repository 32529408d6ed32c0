"""The fleet soak (``tests/soak/soak.py``, ``nox -s soak``) at a small scale in the default run, so that the
harness keeps working: two real gateways, Redis, PostgreSQL and three fault-injecting upstreams, 600 requests,
Redis and PostgreSQL killed for 2 s each. The scale-free targets are checked here; the full run's figures are in
docs/reliability.md#the-soak."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("redis", reason="the redis extra is not installed (pip install 'llm-router[redis]')")
pytest.importorskip("psycopg", reason="the postgres extra is not installed (pip install 'llm-router[postgres]')")
pytest.importorskip("llm_router_openai")

SOAK = Path(__file__).resolve().parents[1] / "soak" / "soak.py"


@pytest.mark.timeout(300)
def test_a_small_soak_answers_everything_and_the_ledger_is_whole_and_exact(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    report = tmp_path / "report.json"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    args = ["--requests", "600", "--concurrency", "20", "--kill-s", "2", "--seed", "3", "--json", str(report)]
    cmd = [sys.executable, str(SOAK), *args]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=280, env=env)
    if not report.exists():
        if "needs redis-server and PostgreSQL" in done.stderr:
            pytest.skip(done.stderr.strip())
        raise AssertionError(done.stdout + done.stderr)
    r = json.loads(report.read_text())
    assert r["answered"]["untyped"] == 0, r["untyped_examples"]
    assert r["answered"]["ok"] + r["answered"]["typed_error"] == 600
    assert (r["ledger_rows"], r["ledger_duplicates"], r["requests_without_row"]) == (600, 0, 0)
    assert r["k4_overspend_usd"] == 0
    answered = r["cost_usd"]["answered"]
    assert answered["ledger"] == pytest.approx(answered["upstream"], abs=1e-5)  # each sum is rounded to the µ$
    assert r["cost_usd"]["errors_before_any_text"]["ledger"] == 0
    assert sum(f for u in r["upstreams"] for f in u["faults"].values()) > 60  # the faults did happen
    kills = r["five_xx_during_kills"]
    assert all(v["5xx_others"] == 0 for v in kills.values()), json.dumps(kills, indent=1)
    assert {e["what"] for e in r["events"]} >= {"redis", "postgres"}
