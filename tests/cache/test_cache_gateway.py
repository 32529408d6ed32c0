"""The response cache through the gateway: x-router-cache, router.cache, Cache-Control, per-key scope, stream
replay as SSE, the ledger's cache and saved-cost columns, metrics and the JSON request log."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
from _cache_helpers import Server
from _gateway_helpers import server_factory
from llm_router import Router
from llm_router.gateway import create_app
from llm_router_test_plugin import plugin as tp

ALICE, BOB = "sk-cache-alice", "sk-cache-bob"

POLICY = f"""
providers:
  a: {{type: scripted, models: [small, large], price_in: 1, price_out: 2}}
preferences: {{cost: 1}}
fallback: {{retries: 0, backoff_ms: 1, max_backoff_ms: 5, max_models: 2, timeout_s: 5}}
gateway:
  keys:
    - {{id: alice, key_sha256: "{hashlib.sha256(ALICE.encode()).hexdigest()}"}}
    - {{id: bob, key_sha256: "{hashlib.sha256(BOB.encode()).hexdigest()}"}}
cache: {{exact: true%s}}
"""


@pytest.fixture
def make_server(tmp_path: Path, write_policy: Callable[..., Path]) -> Iterator[Callable[..., Server]]:
    yield from server_factory(tmp_path, lambda extra, i: write_policy(POLICY % extra, f"p{i}.yaml"), Server)


def _client(server: Server, key: str = ALICE) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)


def _ask(client: openai.OpenAI, text: str, **kwargs: object) -> tuple[object, httpx.Headers]:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": text}], **kwargs
    )
    return raw.parse(), raw.headers


def test_hit_has_the_same_shape_header_and_ledger_row(make_server: Callable[..., Server]) -> None:
    server = make_server()
    tp.SCRIPTS["a"] = ["text:the answer", "text:another"]
    client = _client(server)
    first, h1 = _ask(client, "cache me")
    second, h2 = _ask(client, "cache me")
    assert (h1["x-router-cache"], h2["x-router-cache"]) == ("miss", "hit")
    assert second.choices[0].message.content == first.choices[0].message.content == "the answer"
    assert second.model == first.model and second.usage.total_tokens == first.usage.total_tokens
    assert float(h2["x-router-cost"]) == 0.0 and float(h1["x-router-cost"]) > 0
    assert len(tp.CALLS) == 1
    server.stop()
    rows = server.ledger()
    assert [r["cache"] for r in rows] == ["miss", "hit"]
    assert rows[1]["cost_usd"] == 0.0 and rows[1]["saved_cost_usd"] == pytest.approx(rows[0]["cost_usd"])
    assert rows[1]["model"] == rows[0]["model"]


def test_scope_key_keeps_keys_apart_and_scope_policy_shares(make_server: Callable[..., Server]) -> None:
    per_key = make_server()
    tp.SCRIPTS["a"] = ["text:alice's", "text:bob's"]
    _ask(_client(per_key, ALICE), "same words")
    answer, headers = _ask(_client(per_key, BOB), "same words")
    assert headers["x-router-cache"] == "miss" and answer.choices[0].message.content == "bob's"
    shared = make_server(", scope: policy")
    tp.SCRIPTS["a"] = ["text:first"]
    _ask(_client(shared, ALICE), "shared words")
    answer, headers = _ask(_client(shared, BOB), "shared words")
    assert headers["x-router-cache"] == "hit" and answer.choices[0].message.content == "first"


def test_router_cache_field_and_cache_control_header(make_server: Callable[..., Server]) -> None:
    server = make_server()
    tp.SCRIPTS["a"] = ["text:one", "text:two", "text:three", "text:four"]
    client = _client(server)
    _, h = _ask(client, "q", extra_body={"router": {"cache": {"no_store": True}}})
    assert h["x-router-cache"] == "miss"
    _, h = _ask(client, "q", extra_headers={"Cache-Control": "no-store"})
    assert h["x-router-cache"] == "miss"  # nothing was stored by either
    answer, h = _ask(client, "q")
    assert h["x-router-cache"] == "miss" and answer.choices[0].message.content == "three"
    answer, h = _ask(client, "q", extra_headers={"Cache-Control": "no-cache"})
    assert h["x-router-cache"] == "bypass" and answer.choices[0].message.content == "four"
    answer, h = _ask(client, "q")
    assert h["x-router-cache"] == "hit" and answer.choices[0].message.content == "four"


def test_bad_router_cache_is_a_422_naming_the_field(make_server: Callable[..., Server]) -> None:
    server = make_server()
    response = httpx.post(
        server.url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {ALICE}"},
        json={"model": "auto", "messages": [{"role": "user", "content": "x"}], "router": {"cache": {"ttl_s": -1}}},
    )
    assert response.status_code in (400, 422)
    assert "ttl_s" in response.text


def test_stream_hit_is_replayed_as_sse_chunks(make_server: Callable[..., Server]) -> None:
    server = make_server()
    tp.SCRIPTS["a"] = ["text:Streamed| answer| here"]
    client = _client(server)
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "stream it"}], stream=True
        )
        if c.choices
    )
    assert text == "Streamed answer here"
    with client.chat.completions.with_streaming_response.create(
        model="auto",
        messages=[{"role": "user", "content": "stream it"}],
        stream=True,
        stream_options={"include_usage": True},
    ) as raw:
        assert raw.headers["x-router-cache"] == "hit"
        chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Streamed answer here"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    assert len(tp.CALLS) == 1
    # a non-streamed request is answered from the streamed answer too
    answer, h = _ask(client, "stream it")
    assert h["x-router-cache"] == "hit" and answer.choices[0].message.content == "Streamed answer here"
    server.stop()
    assert [r["cache"] for r in server.ledger()] == ["miss", "hit", "hit"]


def test_upstream_error_is_not_cached(make_server: Callable[..., Server]) -> None:
    server = make_server()
    tp.SCRIPTS["a"] = ["error:bad_request", "error:bad_request", "text:works now"]
    client = _client(server)
    with pytest.raises(openai.BadRequestError):
        _ask(client, "flaky")
    answer, h = _ask(client, "flaky")
    assert h["x-router-cache"] == "miss" and answer.choices[0].message.content == "works now"


def test_metrics_count_cache_results(make_server: Callable[..., Server]) -> None:
    server = make_server()
    tp.SCRIPTS["a"] = ["text:m"]
    client = _client(server)
    _ask(client, "metric")
    _ask(client, "metric")
    text = httpx.get(server.url + "/metrics").text
    assert 'llm_router_cache_lookups_total{result="hit"} 1.0' in text
    assert 'llm_router_cache_lookups_total{result="miss"} 1.0' in text


def test_no_cache_section_no_header(write_policy: Callable[..., Path], tmp_path: Path) -> None:
    router = Router(write_policy(POLICY.replace("cache: {exact: true%s}", "")))
    server = Server(create_app(router, ledger_path=tmp_path / "l.sqlite3")).start()
    try:
        _, headers = _ask(_client(server), "no cache here")
        assert "x-router-cache" not in headers
    finally:
        server.stop()


def test_one_json_log_line_per_request_without_secrets(
    make_server: Callable[..., Server], caplog: pytest.LogCaptureFixture
) -> None:
    from llm_router.gateway.requestlog import JSONFormatter

    server = make_server()
    tp.SCRIPTS["a"] = ["text:logged"]
    with caplog.at_level(logging.INFO, logger="llm_router.requests"):
        _, headers = _ask(_client(server), "log me")
        _ask(_client(server), "log me")
    records = [r for r in caplog.records if r.name == "llm_router.requests"]
    assert len(records) == 2
    lines = [json.loads(JSONFormatter().format(r)) for r in records]
    first = lines[0]
    assert first["request_id"] == headers["x-request-id"] and first["key_id"] == "alice"
    assert first["status"] == 200 and first["cache"] == "miss" and lines[1]["cache"] == "hit"
    assert first["model"] == headers["x-router-model"] and first["input_tokens"] == 10
    assert {"task", "cost_usd", "latency_ms", "fallbacks", "trace_id"} <= set(first)
    text = "\n".join(JSONFormatter().format(r) for r in records) + "\n".join(r.getMessage() for r in records)
    assert ALICE not in text and "log me" not in text  # no key, no prompt
    assert "key_id=alice" in records[0].getMessage()


def test_request_log_can_be_switched_off(
    write_policy: Callable[..., Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    router = Router(write_policy((POLICY % "") + "telemetry: {request_log: false}\n"))
    server = Server(create_app(router, ledger_path=tmp_path / "l.sqlite3")).start()
    try:
        with caplog.at_level(logging.INFO, logger="llm_router.requests"):
            _ask(_client(server), "quiet")
        assert not [r for r in caplog.records if r.name == "llm_router.requests"]
    finally:
        server.stop()
