"""Shared parts of the browser tests: the policy, `llm-router serve` as a process, the gateway and page handles,
and real traffic through the gateway (imported by conftest.py and the tests; a module of its own, because
`conftest` names several modules of this repository)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the fakes
from fakes import FakeOpenAI

CHROMIUM = os.environ.get("LLM_ROUTER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("LLM_ROUTER_BROWSER_ARTIFACTS", ROOT / ".browser-artifacts"))

ADMIN, DEV, BROKE = "sk-web-admin-0001", "sk-web-dev-0002", "sk-web-broke-0003"

POLICY = """
providers:
  cheap:
    type: openai_compatible
    base_url: {cheap}
    api_key: sk-upstream-cheap
    models: [{{model: mini, context_window: 32768, price: {{input_per_mtok: 0.5, output_per_mtok: 1.5}}}}]
  premium:
    type: openai_compatible
    base_url: {premium}
    api_key: sk-upstream-premium
    models: [{{model: large, context_window: 128000, price: {{input_per_mtok: 10, output_per_mtok: 30}}}}]
routes:
  - models: [cheap/mini, premium/large]
preferences: {{cost: 0.8, quality: 0.2}}
fallback: {{retries: 0, backoff_ms: 1, max_models: 2, timeout_s: 20}}
gateway:
  keys:
    - {{id: admin, key: "{admin}"}}
    # the playground sends no max_tokens: dev's default_max_tokens caps each side-by-side run's output (sent
    # upstream), so each holds prompt + 1,024 tokens ($0.03 at $30/Mtok), not the whole 128k context ($3.84)
    - {{id: dev, key: "{dev}", budget_usd_per_day: 5, default_max_tokens: 1024}}
    - {{id: broke, key: "{broke}", budget_usd_per_day: 0.000000001}}
  admin_keys: [admin]
  log_prompts: true
"""


@dataclass
class Gateway:
    url: str
    ledger: Path
    cheap: FakeOpenAI
    premium: FakeOpenAI
    output: list[str]

    def usage(self, path: str, key: str = ADMIN, **params: Any) -> Any:
        r = httpx.get(f"{self.url}{path}", params=params, headers={"authorization": f"Bearer {key}"}, timeout=10)
        r.raise_for_status()
        return r.json()

    def wait_for_rows(self, n: int) -> None:
        """Until the ledger (written by the gateway's writer thread) holds ``n`` rows."""
        deadline = time.monotonic() + 15
        while self.usage("/v1/usage/summary")["requests"] < n:
            assert time.monotonic() < deadline, "the ledger did not get the rows"
            time.sleep(0.05)


def start_server(policy: Path, ledger: Path) -> tuple[subprocess.Popen[str], list[str], int]:
    exe = Path(sys.executable).with_name("llm-router")
    proc = subprocess.Popen(
        [str(exe), "serve", "--policy", str(policy), "--port", "0", "--ledger", str(ledger)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    stream = proc.stdout
    threading.Thread(target=lambda: lines.extend(stream), daemon=True).start()
    deadline = time.monotonic() + 60
    while True:
        found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", "".join(lines))
        if found:
            return proc, lines, int(found.group(1))
        assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
        time.sleep(0.05)


@dataclass
class Page:
    """A fresh browser context's page on the gateway, with what it logged: console messages, failed and
    external requests."""

    page: Any
    url: str
    console: list[str]
    external: list[str]

    def open(self, path: str = "/", key: str | None = None) -> Any:
        self.page.goto(self.url + path)
        if key is not None:
            self.page.get_by_label("API key").fill(key)
            self.page.get_by_role("button", name="Use key").click()
        return self.page


def traffic(gateway: Gateway) -> list[str]:
    """Real requests through the gateway with the official SDK: two answered by cheap/mini, one by the fallback
    (premium/large) after cheap/mini failed, one streamed, one refused for its budget. Returns the ids."""
    gateway.cheap.reset()
    gateway.premium.reset()
    sdk = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=DEV, max_retries=0)
    ids = []
    gateway.cheap.queue_text("One.", usage=(20, 5))
    gateway.cheap.queue_text("Two.", usage=(20, 5))
    gateway.cheap.queue_error("server")
    gateway.premium.queue_text("Three, from the fallback.", usage=(20, 5))
    for prompt in ("Summarize: cats sleep a lot.", "Translate 'cat' into German", "Write a haiku about =SUM(A1)"):
        r = sdk.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": prompt}])
        ids.append(r.headers["x-request-id"])
    stream = sdk.chat.completions.create(model="auto", messages=[{"role": "user", "content": "Stream it"}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    broke = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=BROKE, max_retries=0)
    try:
        broke.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    except openai.RateLimitError:
        pass
    else:
        raise AssertionError("the budget should have refused the request")
    return ids
