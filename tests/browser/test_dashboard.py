"""The dashboard at `/dashboard` in a real browser: refused for non-admin keys; charts, budgets, live state and
the request log from a ledger of real requests made through the gateway; CSV export; 375 px."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from _browser_helpers import ADMIN, DEV, Gateway, Page, traffic
from playwright.sync_api import expect


def test_dashboard_refuses_non_admin_keys(page: Page) -> None:
    p = page.open("/dashboard", DEV)
    expect(p.get_by_test_id("dashboard-error")).to_contain_text("403 admin_required")
    expect(p.get_by_test_id("dashboard-error")).to_contain_text("key 'dev' is not an admin key")
    assert p.get_by_test_id("summary").count() == 0
    p2 = page.open("/dashboard")
    p2.get_by_role("button", name="Forget key").click()
    p2.reload()
    expect(p2.get_by_test_id("dashboard-error")).to_contain_text("401")


def test_dashboard_shows_the_ledger(page: Page, gateway: Gateway) -> None:
    before = gateway.usage("/v1/usage/summary")["requests"]
    ids = traffic(gateway)
    gateway.wait_for_rows(before + 5)
    summary = gateway.usage("/v1/usage/summary")
    p = page.open("/dashboard", ADMIN)
    tiles = p.get_by_test_id("summary")
    expect(tiles).to_contain_text(f"requests{summary['requests']}")
    expect(tiles).to_contain_text(f"errors{summary['errors']}")
    # the day chart is drawn (uPlot's canvas), with its figures in a table
    expect(p.get_by_test_id("day-chart").locator("canvas").first).to_be_visible()
    by_model = {r["model"]: r for r in gateway.usage("/v1/usage/by/model")["rows"]}
    assert by_model["cheap/mini"]["ok"] >= 2 and by_model["premium/large"]["fallbacks"] >= 1
    chart = p.get_by_test_id("by-model")
    expect(chart).to_contain_text("cheap/mini")
    expect(chart).to_contain_text("premium/large")
    expect(chart.locator("meter")).to_have_count(len(by_model))
    expect(p.get_by_test_id("by-key")).to_contain_text("dev")
    expect(p.get_by_test_id("by-task")).to_contain_text("summarization")
    expect(p.get_by_test_id("latency")).to_contain_text("p50")
    providers = {r["provider"]: r for r in gateway.usage("/v1/usage/by/provider")["rows"]}
    assert providers["cheap"]["fallbacks"] >= 1  # cheap/mini failed, premium/large answered
    cheap_row = p.get_by_test_id("by-provider").locator("tr", has_text="cheap")
    expect(cheap_row).to_contain_text(f"{providers['cheap']['fallbacks']} fallbacks")
    budgets = p.get_by_test_id("budgets")
    expect(budgets).to_contain_text("broke")
    expect(budgets.locator("meter").first).to_be_visible()
    expect(p.get_by_test_id("live")).to_contain_text("cheap: ready")
    expect(p.get_by_test_id("live")).to_contain_text("premium/large")
    # the request log: search by request id
    log = p.get_by_test_id("log")
    expect(log.locator("tbody tr").first).to_be_visible()
    p.get_by_label("Search").fill(ids[2])
    expect(log.locator("tbody tr")).to_have_count(1)
    expect(log.locator("tbody tr")).to_contain_text("premium/large")
    expect(log.locator("tbody tr")).to_contain_text("1 fallback")
    expect(log.locator("tbody tr")).to_contain_text("Write a haiku about =SUM(A1)")  # log_prompts: true
    p.get_by_label("Search").fill("")
    p.get_by_label("Outcome").select_option("budget")
    expect(log.locator("tbody tr").first).to_contain_text("broke")
    # the charts drew under the strict CSP: no violation, nothing fetched from elsewhere
    assert [m for m in page.console if "Content Security Policy" in m or m.startswith("uncaught")] == []
    assert page.external == []


def test_csv_export_downloads_the_filtered_log(page: Page, gateway: Gateway) -> None:
    before = gateway.usage("/v1/usage/summary")["requests"]
    ids = traffic(gateway)
    gateway.wait_for_rows(before + 5)
    p = page.open("/dashboard", ADMIN)
    p.get_by_label("Search").fill(ids[2])
    expect(p.get_by_test_id("log").locator("tbody tr")).to_have_count(1)
    with p.expect_download() as info:
        p.get_by_role("button", name="Export CSV").click()
    download = info.value
    assert download.suggested_filename.startswith("llm-router-usage-") and download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert [r["request_id"] for r in rows] == [ids[2]]
    assert rows[0]["model"] == "premium/large" and rows[0]["fallbacks"] == "1" and rows[0]["key_id"] == "dev"
    assert rows[0]["prompt"] == "user: Write a haiku about =SUM(A1)"


def test_dashboard_fits_375_px(make_page: Any, gateway: Gateway) -> None:
    page = make_page(width=375, height=800)
    p = page.open("/dashboard", ADMIN)
    expect(p.get_by_test_id("summary")).to_be_visible()
    expect(p.get_by_test_id("log")).to_be_visible()
    assert p.evaluate("document.documentElement.scrollWidth") <= 375
