"""The gateway over HTTP: the OpenAI SDK (sync, async, streaming) and raw httpx against uvicorn in a thread."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import anyio
import httpx
import openai
import pytest
from _gateway_helpers import ALICE, BOB, CAROL, Server, wait_for
from llm_router.cli import build_app
from llm_router_test_plugin import plugin as tp
from typer.testing import CliRunner

MSG = [{"role": "user", "content": "hello there"}]


def client(server: Server, key: str = ALICE) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


# ------------------------------------------------------------------------------------------------
# OpenAI SDK


def test_sdk_sync_auto_routes_and_reports_headers(server: Server) -> None:
    tp.SCRIPTS["a"] = ["text:hello from a"]
    raw = client(server).chat.completions.with_raw_response.create(model="auto", messages=MSG)
    completion = raw.parse()
    assert completion.choices[0].message.content == "hello from a"
    assert completion.model == "a/small"
    assert completion.usage is not None and completion.usage.prompt_tokens == 10
    (decision,) = [p for h, p in tp.EVENTS if h == "on_decision"]
    assert raw.headers["x-router-model"] == "a/small"
    assert raw.headers["x-router-task"] == decision.classification.task
    assert raw.headers["x-router-decision-ms"] == f"{decision.routing_time_ms:.3f}"
    assert raw.headers["x-router-estimated-cost"] == f"{decision.top.estimated_cost:.8f}"
    assert decision.top.estimated_cost > 0
    assert float(raw.headers["x-router-cost"]) == pytest.approx((10 * 1 + 3 * 2) / 1e6)
    assert raw.headers["x-router-fallbacks"] == "0"
    assert raw.headers["x-router-reason"].startswith(f"a/small: {decision.classification.task} (rules ")
    assert raw.headers["x-request-id"] == completion.id.removeprefix("chatcmpl-")


def test_sdk_async_explicit_model_and_router_options(server: Server) -> None:
    async def main() -> tuple[str, str]:
        async with openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key=ALICE, max_retries=0) as c:
            pinned = await c.chat.completions.create(model="b/only", messages=MSG)
            # preferences and constraints in the extra body field: only a/large is allowed
            steered = await c.chat.completions.create(
                model="auto",
                messages=MSG,
                extra_body={"router": {"preferences": {"cost": 1}, "constraints": {"allowed_models": ["a/large"]}}},
            )
            return pinned.model, steered.model

    assert anyio.run(main) == ("b/only", "a/large")


def test_router_headers_steer_routing(server: Server) -> None:
    r = httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {ALICE}", "x-router-constraints": '{"blocked_models": ["a/small"]}'},
        json={"model": "auto", "messages": MSG},
    )
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "a/large"


def test_explicit_model_falls_back_along_the_ranking(server: Server) -> None:
    tp.SCRIPTS["b"] = ["error:server_error"]
    raw = client(server).chat.completions.with_raw_response.create(model="b/only", messages=MSG)
    assert raw.parse().model == "a/small"
    assert raw.headers["x-router-fallbacks"] == "1"
    assert [name for name, _ in tp.CALLS] == ["b", "a"]


def test_alias_routes_among_its_models(server: Server) -> None:
    tp.SCRIPTS["a"] = ["error:server_error"]
    with pytest.raises(openai.APIStatusError) as err:
        client(server).chat.completions.create(model="cheap", messages=MSG)
    assert err.value.status_code == 502
    assert {name for name, _ in tp.CALLS} == {"a"}  # b/only is not in the alias


def test_sdk_streaming_with_usage_chunk(server: Server) -> None:
    tp.SCRIPTS["a"] = ["stream:Hel|lo| world"]
    stream = client(server).chat.completions.create(
        model="auto", messages=MSG, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello world"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (10, 3)
    assert all(c.model == "a/small" for c in chunks)


def test_raw_sse_format(server: Server) -> None:
    tp.SCRIPTS["a"] = ["stream:x|y"]
    with httpx.stream(
        "POST",
        f"{server.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {ALICE}"},
        json={"model": "auto", "messages": MSG, "stream": True},
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-router-model"] == "a/small"
        body = r.read().decode()
    events = [e for e in body.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    payloads = [json.loads(e[6:]) for e in events[:-1]]
    assert {p["object"] for p in payloads} == {"chat.completion.chunk"}
    assert all("usage" not in p for p in payloads)  # no usage field unless include_usage


def test_stream_failure_before_text_is_an_http_error_and_falls_back(server: Server) -> None:
    tp.SCRIPTS["a"] = ["error:rate_limit"]
    tp.SCRIPTS["b"] = ["stream:from|b"]
    chunks = list(client(server).chat.completions.create(model="auto", messages=MSG, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "fromb"
    assert chunks[0].model == "b/only"


def test_stream_failure_after_text_is_reported_in_band(server: Server) -> None:
    tp.SCRIPTS["a"] = ["streamfail:par|tial"]
    with pytest.raises(openai.APIError):
        list(client(server).chat.completions.create(model="a/small", messages=MSG, stream=True))
    server.stop()
    (row,) = server.ledger()
    assert row["outcome"] == "error" and row["model"] == "a/small"


# ------------------------------------------------------------------------------------------------
# auth, permissions, budgets


def test_auth_401_and_403(server: Server) -> None:
    with pytest.raises(openai.AuthenticationError) as err:
        client(server, "sk-wrong").chat.completions.create(model="auto", messages=MSG)
    assert err.value.status_code == 401
    assert err.value.body["code"] == "invalid_api_key"  # type: ignore[index]
    r = httpx.post(f"{server.url}/v1/chat/completions", json={"model": "auto", "messages": MSG})
    assert r.status_code == 401
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    with pytest.raises(openai.PermissionDeniedError) as err403:
        client(server, BOB).chat.completions.create(model="b/only", messages=MSG)
    assert err403.value.body["param"] == "model"  # type: ignore[index]
    # bob's auto requests stay inside his allowed models
    assert client(server, BOB).chat.completions.create(model="auto", messages=MSG).model == "a/small"
    assert tp.CALLS and all(req.model == "small" for _, req in tp.CALLS)


def test_models_lists_what_the_key_may_use(server: Server) -> None:
    ids = [m.id for m in client(server, BOB).models.list()]
    assert ids == ["auto", "cheap", "a/small"]
    assert {"a/small", "a/large", "b/only"} <= {m.id for m in client(server).models.list()}


def test_budget_429_after_a_streamed_call(server: Server) -> None:
    tp.SCRIPTS["a"] = ["stream:one|two|three"]
    c = client(server, CAROL)
    chunks = list(
        c.chat.completions.create(
            model="auto", messages=MSG, max_tokens=1, stream=True, stream_options={"include_usage": True}
        )
    )
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (10, 3)
    with pytest.raises(openai.RateLimitError) as err:
        c.chat.completions.create(model="auto", messages=MSG, max_tokens=1)
    assert err.value.body["code"] == "budget_exceeded"  # type: ignore[index]
    assert "daily budget" in err.value.message
    assert len(tp.CALLS) == 1  # the refused request reached no provider


def test_budget_is_read_back_from_the_ledger(make_server: Callable[..., Server], tmp_path: object) -> None:
    first = make_server()
    client(first, CAROL).chat.completions.create(model="auto", messages=MSG, max_tokens=1)
    first.stop()
    from llm_router import Router
    from llm_router.gateway import create_app

    # a new gateway (same policy) on the same ledger knows what carol spent today
    router = Router(first.gateway.router.policy)
    again = Server(create_app(router, ledger_path=first.gateway.ledger.path)).start()
    try:
        with pytest.raises(openai.RateLimitError) as err:
            client(again, CAROL).chat.completions.create(model="auto", messages=MSG, max_tokens=1)
        assert err.value.body["code"] == "budget_exceeded"  # type: ignore[index]
        assert len(tp.CALLS) == 1  # the first gateway's call only
    finally:
        again.stop()


# ------------------------------------------------------------------------------------------------
# ledger, usage, metrics, feedback


def test_ledger_rows_and_usage_report(server: Server) -> None:
    tp.SCRIPTS["a"] = ["text:one two"]
    c = client(server)
    c.chat.completions.create(model="auto", messages=MSG)
    c.chat.completions.create(model="b/only", messages=MSG)
    with pytest.raises(openai.PermissionDeniedError):
        client(server, BOB).chat.completions.create(model="b/only", messages=MSG)
    server.stop()  # lifespan shutdown drains the writer thread
    rows = server.ledger()
    assert [(r["key_id"], r["model"], r["outcome"], r["status"]) for r in rows] == [
        ("alice", "a/small", "ok", 200),
        ("alice", "b/only", "ok", 200),
        ("bob", None, "auth", 403),
    ]
    first = rows[0]
    decisions = [p for h, p in tp.EVENTS if h == "on_decision"]
    assert first["task"] == decisions[0].classification.task
    assert first["input_tokens"] == 10 and first["output_tokens"] == 2
    assert first["cost_usd"] == pytest.approx((10 + 4) / 1e6)
    assert first["request_id"] == decisions[0].request_id
    assert first["prompt"] is None
    cli = build_app(plugins=False)
    result = CliRunner().invoke(cli, ["usage", "--ledger", str(server.gateway.ledger.path), "--by", "key", "--json"])
    assert result.exit_code == 0, result.output
    report = {r["key"]: r for r in json.loads(result.output)["rows"]}
    assert report["alice"]["requests"] == 2 and report["bob"]["errors"] == 1
    table = CliRunner().invoke(cli, ["usage", "--ledger", str(server.gateway.ledger.path), "--since", "2020-01-01"])
    assert table.exit_code == 0 and "a/small" in table.output


def test_metrics_text(server: Server) -> None:
    tp.SCRIPTS["a"] = ["error:server_error", "text:ok"]
    client(server).chat.completions.create(model="auto", messages=MSG)
    text = httpx.get(f"{server.url}/metrics").text
    for name in (
        'llm_router_requests_total{endpoint="chat",model="a/large",status="200"} 1.0',
        "llm_router_request_duration_seconds_bucket",
        "llm_router_decision_seconds_bucket",
        'llm_router_tokens_total{direction="input",model="a/large"} 10.0',
        "llm_router_cost_usd_total",
        'llm_router_provider_errors_total{kind="server_error",model="small",provider="a"} 1.0',
        'llm_router_fallbacks_total{model="small",provider="a"} 1.0',
    ):
        assert name in text


def test_feedback_is_broadcast(server: Server) -> None:
    r = httpx.post(
        f"{server.url}/v1/feedback",
        headers={"authorization": f"Bearer {ALICE}"},
        json={"request_id": "abc", "rating": 0.9, "model_id": "a/small"},
    )
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    (fb,) = [p for h, p in tp.EVENTS if h == "on_feedback"]
    assert (fb.request_id, fb.rating) == ("abc", 0.9)
    bad = httpx.post(f"{server.url}/v1/feedback", headers={"authorization": f"Bearer {ALICE}"}, json={"rating": 3})
    assert bad.status_code == 422


def test_route_endpoint_and_health(server: Server) -> None:
    r = httpx.post(
        f"{server.url}/v1/route",
        headers={"authorization": f"Bearer {ALICE}"},
        json={"messages": [{"role": "user", "content": "Write a Python function to sort a list"}]},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["selected"] == "a/small" and body["classification"]["task"] == "code"
    assert body["explanation"].startswith("a/small") and body["ranking"][0]["model"] == "a/small"
    assert not tp.CALLS  # a decision alone calls nobody
    health = httpx.get(f"{server.url}/health").json()
    assert health["ready"] is True and set(health["providers"]) == {"a", "b"}


# ------------------------------------------------------------------------------------------------
# validation and error mapping


def test_bad_payloads(server: Server) -> None:
    url, auth = f"{server.url}/v1/chat/completions", {"authorization": f"Bearer {ALICE}"}
    r = httpx.post(url, headers=auth, content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = httpx.post(url, headers=auth, json={"model": "auto"})
    assert r.status_code == 422 and r.json()["error"]["param"] == "messages"
    r = httpx.post(url, headers=auth, json={"model": "auto", "messages": [{"role": "robot", "content": "x"}]})
    assert r.status_code == 422 and r.json()["error"]["param"] == "messages[0].role"
    r = httpx.post(url, headers=auth, json={"model": "auto", "messages": MSG, "temperature": 7})
    assert r.json()["error"]["param"] == "temperature"
    r = httpx.post(url, headers=auth, json={"model": "auto", "messages": MSG, "bogus": 1})
    assert r.status_code == 422 and r.json()["error"]["param"] == "bogus"
    r = httpx.post(url, headers=auth, json={"model": "auto", "messages": MSG, "router": {"preferences": {"x": -1}}})
    assert r.status_code == 422 and r.json()["error"]["param"].startswith("router.preferences")
    r = httpx.post(url, headers=auth, json={"model": "nope/nothing", "messages": MSG})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    with pytest.raises(openai.UnprocessableEntityError):
        client(server).chat.completions.create(model="auto", messages=[{"role": "user"}], n=2)
    assert not tp.CALLS  # nothing reached a provider


@pytest.mark.parametrize(
    ("script", "status", "code"),
    [
        ("error:rate_limit", 429, "rate_limit_exceeded"),
        ("error:bad_request", 400, "upstream_bad_request"),
        ("error:context_length", 400, "context_length_exceeded"),
        ("error:server_error", 502, "upstream_error"),
        ("error:authentication", 502, "upstream_auth_failed"),
    ],
)
def test_provider_errors_map_to_openai_statuses(server: Server, script: str, status: int, code: str) -> None:
    tp.SCRIPTS["a"] = [script]
    tp.SCRIPTS["b"] = [script]
    r = httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {ALICE}"},
        json={"model": "auto", "messages": MSG},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    if status == 429:
        assert r.headers["retry-after"] == "1"


# ------------------------------------------------------------------------------------------------
# streams: shutdown and disconnects


def test_graceful_shutdown_drains_in_flight_streams(server: Server) -> None:
    tp.SCRIPTS["a"] = ["slow:0.05:a|b|c|d|e"]
    with httpx.stream(
        "POST",
        f"{server.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {ALICE}"},
        json={"model": "auto", "messages": MSG, "stream": True},
        timeout=30,
    ) as r:
        lines = r.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        assert '"role":"assistant"' in first
        server.server.should_exit = True  # as on SIGTERM: stop accepting, let this stream finish
        rest = [line for line in lines if line.startswith("data: ")]
    assert rest[-1] == "data: [DONE]"
    text = "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content", "") for line in rest[:-1] if '"choices":[{' in line
    )
    assert text == "abcde"
    server.thread.join(30)
    assert not server.thread.is_alive()
    (row,) = server.ledger()
    assert (row["outcome"], row["stream"], row["output_tokens"]) == ("ok", 1, 5)
    assert not tp.CANCELLED


def test_client_disconnect_cancels_upstream_and_writes_the_ledger_row(server: Server) -> None:
    tp.SCRIPTS["a"] = ["slow:0.2:a|b|c|d|e|f|g|h|i|j|k|l|m|n|o|p|q|r|s|t"]
    with httpx.stream(
        "POST",
        f"{server.url}/v1/chat/completions",
        headers={"authorization": f"Bearer {ALICE}"},
        json={"model": "auto", "messages": MSG, "stream": True},
        timeout=30,
    ) as r:
        for line in r.iter_lines():
            if '"content":"a"' in line:
                break
    # the response is closed: the gateway sees the disconnect and cancels the upstream stream
    wait_for(lambda: tp.CANCELLED, "the upstream stream to be cancelled")
    server.stop()
    (row,) = server.ledger()
    assert (row["outcome"], row["status"], row["model"]) == ("cancelled", 499, "a/small")
    assert row["input_tokens"] > 0 and row["cost_usd"] > 0  # counted: the upstream never reported usage


# ------------------------------------------------------------------------------------------------
# prompts


def test_prompts_are_not_logged_unless_opted_in(
    make_server: Callable[..., Server], caplog: pytest.LogCaptureFixture
) -> None:
    secret = "my secret prompt 4242"
    caplog.set_level(logging.DEBUG)
    quiet = make_server()
    client(quiet).chat.completions.create(model="auto", messages=[{"role": "user", "content": secret}])
    quiet.stop()
    assert secret not in caplog.text
    assert ALICE not in caplog.text
    assert quiet.ledger()[0]["prompt"] is None
    loud = make_server("log_prompts: true")
    client(loud).chat.completions.create(model="auto", messages=[{"role": "user", "content": secret}])
    loud.stop()
    assert secret in caplog.text
    assert secret in loud.ledger()[0]["prompt"]
    assert ALICE not in caplog.text
