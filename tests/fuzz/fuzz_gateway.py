"""Fuzz the gateway with schemathesis, from its own ``/openapi.json`` (``nox -s fuzz``; not a pytest module).

Starts, on 127.0.0.1: the fake OpenAI upstream (tests/fakes) and the gateway's app on uvicorn, with a policy of
two ``openai_compatible`` models behind that upstream (one with a model id outside latin-1), one API key with a
budget, and a small body limit. Then runs ``schemathesis run`` with the check ``not_a_server_error``: any 5xx
answer fails the run (upstream failures are never scripted here, so a 5xx is the gateway's own fault).

Arguments are passed on to ``schemathesis run`` (e.g. ``--max-examples 200 --seed 1``); its exit status is this
script's. Traffic goes to 127.0.0.1 only. Schemathesis runs in a temporary folder (its files go there): give a
report an absolute path (``--report har --report-har-path /tmp/fuzz.har``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the fakes
from fakes import FakeOpenAI
from llm_router import Router
from llm_router.gateway import create_app

KEY = "sk-fuzz-key"
DEFAULT_ARGS = ["--max-examples", "100", "--seed", "15", "--workers", "1"]


def policy(upstream: FakeOpenAI, ledger: Path) -> dict[str, object]:
    price = {"input_per_mtok": 1, "output_per_mtok": 2}
    return {
        "providers": {
            "up": {
                "type": "openai_compatible",
                "base_url": upstream.base_url,
                "http_client": "direct",
                "models": [
                    {"model": "small", "context_window": 32768, "price": price},
                    {"model": "模型", "context_window": 8192, "price": price},
                ],
            }
        },
        "fallback": {"retries": 0, "timeout_s": 10},
        "gateway": {
            "keys": [{"id": "fuzz", "key": KEY, "budget_usd_per_day": 1000}],
            "aliases": {"cheap": ["up/*"]},
            "ledger": str(ledger),
            "max_body_bytes": 65536,
        },
    }


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI() as upstream:
        path = Path(tmp) / "policy.yaml"
        path.write_text(yaml.safe_dump(policy(upstream, Path(tmp) / "usage.sqlite3"), allow_unicode=True), "utf-8")
        app = create_app(Router(path))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                return 2
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        command = [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{base}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {KEY}",
            "--generation-database",
            "none",
            "--no-color",
            *(argv or DEFAULT_ARGS),
        ]
        print("$", " ".join(command).replace(KEY, "***"), flush=True)
        try:
            env = {
                **os.environ,
                "NO_COLOR": "1",
                "SCHEMATHESIS_HOOKS": "gateway_fuzz_hooks",  # steers bodies to known models and real prompts
                "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")])),
            }
            return subprocess.run(command, check=False, env=env, cwd=tmp).returncode  # its files stay in tmp
        finally:
            server.should_exit = True
            thread.join(30)
            sock.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
