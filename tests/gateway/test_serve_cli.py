"""`llm-router serve` as a real process on a loopback port, `gateway:` policy validation, and `usage` errors."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
from _gateway_helpers import ALICE, policy_text, wait_for
from llm_router.cli import build_app
from llm_router.errors import PolicyError
from llm_router.gateway.ledger import rows
from llm_router.policy import parse_policy
from typer.testing import CliRunner


class _Output:
    """A process's merged stdout and stderr, read line by line in a thread (so that the test can wait for a line
    while the process runs)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout
        self.thread = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self.thread.start()

    def text(self) -> str:
        return "".join(self.lines)


def test_serve_process_answers_the_sdk_and_drains_the_ledger_on_sigterm(
    write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = write_policy(policy_text())
    ledger = tmp_path / "usage.sqlite3"
    exe = Path(sys.executable).with_name("llm-router")
    # --port 0: the system picks a free port when the server binds it (no port picked, released and hoped for)
    proc = subprocess.Popen(
        [str(exe), "serve", "--policy", str(policy), "--port", "0", "--ledger", str(ledger)],
        env={**os.environ, "ALICE_KEY": ALICE},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = _Output(proc)
    try:

        def bound_port() -> int | None:
            assert proc.poll() is None, output.text()
            found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", output.text())
            return int(found.group(1)) if found else None

        port = wait_for(bound_port, "llm-router serve to report its port", timeout=60)
        assert port != 0
        assert httpx.get(f"http://127.0.0.1:{port}/health").json()["status"] == "ok"
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=ALICE, max_retries=0)
        completion = c.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
        assert (completion.model, completion.choices[0].message.content) == ("a/small", "ok")
        chunks = list(
            c.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}], stream=True)
        )
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "ok"
        assert {ch.model for ch in chunks} == {"a/small"}
        assert chunks[-1].choices[0].finish_reason == "stop"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        output.thread.join(10)
    text = output.text()
    # uvicorn shuts down gracefully, then re-raises the signal it caught (so the exit status says SIGTERM)
    assert proc.returncode in (0, -signal.SIGTERM), text
    assert "ledger drained (2 rows written)" in text
    assert ALICE not in text
    assert [(r["outcome"], r["model"], r["stream"]) for r in rows(ledger)] == [
        ("ok", "a/small", 0),
        ("ok", "a/small", 1),
    ]


def test_serve_reports_policy_errors_before_binding(write_policy: Callable[[str], Path]) -> None:
    bad = write_policy("gateway:\n  keys:\n    - {id: x, key: abc, key_sha256: nope}\n")
    result = CliRunner().invoke(build_app(plugins=False), ["serve", "--policy", str(bad), "--port", "1"])
    assert result.exit_code == 2
    assert "gateway.keys[0]" in result.output


def test_open_gateway_is_announced(write_policy: Callable[[str], Path], caplog: pytest.LogCaptureFixture) -> None:
    from _gateway_helpers import Server
    from llm_router import Router
    from llm_router.gateway import create_app

    router = Router(write_policy("providers:\n  a: {type: scripted}\n"))
    server = Server(create_app(router, ledger_path=write_policy("", "x").with_suffix(".sqlite3"))).start()
    try:
        assert httpx.get(f"{server.url}/v1/models").status_code == 200  # no key needed
    finally:
        server.stop()
    assert "OPEN" in caplog.text


def test_keys_are_hashed_at_load() -> None:
    policy, _ = parse_policy(
        "gateway:\n  keys:\n    - {id: a, key: '${K}'}\n    - {id: b, key_sha256: '" + "AB" * 32 + "'}\n",
        env={"K": "sk-secret"},
    )
    a, b = policy.gateway.keys
    assert a.key_sha256 == hashlib.sha256(b"sk-secret").hexdigest()
    assert "sk-secret" not in policy.model_dump_json()
    assert b.key_sha256 == "ab" * 32
    assert policy.gateway.ledger == "./llm-router-usage.sqlite3" and policy.gateway.log_prompts is False


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("[{id: a, key: x, key_sha256: " + "0" * 64 + "}]", "either key or key_sha256"),
        ("[{id: a, key: x}, {id: a, key: y}]", "duplicate key ids"),
        ("[{id: a, key: x}, {id: b, key: x}]", "same secret"),
        ("[{id: a, key_sha256: short}]", "key_sha256"),
        ("[{id: a, key: ''}]", "non-empty"),
    ],
)
def test_bad_gateway_keys(keys: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(f"gateway:\n  keys: {keys}\n")


def test_usage_errors(tmp_path: Path) -> None:
    import sqlite3

    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("these are not the rows you are looking for\n" * 100)
    other_db = tmp_path / "other.sqlite3"
    with sqlite3.connect(other_db) as conn:
        conn.execute("CREATE TABLE t (x)")
    runner, cli = CliRunner(), build_app(plugins=False)
    for args, message in (
        (["--ledger", str(tmp_path / "none.sqlite3")], f"--ledger: no ledger at {tmp_path / 'none.sqlite3'}"),
        (["--ledger", str(tmp_path / "x"), "--by", "colour"], "--by must be one of model, key, task, day, outcome"),
        (["--ledger", str(tmp_path / "x"), "--since", "yesterday"], "--since must be a date like 2026-11-01"),
        (["--ledger", str(not_sqlite)], f"--ledger: {not_sqlite} is not a usage ledger of llm-router serve"),
        (["--ledger", str(other_db)], f"--ledger: {other_db} is not a usage ledger of llm-router serve"),
        (["--ledger", str(tmp_path)], f"--ledger: {tmp_path} is not a usage ledger of llm-router serve"),
    ):
        result = runner.invoke(cli, ["usage", *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in " ".join(result.stderr.split()), (args, result.stderr)
        assert "Traceback" not in result.output
