"""What the gateway does with awkward input and awkward names: non-ASCII model ids and task names in the
headers, oversized bodies, blank prompts, infinite weights, an upstream that rejects the gateway's key,
``x-request-id`` on every answer, and the OpenAPI document."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anyio
import httpx
import pytest
import yaml
from _gateway_helpers import ALICE, CAROL, Server, server_factory
from llm_router import Router
from llm_router.gateway import create_app
from llm_router_test_plugin import plugin as tp

pytest.importorskip("llm_router_openai")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the fakes
from fakes import FakeOpenAI

MSG = [{"role": "user", "content": "hello there"}]
AUTH = {"authorization": f"Bearer {ALICE}"}
UPSTREAM_KEY = "sk-upstream-secret-key-4242"
MODEL = "模型"  # the catalogue id is up/模型
TASK = "要約"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def unicode_server(
    upstream: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Server]]:
    """The gateway in front of the fake OpenAI upstream, with a model id and a task name outside latin-1."""
    monkeypatch.setenv("UPSTREAM_KEY", UPSTREAM_KEY)
    upstream.reset()

    def policy_for(http_client: str, i: int) -> Path:
        policy = {
            "providers": {
                "up": {
                    "type": "openai_compatible",
                    "base_url": upstream.base_url,
                    "api_key_env": "UPSTREAM_KEY",
                    "http_client": http_client or "aiohttp",
                    "models": [
                        {"model": MODEL, "context_window": 32768, "price": {"input_per_mtok": 1, "output_per_mtok": 2}}
                    ],
                }
            },
            "taxonomy": {"replace": True, "default_task": TASK, "tasks": {TASK: {"keywords": ["summary"]}}},
            "fallback": {"retries": 0, "timeout_s": 10},
        }
        path = tmp_path / f"policy{i}.yaml"
        path.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
        return path

    yield from server_factory(tmp_path, policy_for)  # make(http_client): "" (its default) is aiohttp


# ------------------------------------------------------------------------------------------------
# headers: any name the policy may hold, and never at the cost of the answer


@pytest.mark.parametrize("http_client", ["aiohttp", "direct"])
def test_non_ascii_model_id_and_task_reach_the_client_percent_encoded(
    unicode_server: Callable[..., Server], upstream: FakeOpenAI, http_client: str
) -> None:
    server = unicode_server(http_client)
    upstream.queue_text("a summary", usage=(11, 2))
    r = httpx.post(f"{server.url}/v1/chat/completions", json={"model": "auto", "messages": MSG}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["model"] == f"up/{MODEL}" and r.json()["choices"][0]["message"]["content"] == "a summary"
    assert r.headers["x-router-model"] == "up/%E6%A8%A1%E5%9E%8B"
    assert unquote(r.headers["x-router-model"]) == f"up/{MODEL}"
    assert unquote(r.headers["x-router-task"]) == TASK
    assert unquote(r.headers["x-router-reason"]).startswith(f"up/{MODEL}: {TASK} (rules ")
    assert float(r.headers["x-router-cost"]) == pytest.approx((11 * 1 + 2 * 2) / 1e6)

    upstream.queue_text("streamed summary")
    with httpx.stream(
        "POST", f"{server.url}/v1/chat/completions", json={"model": f"up/{MODEL}", "messages": MSG, "stream": True}
    ) as s:
        assert s.status_code == 200
        assert unquote(s.headers["x-router-model"]) == f"up/{MODEL}"
        body = s.read().decode()
    assert '"content":"streamed"' in body and body.endswith("data: [DONE]\n\n")

    decided = httpx.post(f"{server.url}/v1/route", json={"messages": MSG})
    assert decided.status_code == 200, decided.text
    assert decided.json()["selected"] == f"up/{MODEL}"
    assert unquote(decided.headers["x-router-model"]) == f"up/{MODEL}"
    server.stop()
    rows = server.ledger()
    assert [(row["model"], row["task"], row["outcome"]) for row in rows] == [(f"up/{MODEL}", TASK, "ok")] * 2


def test_a_header_that_cannot_be_built_does_not_lose_the_answer(
    unicode_server: Callable[..., Server],
    upstream: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = unicode_server()

    def broken(call: Any) -> Any:
        raise UnicodeEncodeError("latin-1", MODEL, 0, 1, "ordinal not in range(256)")

    monkeypatch.setattr(server.gateway, "_router_headers", broken)
    upstream.queue_text("paid for")
    r = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"model": "auto", "messages": MSG},
        headers={"x-request-id": "keep-me-1"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "paid for"
    assert r.headers["x-request-id"] == "keep-me-1"
    assert "x-router-model" not in r.headers
    upstream.queue_text("streamed and paid for")
    with httpx.stream(
        "POST", f"{server.url}/v1/chat/completions", json={"model": "auto", "messages": MSG, "stream": True}
    ) as s:
        assert s.status_code == 200
        assert '"content":"streamed"' in s.read().decode()
    assert "request keep-me-1: the x-router-* headers could not be built" in caplog.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("openai/gpt-4o", b"openai/gpt-4o"),
        ("up/模型", b"up/%E6%A8%A1%E5%9E%8B"),
        ("a\r\nx-injected: 1", b"a%0D%0Ax-injected: 1"),
        ("100%", b"100%25"),
        (" padded ", b"%20padded%20"),
        ("é" * 300, b"%C3%A9" * 85),  # 512 bytes at most, never cut inside an escape
    ],
)
def test_header_values_are_printable_ascii(text: str, expected: bytes) -> None:
    from llm_router.gateway.edge import header_value

    value = header_value(text)
    assert value == expected
    assert len(value) <= 512 and re.fullmatch(rb"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?", value)


# ------------------------------------------------------------------------------------------------
# the body limit


def test_bodies_over_the_limit_are_413_before_they_are_parsed(make_server: Callable[..., Server]) -> None:
    server = make_server("max_body_bytes: 4096")
    url = f"{server.url}/v1/chat/completions"
    big = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "x" * 8000}]}).encode()
    r = httpx.post(url, headers={**AUTH, "x-request-id": "big-1"}, content=big)  # with Content-Length
    assert r.status_code == 413, r.text
    assert r.json() == {
        "error": {
            "message": "the request body is larger than this gateway accepts (4,096 bytes; gateway.max_body_bytes)",
            "type": "invalid_request_error",
            "param": None,
            "code": "request_too_large",
        }
    }
    assert r.headers["x-request-id"] == "big-1"

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    chunked = httpx.post(url, headers=AUTH, content=chunks())
    assert chunked.status_code == 413 and chunked.json()["error"]["code"] == "request_too_large"
    assert chunked.headers["x-request-id"]
    small = httpx.post(url, headers=AUTH, json={"model": "auto", "messages": MSG})
    assert small.status_code == 200, small.text
    assert len(tp.CALLS) == 1  # only the small request reached a provider
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'llm_router_rejected_requests_total{reason="body_too_large"} 2.0' in metrics


def _asgi_request(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


def test_a_50_mb_body_is_refused_without_reading_it(write_policy: Callable[[str], Path], tmp_path: Path) -> None:
    """Content-Length over the limit: 413 before the app asks for a single byte of the body. A chunked body:
    reading stops at the first message past the limit."""
    app = create_app(Router(write_policy("providers:\n  a: {type: scripted}\n")), ledger_path=tmp_path / "l.sqlite3")
    sent: list[dict[str, Any]] = []
    reads = 0

    async def no_body() -> dict[str, Any]:
        raise AssertionError("the body was read")

    async def endless() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * (1024 * 1024), "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def main() -> None:
        await app(_asgi_request([(b"content-length", b"52428800")]), no_body, send)
        assert sent[0]["status"] == 413
        sent.clear()
        await app(_asgi_request([(b"transfer-encoding", b"chunked")]), endless, send)

    anyio.run(main)
    assert sent[0]["status"] == 413
    assert reads == 5  # 4 MiB (the default limit) read, the fifth MiB is past it: no more reads
    assert json.loads(sent[-1]["body"])["error"]["code"] == "request_too_large"


def test_max_body_bytes_must_be_positive(write_policy: Callable[[str], Path]) -> None:
    from llm_router.errors import PolicyError

    with pytest.raises(PolicyError, match=r"gateway\.max_body_bytes"):
        Router(write_policy("gateway:\n  max_body_bytes: 0\n"))


# ------------------------------------------------------------------------------------------------
# blank prompts and infinite weights: 422 naming the field, nothing routed


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": ""}],
        [{"role": "user", "content": "   \n\t"}],
        [{"role": "system", "content": " "}, {"role": "user", "content": None}],
        [{"role": "user", "content": [{"type": "text", "text": "  "}]}],
    ],
)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/route"])
def test_blank_prompts_are_422(server: Server, messages: list[dict[str, Any]], path: str) -> None:
    r = httpx.post(f"{server.url}{path}", headers=AUTH, json={"model": "auto", "messages": messages})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", "messages", "invalid_value")
    assert error["message"] == (
        "invalid request: messages: the prompt is empty: every message's content is empty or only whitespace"
    )
    assert not tp.CALLS and not [e for e in tp.EVENTS if e[0] == "on_decision"]


def test_a_blank_message_beside_text_is_fine(server: Server) -> None:
    messages = [{"role": "system", "content": " "}, {"role": "user", "content": "hello"}]
    r = httpx.post(f"{server.url}/v1/chat/completions", headers=AUTH, json={"model": "auto", "messages": messages})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("body", "headers", "param", "message"),
    [
        (
            '"router": {"preferences": {"quality": 1e999}}',
            {},
            "router.preferences.quality",
            "router.preferences: quality must be a finite number, got inf",
        ),
        (
            '"router": {"preferences": {"cost": -1e999}}',
            {},
            "router.preferences.cost",
            "router.preferences: cost must be a finite number, got -inf",
        ),
        (
            '"router": {"constraints": {"max_latency_ms": 1e999}}',
            {},
            "router.constraints.max_latency_ms",
            "router.constraints: max_latency_ms must be a finite number, got inf",
        ),
        (
            "",
            {"x-router-preferences": "quality=inf"},
            "x-router-preferences",
            "header x-router-preferences: quality must be a finite number, got inf",
        ),
        (
            "",
            {"x-router-preferences": "cost=0.5,quality=nan"},
            "x-router-preferences",
            "header x-router-preferences: quality must be a finite number, got nan",
        ),
        (
            "",
            {"x-router-constraints": '{"max_cost_per_request": 1e999}'},
            "x-router-constraints",
            "header x-router-constraints: max_cost_per_request must be a finite number, got inf",
        ),
    ],
)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/route"])
def test_infinite_weights_and_limits_are_422(
    server: Server, body: str, headers: dict[str, str], param: str, message: str, path: str
) -> None:
    raw = '{"model": "auto", "messages": [{"role": "user", "content": "hi"}]' + (f", {body}" if body else "") + "}"
    r = httpx.post(
        f"{server.url}{path}", headers={**AUTH, **headers, "content-type": "application/json"}, content=raw.encode()
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert (error["param"], error["code"]) == (param, "invalid_value")
    assert error["message"] == f"invalid request: {message}"
    assert not tp.CALLS


# ------------------------------------------------------------------------------------------------
# an upstream that rejects the gateway's own key


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_401_tells_the_operator_not_the_client(
    unicode_server: Callable[..., Server], upstream: FakeOpenAI, caplog: pytest.LogCaptureFixture, stream: bool
) -> None:
    server = unicode_server()
    upstream.queue_error("auth_echo")
    caplog.set_level(logging.INFO, logger="llm_router.gateway")
    r = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"model": "auto", "messages": MSG, "stream": stream},
        headers={"x-request-id": "auth-1"},
    )
    assert r.status_code == 502, r.text
    assert r.json() == {
        "error": {
            "message": "the upstream provider rejected the gateway's credentials; the operator has been told",
            "type": "api_error",
            "param": None,
            "code": "upstream_auth_failed",
        }
    }
    echoed = "sk-" + "*" * 20 + "4242"  # what the upstream says of the gateway's key (its first 3, last 4)
    for secret in ("4242", echoed, "UPSTREAM_KEY", "providers.up.api_key", "Incorrect API key"):
        assert secret not in r.text
    (line,) = [m.getMessage() for m in caplog.records if m.name == "llm_router.gateway" and "auth-1" in m.getMessage()]
    assert line.startswith(f"request auth-1: the upstream provider rejected the gateway's credentials for up/{MODEL}: ")
    assert f"Incorrect API key provided: {echoed}." in line
    assert "set UPSTREAM_KEY (or providers.up.api_key in the policy)" in line
    assert UPSTREAM_KEY not in caplog.text


# ------------------------------------------------------------------------------------------------
# x-request-id on every answer


def test_every_answer_carries_x_request_id(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    tp.SCRIPTS["a"] = ["error:server_error"]
    tp.SCRIPTS["b"] = ["error:server_error"]
    chat = f"{server.url}/v1/chat/completions"
    carol = {"authorization": f"Bearer {CAROL}"}
    requests: list[tuple[int, str, str, dict[str, Any]]] = [
        (401, "POST", chat, {"json": {"model": "auto", "messages": MSG}}),
        (422, "POST", chat, {"headers": AUTH, "json": {"model": "auto"}}),
        (400, "POST", chat, {"headers": AUTH, "content": b"{nope"}),
        (404, "POST", chat, {"headers": AUTH, "json": {"model": "no/such", "messages": MSG}}),
        (404, "GET", f"{server.url}/nowhere", {}),
        (405, "GET", chat, {}),
        (429, "POST", chat, {"headers": carol, "json": {"model": "auto", "messages": MSG, "max_tokens": 2000}}),
        (502, "POST", chat, {"headers": AUTH, "json": {"model": "auto", "messages": MSG}}),
        (200, "GET", f"{server.url}/health", {}),
        (200, "GET", f"{server.url}/metrics", {}),
        (200, "GET", f"{server.url}/openapi.json", {}),
    ]
    for i, (status, method, url, kw) in enumerate(requests):
        request_id = f"req-{i}"
        kw["headers"] = {**kw.get("headers", {}), "x-request-id": request_id}
        r = httpx.request(method, url, **kw)
        assert r.status_code == status, (method, url, r.text)
        assert r.headers["x-request-id"] == request_id, (method, url)
        if status >= 400:
            assert set(r.json()["error"]) == {"message", "type", "param", "code"}, (method, url)
        if status == 405:
            assert r.headers["allow"] == "POST"

    def broken(name: str) -> str | None:
        raise RuntimeError("a bug of the gateway")

    monkeypatch.setattr(server.gateway.router, "provider_status", broken)
    crash = httpx.get(f"{server.url}/health", headers={"x-request-id": "req-500"})
    assert crash.status_code == 500 and crash.headers["x-request-id"] == "req-500"
    assert crash.json()["error"]["code"] == "internal_error" and "a bug" not in crash.text


def test_the_clients_request_id_is_used_when_sane_and_replaced_otherwise(server: Server) -> None:
    tp.SCRIPTS["a"] = ["text:one", "text:two", "text:three"]

    def ask(request_id: str | None) -> httpx.Response:
        headers = {**AUTH, **({"x-request-id": request_id} if request_id is not None else {})}
        return httpx.post(f"{server.url}/v1/chat/completions", headers=headers, json={"model": "auto", "messages": MSG})

    own = ask("client-id-7")
    assert own.headers["x-request-id"] == "client-id-7" and own.json()["id"] == "chatcmpl-client-id-7"
    ids = []
    for bad in ("has space", "x" * 129):
        r = ask(bad)
        assert r.status_code == 200
        ids.append(r.headers["x-request-id"])
        assert ids[-1] != bad and re.fullmatch(r"[\x21-\x7e]{1,128}", ids[-1])
        assert r.json()["id"] == f"chatcmpl-{ids[-1]}"
    assert ids[0] != ids[1]
    server.stop()
    assert [row["request_id"] for row in server.ledger()] == ["client-id-7", *ids]


# ------------------------------------------------------------------------------------------------
# the OpenAPI document


def test_openapi_document_is_valid_and_describes_every_route(server: Server) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    r = httpx.get(f"{server.url}/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    validator.validate(doc)
    routes = {(route.path, m.lower()) for route in server.app.routes for m in route.methods if m != "HEAD"}
    described = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert described == routes
    chat = doc["paths"]["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChatCompletionRequest"
    }
    assert {"200", "400", "401", "403", "404", "413", "422", "429", "502", "503", "504"} <= set(chat["responses"])
    assert chat["responses"]["413"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    schemas = doc["components"]["schemas"]
    assert schemas["ChatCompletionRequest"]["required"] == ["model", "messages"]
    assert "router" in schemas["ChatCompletionRequest"]["properties"]
    assert doc["paths"]["/v1/feedback"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Feedback"
    }


@pytest.mark.parametrize(
    ("field", "param", "message"),
    [
        (
            '"tools": [{"type": "function", "function": {"name": "f", "parameters": {"maximum": 9' + "9" * 20 + "}}}]",
            "tools",
            "tools[0].function.parameters.maximum is an integer out of the 64-bit range",
        ),
        ('"response_format": {"type": "json_object", "x": [1e999]}', "response_format", "response_format.x[0] is not"),
        (
            '"tool_choice": {"type": "function", "n": -9223372036854775809}',
            "tool_choice",
            "tool_choice.n is an integer",
        ),
    ],
)
def test_numbers_no_upstream_request_can_carry_are_422(server: Server, field: str, param: str, message: str) -> None:
    """Found by `nox -s fuzz`: such a body failed at the provider ("the request cannot be sent"), after routing,
    and five of them opened the model's circuit breaker: every client then got 503s for 30 s."""
    raw = '{"model": "auto", "messages": [{"role": "user", "content": "hi"}], ' + field + "}"
    r = httpx.post(
        f"{server.url}/v1/chat/completions", headers={**AUTH, "content-type": "application/json"}, content=raw
    )
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["message"].startswith(f"invalid request: {param}: {message}")
    assert not tp.CALLS


def test_numbers_in_forwarded_message_parts_are_checked_too(server: Server) -> None:
    raw = (
        '{"model": "auto", "messages": [{"role": "user", "content": "hi"}, '
        '{"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", '
        '"function": {"name": "f", "arguments": "{}"}, "extra": 18446744073709551616}]}]}'
    )
    r = httpx.post(f"{server.url}/v1/route", headers={**AUTH, "content-type": "application/json"}, content=raw)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"] == (
        "invalid request: messages: messages[1].tool_calls[0].extra is an integer out of the 64-bit range"
    )
    ok = httpx.post(
        f"{server.url}/v1/chat/completions",
        headers=AUTH,
        json={
            "model": "auto",
            "messages": MSG,
            "tools": [{"type": "function", "function": {"name": "f", "n": 2**63 - 1}}],
        },
    )
    assert ok.status_code != 422, ok.text  # the largest 64-bit integer is fine
