"""`llm-router serve --workers 2` with `state: {backend: redis}`: a burst on a small budget, spread by the
kernel over two worker processes, spends at most the budget (alone, each worker would admit up to all of it),
and the shared SQLite ledger has one row per request."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from _gateway_helpers import wait_for
from llm_router.gateway.ledger import rows
from services import free_port, redis_server

pytest.importorskip("redis", reason="the redis extra is not installed (pip install 'llm-router[redis]')")

BUDGET = 0.0001
POLICY = """
providers:
  a: {{type: scripted, models: [small], price_in: 1, price_out: 2}}
fallback: {{retries: 0, max_models: 1}}
gateway:
  keys:
    - {{id: w, key_sha256: {sha}, budget_usd_per_day: {budget}}}
state: {{backend: redis, url: '{url}', refresh_ms: 50}}
"""


def test_two_workers_share_one_budget(tmp_path: Path, write_policy: Callable[..., Path]) -> None:
    exe = Path(sys.executable).parent / "llm-router"
    with redis_server() as redis:
        sha = hashlib.sha256(b"sk-w").hexdigest()
        path = write_policy(POLICY.format(sha=sha, budget=BUDGET, url=redis.url))
        ledger = tmp_path / "usage.sqlite3"
        port = free_port()
        env = {**os.environ, "LLM_ROUTER_DISABLE_PLUGIN_AUTOLOAD": ""}
        proc = subprocess.Popen(  # the real command line, two worker processes
            [str(exe), "serve", "--policy", str(path), "--port", str(port), "--workers", "2",
             "--ledger", str(ledger), "--log-level", "warning"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: _health(url), "two workers to serve", timeout=60)

            def one(_: int) -> int:
                # max_tokens 3: the worst case held (counted prompt + 3 output tokens) covers what the scripted
                # provider bills (10 prompt tokens, whatever the prompt, and 1 output token)
                body = {"model": "auto", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 3}
                headers = {"authorization": "Bearer sk-w"}
                return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=30).status_code

            with concurrent.futures.ThreadPoolExecutor(10) as pool:
                statuses = list(pool.map(one, range(30)))
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=60)
        assert set(statuses) == {200, 429}, err
        got = list(rows(ledger))
        assert len(got) == 30  # both workers' rows, none lost
        spent = sum(r["cost_usd"] for r in got)
        per_call = (10 * 1 + 1 * 2) / 1e6
        assert spent <= BUDGET
        assert spent == pytest.approx(statuses.count(200) * per_call)
        assert spent > BUDGET - 2 * per_call  # and the budget was used, not refused early


def _health(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_workers_with_state_in_memory_warn_about_budgets(write_policy: Callable[..., Path], tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "llm-router"
    sha = hashlib.sha256(b"sk-w").hexdigest()
    text = POLICY.format(sha=sha, budget=BUDGET, url="").replace("state: {backend: redis, url: '', refresh_ms: 50}", "")
    path = write_policy(text)
    proc = subprocess.Popen(
        [str(exe), "serve", "--policy", str(path), "--port", str(free_port()), "--workers", "2",
         "--ledger", str(tmp_path / "u.sqlite3"), "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        seen = ""
        for line in proc.stderr:  # the warning comes before the workers start
            seen += line
            if "state is in memory" in seen:
                break
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert "each of the 2 workers enforces the keys' budgets and rate limits on its own" in " ".join(seen.split())
