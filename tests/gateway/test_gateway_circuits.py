"""One client cannot lock everyone out: upstream 400s a client causes never open a model's circuit for the
other keys; only upstream-health failures do, and a request refused only for open circuits is a 503."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from _gateway_helpers import ALICE, BOB, Server
from llm_router_test_plugin import plugin as tp

BODY = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}


def post(server: Server, key: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/chat/completions", json=BODY, headers={"authorization": f"Bearer {key}"}, timeout=30
    )


def test_a_clients_bad_requests_do_not_lock_others_out(make_server: Callable[..., Server]) -> None:
    server = make_server()
    tp.SCRIPTS["a"] = ["error:context_length"] * 7 + ["text:for alice"]
    for _ in range(7):  # more than fallback.circuit_failures (5)
        assert post(server, BOB).status_code == 400  # bob may use a/small only; his prompt is "too long"
    assert not server.gateway.router.state.has_open_circuits()
    answer = post(server, ALICE)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-router-model"] == "a/small"


def test_a_request_refused_only_for_open_circuits_is_a_503(make_server: Callable[..., Server]) -> None:
    server = make_server()
    tp.SCRIPTS["a"] = ["error:server_error"] * 20
    tp.SCRIPTS["b"] = ["error:server_error"] * 20
    for _ in range(5):
        assert post(server, ALICE).status_code == 502  # every candidate failed upstream
    refused = post(server, ALICE)
    assert refused.status_code == 503, refused.text
    error = refused.json()["error"]
    assert error["code"] == "no_model_available" and "circuit open" in error["message"]


def test_circuit_transitions_are_counted_in_the_metrics(make_server: Callable[..., Server]) -> None:
    server = make_server()
    tp.SCRIPTS["a"] = ["error:server_error"] * 20
    tp.SCRIPTS["b"] = ["error:server_error"] * 20
    for _ in range(6):  # the sixth is refused without a call: no further transition
        post(server, ALICE)
    metrics = httpx.get(f"{server.url}/metrics").text
    opened = [line for line in metrics.splitlines() if line.startswith("llm_router_circuit_transitions_total{")]
    assert opened, metrics
    assert all('to_state="open"' in line and line.endswith(" 1.0") for line in opened), opened
    assert any('deployment="a/small"' in line for line in opened), opened
