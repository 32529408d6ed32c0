"""Screenshots of both pages in use (the images of docs/web.md and the README).

Written to the artifacts directory on every run; `LLM_ROUTER_DOCS_IMAGES=docs/images nox -s browser` writes the
committed ones.
"""

from __future__ import annotations

import os
from pathlib import Path

from _browser_helpers import ADMIN, ARTIFACTS, DEV, Gateway, Page, traffic
from playwright.sync_api import expect


def _target() -> Path:
    target = Path(os.environ.get("LLM_ROUTER_DOCS_IMAGES") or ARTIFACTS)
    target.mkdir(parents=True, exist_ok=True)
    return target


def test_screenshots_of_both_pages(page: Page, gateway: Gateway) -> None:
    before = gateway.usage("/v1/usage/summary")["requests"]
    traffic(gateway)
    gateway.wait_for_rows(before + 5)
    gateway.cheap.queue_text(
        "Gutenberg's press (c. 1440) made books cheap; literacy and new ideas spread across Europe."
    )
    gateway.premium.queue_text("Around 1440 Johannes Gutenberg built a movable-type press. Books became cheaper.")
    p = page.open("/", DEV)
    p.get_by_label("Prompt").fill("Summarize the history of the printing press in two sentences.")
    p.get_by_label("compare with a baseline model").check()
    p.get_by_label("Baseline model", exact=True).select_option("premium/large")
    p.get_by_role("button", name="Route").click()
    expect(p.get_by_test_id("decision")).to_be_visible()
    p.get_by_role("button", name="Run").click()
    expect(p.get_by_test_id("savings")).to_be_visible()
    target = _target()
    p.screenshot(path=str(target / "playground.png"), full_page=True)
    d = page.open("/dashboard")
    d.get_by_role("button", name="Forget key").click()
    d.get_by_label("API key").fill(ADMIN)
    d.get_by_role("button", name="Use key").click()
    expect(d.get_by_test_id("log").locator("tbody tr").first).to_be_visible()
    d.screenshot(path=str(target / "dashboard.png"), full_page=True)
    for name in ("playground.png", "dashboard.png"):
        assert (target / name).read_bytes().startswith(b"\x89PNG")
