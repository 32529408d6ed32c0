"""The playground at `/` in a real browser: route, streamed run, multi-turn, side by side, fallback, wrong key,
budget refusal, HTML injection, CSP, 375 px, keyboard."""

from __future__ import annotations

import re
from typing import Any

from _browser_helpers import BROKE, DEV, Gateway, Page
from playwright.sync_api import expect

PROMPT = "Summarize this paragraph about the history of the printing press in two sentences."

# Records every distinct text the element shows, so a test can tell a streamed answer from one set at once.
WATCH = """(sel) => {
  window.__texts = [];
  const seen = () => { const el = document.querySelector(sel); if (el) window.__texts.push(el.textContent); };
  new MutationObserver(seen).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def _ask(page: Any, prompt: str = PROMPT) -> None:
    page.get_by_label("Prompt").fill(prompt)


def test_route_shows_the_decision_and_rejections(page: Page) -> None:
    p = page.open("/", DEV)
    _ask(p)
    p.get_by_role("button", name="Route").click()
    decision = p.get_by_test_id("decision")
    expect(decision).to_be_visible()
    expect(p.get_by_test_id("selected")).to_have_text("cheap/mini")  # cost-heavy preferences
    rows = decision.locator("table.ranking tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_contain_text("premium/large")
    assert decision.locator("meter").count() >= 4  # a score bar per scorer and model
    expect(decision).to_contain_text("confidence")
    # a constraint: only premium models; the other is listed as rejected with the reason
    p.get_by_label("Allowed models (globs, comma separated)").fill("premium/*")
    p.get_by_role("button", name="Route").click()
    expect(p.get_by_test_id("selected")).to_have_text("premium/large")
    p.get_by_text("rejected").first.click()
    expect(p.get_by_test_id("rejected")).to_contain_text("cheap/mini")
    # "route as I type": the decision follows the prompt without a click
    p.get_by_label("Allowed models (globs, comma separated)").fill("")
    p.get_by_label("route as I type").check()
    _ask(p, "Translate 'good morning' into French")
    expect(p.get_by_test_id("task")).to_have_text("translation")
    assert page.external == []


def test_run_streams_then_reports_and_keeps_the_conversation(page: Page, gateway: Gateway) -> None:
    answer = "The press spread books across Europe. It made knowledge cheap and fast to share."
    gateway.cheap.queue_text(answer, usage=(40, 16), chunk_delay_s=0.03)
    p = page.open("/", DEV)
    p.evaluate(WATCH, "[data-testid=answer]")
    _ask(p)
    p.get_by_role("button", name="Run").click()
    expect(p.get_by_test_id("answered-by")).to_have_text("cheap/mini")
    expect(p.get_by_test_id("answer")).to_have_text(answer)
    texts = [t for t in p.evaluate("window.__texts") if t and t != "…"]
    partial = {t for t in texts if t != answer}
    assert len(partial) >= 3 and all(answer.startswith(t) for t in partial)  # token by token
    expect(p.get_by_test_id("fallbacks")).to_have_text("0")
    # the fake's usage at the policy's prices: (40 * 0.5 + 16 * 1.5) / 1e6 = 0.000044 USD
    expect(p.get_by_test_id("cost")).to_contain_text("$0.0000440 (estimated")
    expect(p.get_by_test_id("run-facts")).to_contain_text("40 in, 16 out")
    # multi-turn: the answer joined the conversation, and the next run sends all of it
    expect(p.get_by_test_id("history")).to_contain_text(answer)
    gateway.cheap.queue_text("Gutenberg, around 1440.")
    p.get_by_label("Next message").fill("Who invented it?")
    p.get_by_role("button", name="Run").click()
    expect(p.get_by_test_id("answer")).to_have_text("Gutenberg, around 1440.")
    sent = gateway.cheap.last.json["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"] == answer and sent[2]["content"] == "Who invented it?"


def test_side_by_side_shows_what_routing_saved(page: Page, gateway: Gateway) -> None:
    gateway.cheap.queue_text("Routed answer.", usage=(30, 10))
    gateway.premium.queue_text("Baseline answer.", usage=(30, 10))
    p = page.open("/", DEV)
    _ask(p)
    p.get_by_label("compare with a baseline model").check()
    p.get_by_label("Baseline model", exact=True).select_option("premium/large")
    p.get_by_role("button", name="Run").click()
    runs = p.get_by_test_id("run")
    expect(runs).to_have_count(2)
    expect(runs.nth(0).get_by_test_id("answered-by")).to_have_text("cheap/mini")
    expect(runs.nth(1).get_by_test_id("answered-by")).to_have_text("premium/large")
    expect(runs.nth(1).get_by_test_id("answer")).to_have_text("Baseline answer.")
    # routed (30 * 0.5 + 10 * 1.5) / 1e6 = $0.00003, baseline (30 * 10 + 10 * 30) / 1e6 = $0.0006
    expect(p.get_by_test_id("savings")).to_contain_text("Routing saved $0.000570 (95 %) against premium/large")


def test_failing_upstream_falls_back_and_says_so(page: Page, gateway: Gateway) -> None:
    gateway.cheap.queue_error("server")
    gateway.premium.queue_text("Answered by the fallback.")
    p = page.open("/", DEV)
    _ask(p)
    p.get_by_role("button", name="Run").click()
    expect(p.get_by_test_id("answered-by")).to_have_text("premium/large")
    expect(p.get_by_test_id("answer")).to_have_text("Answered by the fallback.")
    expect(p.get_by_test_id("fallbacks")).to_contain_text("1")
    expect(p.get_by_test_id("fallbacks")).to_contain_text("cheap/mini failed (server_error)")


def test_wrong_key_is_refused(page: Page) -> None:
    p = page.open("/", "sk-not-a-key")
    expect(p.get_by_test_id("models-error")).to_contain_text("401")
    _ask(p)
    p.get_by_role("button", name="Run").click()
    expect(p.get_by_test_id("run-error")).to_contain_text("401 invalid_api_key: invalid API key")
    assert "sk-not-a-key" not in p.url
    # the key is kept in the tab's session storage, never in a cookie
    assert p.context.cookies() == []
    assert p.evaluate("sessionStorage.getItem('llm-router.key')") == "sk-not-a-key"


def test_budget_refusal_is_shown(page: Page, gateway: Gateway) -> None:
    p = page.open("/", BROKE)
    _ask(p)
    p.get_by_role("button", name="Run").click()
    expect(p.get_by_test_id("run-error")).to_contain_text("429 budget_exceeded")
    expect(p.get_by_test_id("run-error")).to_contain_text("daily budget of key 'broke' exceeded")
    assert gateway.cheap.requests == []  # refused before any upstream call


def test_model_answer_and_prompt_are_rendered_as_text(page: Page, gateway: Gateway) -> None:
    evil = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"><b>bold</b>'
    gateway.cheap.queue_text(evil)
    p = page.open("/", DEV)
    _ask(p, 'Explain <img src=y onerror="window.__pwned = 3"> please')
    p.get_by_role("button", name="Run").click()
    expect(p.get_by_test_id("answer")).to_have_text(evil)
    expect(p.get_by_test_id("history")).to_contain_text("<img src=y")
    assert p.locator("main img, main script, main b").count() == 0
    assert p.evaluate("window.__pwned") is None


def test_pages_carry_a_strict_csp_and_load_nothing_remote(page: Page) -> None:
    violations: list[str] = []
    for path in ("/", "/dashboard"):
        response = page.page.goto(page.url + path)
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        page.page.wait_for_load_state("networkidle")
        violations += [m for m in page.console if "Content Security Policy" in m or m.startswith("uncaught")]
    # an inline script is refused by the policy (the check above is not vacuous)
    page.page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__x=1'; document.body.append(s); }"
    )
    assert page.page.evaluate("window.__x") is None
    assert violations == []
    assert page.external == []


def test_playground_fits_375_px_and_works_by_keyboard(make_page: Any, gateway: Gateway) -> None:
    gateway.cheap.reset()
    gateway.cheap.queue_text("Typed with the keyboard only.")
    page = make_page(width=375, height=800)
    p = page.page
    p.goto(page.url + "/")
    assert p.evaluate("document.documentElement.scrollWidth") <= 375
    # keyboard only: Tab to the key field, type, Enter; Tab to the prompt, type, Ctrl+Enter runs it
    for _ in range(10):
        p.keyboard.press("Tab")
        if p.evaluate("document.activeElement.id") == "api-key":
            break
    assert p.evaluate("document.activeElement.id") == "api-key"
    p.keyboard.type(DEV)
    p.keyboard.press("Enter")
    for _ in range(10):
        p.keyboard.press("Tab")
        if p.evaluate("document.activeElement.id") == "prompt":
            break
    assert p.evaluate("document.activeElement.id") == "prompt"
    p.keyboard.type(PROMPT)
    p.keyboard.press("Control+Enter")
    expect(p.get_by_test_id("answer")).to_have_text("Typed with the keyboard only.")
    assert p.evaluate("document.documentElement.scrollWidth") <= 375
    # every form control has a label
    unlabelled = p.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
             .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
             .map(el => el.outerHTML)"""
    )
    assert unlabelled == []
    assert re.search(r"width=device-width", p.content())


def test_first_load_weight(page: Page) -> None:
    """What chromium actually received: the JavaScript of each page, compressed, under the 300 KB budget; the
    chart library and the dashboard's code only on the dashboard."""
    sizes = {}
    for path in ("/", "/dashboard"):
        page.page.goto(page.url + path)
        page.page.wait_for_load_state("networkidle")
        entries = page.page.evaluate(
            """() => performance.getEntriesByType('resource')
                 .filter(e => e.name.endsWith('.js')).map(e => [e.name, e.encodedBodySize, e.decodedBodySize])"""
        )
        assert all(encoded < decoded for _, encoded, decoded in entries)  # served compressed
        sizes[path] = sum(encoded for _, encoded, _ in entries)
        print(f"{path}: {len(entries)} scripts, {sizes[path]} bytes of JavaScript compressed")
    assert 0 < sizes["/"] < sizes["/dashboard"] < 300 * 1024
