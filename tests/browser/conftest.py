"""Browser tests of the web app: Playwright driving Debian's chromium against a real `llm-router serve` process,
whose two providers (`cheap/mini`, `premium/large`, openai_compatible) are the faithful OpenAI fake of
tests/fakes. One server for the run and one browser per module; each test gets a fresh browser context (so a fresh
session storage). A failing test leaves a screenshot of its page in $LLM_ROUTER_BROWSER_ARTIFACTS (default
.browser-artifacts/ at the repository's root).

Run with `nox -s browser` (CI runs it after `apt-get install -y chromium`).
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

playwright_sync = pytest.importorskip("playwright.sync_api", reason="pip install playwright (nox -s browser)")

from _browser_helpers import (  # noqa: E402
    ADMIN,
    ARTIFACTS,
    BROKE,
    CHROMIUM,
    CHROMIUM_ARGS,
    DEV,
    POLICY,
    FakeOpenAI,
    Gateway,
    Page,
    start_server,
)


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
        proc, lines, port = start_server(policy, ledger)
        try:
            yield Gateway(f"http://127.0.0.1:{port}", ledger, cheap, premium, lines)  # type: ignore[arg-type]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


@pytest.fixture(scope="module")  # module: Playwright's sync API holds an event loop while it runs, which the
def browser() -> Iterator[Any]:  # async tests of other modules (anyio's runner) must not find running
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
