"""Browser tests of the web app: Playwright driving Debian's chromium against a real `llm-router serve` process,
whose two providers (`cheap/mini`, `premium/large`, openai_compatible) are the faithful OpenAI fake of
tests/fakes. One server and one browser for the module; each test gets a fresh browser context (so a fresh
session storage). A failing test leaves a screenshot of its page in $LLM_ROUTER_BROWSER_ARTIFACTS (default
.browser-artifacts/ at the repository's root).

Run with `nox -s browser` (CI runs it after `apt-get install -y chromium`).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

playwright_sync = pytest.importorskip("playwright.sync_api", reason="pip install playwright (nox -s browser)")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the fakes
from fakes import FakeOpenAI  # noqa: E402

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
    - {{id: dev, key: "{dev}", budget_usd_per_day: 5}}
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


def _start(policy: Path, ledger: Path) -> tuple[subprocess.Popen[str], list[str], int]:
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


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("web")
    with FakeOpenAI() as cheap, FakeOpenAI() as premium:
        policy = tmp / "policy.yaml"
        policy.write_text(
            POLICY.format(cheap=cheap.base_url, premium=premium.base_url, admin=ADMIN, dev=DEV, broke=BROKE),
            encoding="utf-8",
        )
        ledger = tmp / "usage.sqlite3"
        proc, lines, port = _start(policy, ledger)
        try:
            yield Gateway(f"http://127.0.0.1:{port}", ledger, cheap, premium, lines)  # type: ignore[arg-type]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no chromium at {CHROMIUM}: apt-get install -y chromium (or set LLM_ROUTER_CHROMIUM)")
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


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


@pytest.fixture
def make_page(browser: Any, gateway: Gateway, request: pytest.FixtureRequest) -> Iterator[Callable[..., Page]]:
    contexts: list[tuple[Any, Page]] = []

    def make(width: int = 1280, height: int = 900) -> Page:
        context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        page = context.new_page()
        wrapped = Page(page, gateway.url, [], [])
        page.on("console", lambda m: wrapped.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: wrapped.console.append(f"uncaught: {e}"))
        page.on(
            "request",
            lambda r: None if r.url.startswith((gateway.url, "data:", "blob:")) else wrapped.external.append(r.url),
        )
        contexts.append((context, wrapped))
        return wrapped

    yield make
    failed = request.node.stash.get(_FAILED, True)
    for i, (context, wrapped) in enumerate(contexts):
        if failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / f"{request.node.name}-{i}.png"
            wrapped.page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the failed test's page: {shot}")
        context.close()


@pytest.fixture
def page(make_page: Callable[..., Page], gateway: Gateway) -> Page:
    gateway.cheap.reset()
    gateway.premium.reset()
    return make_page()
