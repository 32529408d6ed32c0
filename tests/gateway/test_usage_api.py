"""`/v1/usage/*` (the dashboard's data) against the ledger of real gateway requests, the stream report the
playground reads, and the web app's pages as the gateway serves them."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import openai
import pytest
from _gateway_helpers import ALICE, BOB, CAROL, Server, wait_for
from llm_router.errors import PolicyError
from llm_router.gateway.usage import _csv_cell
from llm_router.gateway.web import CSP
from llm_router.policy import parse_policy
from llm_router_test_plugin import plugin as tp

ADMIN = "admin_keys: [alice]"
MSG = [{"role": "user", "content": "hello there"}]


def get(server: Server, path: str, api_key: str | None = ALICE, **params: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.get(f"{server.url}{path}", params=params, headers=headers)


def traffic(server: Server) -> list[dict[str, Any]]:
    """Ok, fallback, failed, budget-refused and streamed requests; returns the ledger once all are written."""
    sdk = openai.OpenAI(base_url=f"{server.url}/v1", api_key=ALICE, max_retries=0)
    # a's last step repeats: after two answers, every call to a's models fails
    tp.SCRIPTS["a"] = ["text:one", "text:two two", "error:server_error"]
    tp.SCRIPTS["b"] = ["text:pinned answer"]
    sdk.chat.completions.create(model="auto", messages=MSG)
    sdk.chat.completions.create(model="auto", messages=[{"role": "user", "content": "Translate 'hi' to French"}])
    sdk.chat.completions.create(model="b/only", messages=MSG)
    with pytest.raises(openai.APIStatusError):  # the alias `cheap` (a/*): a/small and a/large both fail
        sdk.chat.completions.create(model="cheap", messages=MSG)
    tp.SCRIPTS["a"] = ["error:server_error", "text:after a fallback"]
    tp.SCRIPTS["b"] = ["text:ok"]
    sdk.chat.completions.create(model="auto", messages=MSG)
    with pytest.raises(openai.RateLimitError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key=CAROL, max_retries=0).chat.completions.create(
            model="a/large", messages=[{"role": "user", "content": "x " * 3000}]
        )
    tp.SCRIPTS["a"] = ["stream:str|eam"]
    assert list(sdk.chat.completions.create(model="auto", messages=MSG, stream=True))
    return wait_for(lambda: len(rows) == 7 and rows if (rows := server.ledger()) else None, "7 ledger rows")


def nearest_rank(values: list[float], pct: int) -> float:
    ordered = sorted(values)
    return round(ordered[math.ceil(len(ordered) * pct / 100) - 1], 2)


def test_usage_needs_an_admin_key(make_server: Callable[..., Server]) -> None:
    server = make_server(ADMIN)
    assert get(server, "/v1/usage/summary").status_code == 200
    refused = get(server, "/v1/usage/summary", BOB)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "admin_required"
    assert "key 'bob' is not an admin key" in refused.json()["error"]["message"]
    for path in ("/v1/usage/by/model", "/v1/usage/budgets", "/v1/usage/live", "/v1/usage/requests.csv"):
        assert get(server, path, BOB).status_code == 403
        assert get(server, path, None).status_code == 401
    assert get(server, "/v1/usage/summary", "sk-wrong").json()["error"]["code"] == "invalid_api_key"
    no_admins = make_server()
    message = get(no_admins, "/v1/usage/summary").json()["error"]["message"]
    assert "the policy lists no gateway.admin_keys" in message


def test_admin_keys_must_name_keys() -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy("gateway:\n  keys:\n    - {id: a, key: x}\n  admin_keys: [a, nobody]\n")
    assert "gateway.admin_keys" in str(err.value) and "nobody" in str(err.value)
    policy, _ = parse_policy("gateway:\n  keys:\n    - {id: a, key: x}\n  admin_keys: [a]\n")
    assert policy.gateway.admin_keys == ["a"]


def test_usage_figures_match_the_ledger(make_server: Callable[..., Server]) -> None:
    server = make_server(ADMIN)
    ledger = traffic(server)
    summary = get(server, "/v1/usage/summary").json()
    ok = [r for r in ledger if r["outcome"] == "ok"]
    assert summary["requests"] == 7 and summary["ok"] == len(ok) == 5
    assert summary["errors"] == 2  # the failed alias request and the budget refusal
    assert summary["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in ledger))
    assert summary["input_tokens"] == sum(r["input_tokens"] for r in ledger)
    lat = [r["latency_ms"] for r in ok]
    assert summary["p50_latency_ms"] == nearest_rank(lat, 50)
    assert summary["p95_latency_ms"] == nearest_rank(lat, 95)

    by_model = {r["model"]: r for r in get(server, "/v1/usage/by/model").json()["rows"]}
    small = [r["latency_ms"] for r in ok if r["model"] == "a/small"]
    assert by_model["a/small"]["ok"] == len(small)
    assert by_model["a/small"]["p95_latency_ms"] == nearest_rank(small, 95)
    assert sum(r["requests"] for r in by_model.values()) == 7
    assert {r["key"] for r in get(server, "/v1/usage/by/key").json()["rows"]} == {"alice", "carol"}
    tasks = {r["task"] for r in get(server, "/v1/usage/by/task").json()["rows"]}
    assert "translation" in tasks
    outcomes = {r["outcome"]: r["requests"] for r in get(server, "/v1/usage/by/outcome").json()["rows"]}
    assert outcomes == {"ok": 5, "error": 1, "budget": 1}

    providers = {r["provider"]: r for r in get(server, "/v1/usage/by/provider").json()["rows"]}
    fell_back = [r for r in ledger if r["fallbacks"]]
    assert [r["error"] for r in fell_back if r["outcome"] == "ok"] == ["fell back from a/small (server_error)"]
    assert providers["a"]["fallbacks"] == 1 and providers["b"]["fallbacks"] == 0
    assert providers["a"]["errors"] == 1  # the alias request failed on a's models (its first choice)

    days = get(server, "/v1/usage/by/day").json()["rows"]
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert len(days) == 30 and days[-1]["day"] == today
    assert days[-1]["requests"] == 7 and all(d["requests"] == 0 for d in days[:-1])
    yesterday = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    assert get(server, "/v1/usage/summary", since=yesterday, until=yesterday).json()["requests"] == 0


def test_request_log_search_pages_and_csv(make_server: Callable[..., Server]) -> None:
    server = make_server(ADMIN + "\nlog_prompts: true")
    ledger = traffic(server)
    page = get(server, "/v1/usage/requests", limit=3).json()
    assert page["total"] == 7 and len(page["rows"]) == 3
    newest = sorted(ledger, key=lambda r: -r["ts"])
    assert [r["request_id"] for r in page["rows"]] == [r["request_id"] for r in newest[:3]]
    rest = get(server, "/v1/usage/requests", limit=10, offset=3).json()["rows"]
    assert len(rest) == 4
    target = next(r for r in ledger if r["outcome"] == "budget")
    found = get(server, "/v1/usage/requests", q=target["request_id"].upper()).json()
    assert found["total"] == 1 and found["rows"][0]["key_id"] == "carol"
    assert get(server, "/v1/usage/requests", q="FELL BACK").json()["total"] == 1  # case-insensitive, in `error`
    assert get(server, "/v1/usage/requests", q="%").json()["total"] == 0  # LIKE wildcards are literal
    assert get(server, "/v1/usage/requests", outcome="error", key="alice").json()["total"] == 1
    assert found["rows"][0]["prompt"].startswith("user: x x")
    r = get(server, "/v1/usage/requests.csv", model="a/small")
    assert r.headers["content-type"].startswith("text/csv")
    assert re.match(r'attachment; filename="llm-router-usage-\d{8}-\d{8}\.csv"', r.headers["content-disposition"])
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert {row["model"] for row in table} == {"a/small"}
    assert len(table) == len([x for x in ledger if x["model"] == "a/small"])
    assert table[0]["time_utc"].endswith("Z") and "prompt" in table[0]


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted() -> None:
    assert [_csv_cell(v) for v in ("=SUM(A1)", "+1", "-2", "@x", "plain", 3, None)] == [
        "'=SUM(A1)",
        "'+1",
        "'-2",
        "'@x",
        "plain",
        3,
        None,
    ]


@pytest.mark.parametrize(
    ("path", "params", "status", "param"),
    [
        ("/v1/usage/summary", {"since": "yesterday"}, 422, "since"),
        ("/v1/usage/summary", {"until": "2026-02-30"}, 422, "until"),
        ("/v1/usage/summary", {"since": "2026-05-02", "until": "2026-05-01"}, 422, "since"),
        ("/v1/usage/summary", {"since": "-5"}, 422, "since"),
        ("/v1/usage/requests.csv", {"until": "1e308"}, 422, "until"),
        ("/v1/usage/summary", {"until": "9999-12-31"}, 422, "until"),
        ("/v1/usage/summary", {"since": "0001-01-01"}, 422, "since"),
        ("/v1/usage/requests", {"limit": "0"}, 422, "limit"),
        ("/v1/usage/requests", {"offset": "x"}, 422, "offset"),
        ("/v1/usage/by/day", {"since": "2020-01-01"}, 422, "since"),
        ("/v1/usage/by/colour", {}, 404, "dimension"),
    ],
)
def test_bad_usage_queries_name_the_parameter(
    make_server: Callable[..., Server], path: str, params: dict[str, str], status: int, param: str
) -> None:
    server = make_server(ADMIN)
    r = get(server, path, **params)
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param


def test_budgets_and_live_state(make_server: Callable[..., Server]) -> None:
    server = make_server(ADMIN)
    traffic(server)
    budgets = {k["key"]: k for k in get(server, "/v1/usage/budgets").json()["keys"]}
    assert budgets["carol"]["budget_usd_per_day"] == 0.00002 and budgets["alice"]["admin"] is True
    spent = sum(r["cost_usd"] for r in server.ledger() if r["key_id"] == "alice")
    assert budgets["alice"]["spent_usd_today"] == pytest.approx(spent)
    assert budgets["alice"]["reserved_usd"] == 0
    live = get(server, "/v1/usage/live").json()
    assert {p["provider"]: p["ready"] for p in live["providers"]} == {"a": True, "b": True}
    measured = {m["model"]: m for m in live["models"]}
    assert "a/small" in measured and measured["a/small"]["circuit"] == "closed"
    assert live["ledger_rows_written"] == 7


def test_stream_report_comment_is_opt_in_and_sdk_safe(make_server: Callable[..., Server]) -> None:
    server = make_server()
    tp.SCRIPTS["a"] = ["error:server_error", "stream:Hel|lo"]

    def stream(headers: dict[str, str]) -> str:
        with httpx.stream(
            "POST",
            f"{server.url}/v1/chat/completions",
            headers={"authorization": f"Bearer {ALICE}", **headers},
            json={"model": "auto", "messages": MSG, "stream": True, "stream_options": {"include_usage": True}},
        ) as r:
            return r.read().decode()

    body = stream({"x-router-stream-report": "1"})
    (comment,) = [e for e in body.split("\n\n") if e.startswith(":")]
    report = json.loads(comment.removeprefix(": x-router-report "))
    assert report["model"] == "a/large" and report["fallbacks"] == 1
    assert [(a["model"], a["outcome"], a["error_kind"]) for a in report["attempts"]] == [
        ("a/small", "error", "server_error"),
        ("a/large", "ok", None),
    ]
    assert report["cost_usd"] == pytest.approx((10 * 2 + 2 * 4) / 1e6)
    assert body.endswith("data: [DONE]\n\n") and body.index(comment) < body.index("[DONE]")
    tp.SCRIPTS["a"] = ["stream:Hel|lo"]
    assert ": x-router-report" not in stream({})
    tp.SCRIPTS["a"] = ["stream:Hel|lo"]
    sdk = openai.OpenAI(base_url=f"{server.url}/v1", api_key=ALICE, max_retries=0)
    chunks = list(
        sdk.chat.completions.create(
            model="auto",
            messages=MSG,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"x-router-stream-report": "1"},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"


def test_pages_are_served_from_the_package_with_a_strict_csp(server: Server) -> None:
    for path in ("/", "/dashboard"):
        r = httpx.get(f"{server.url}{path}", headers={"accept-encoding": "identity"})
        assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-cache"
        assets = re.findall(r'(?:src|href)="(/[^"]+)"', r.text)
        assert any(a.endswith(".js") for a in assets) and not re.search(r"<script>|style=|https?://", r.text)
        for asset in assets:
            a = httpx.get(f"{server.url}{asset}", headers={"accept-encoding": "gzip"})
            assert a.status_code == 200, asset
            assert a.headers["content-security-policy"] == CSP
            if asset.startswith("/assets/"):
                assert "immutable" in a.headers["cache-control"]
                assert a.headers["content-encoding"] == "gzip"
                raw = httpx.get(f"{server.url}{asset}", headers={"accept-encoding": "identity"})
                assert "content-encoding" not in raw.headers
                assert int(a.headers["content-length"]) < len(raw.content)
                assert a.content == raw.content  # httpx decoded the gzip
    assert httpx.get(f"{server.url}/assets/nope.js").status_code == 404
    assert httpx.head(f"{server.url}/").status_code == 200
