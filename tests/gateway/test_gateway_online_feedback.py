"""``/v1/feedback`` reaches the online learner of the gateway's router: a decided request is learned from,
an unknown request id is a 404 that names it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from _gateway_helpers import ALICE, Server
from llm_router import Router
from llm_router.gateway import create_app
from llm_router_test_plugin import plugin as tp

pytest.importorskip("llm_router_learned")

POLICY = """
providers:
  a: {type: scripted, models: [small, large], price_in: 1, price_out: 2}
score:
  - online_quality: {explore: 0}
  - cost
preferences: {online_quality: 1}
fallback: {retries: 0, backoff_ms: 1, max_backoff_ms: 5, max_models: 3, timeout_s: 10}
gateway:
  keys:
    - {id: alice, key: "${ALICE_KEY}"}
"""


def test_feedback_teaches_the_learner_and_unknown_ids_are_404(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    router = Router(path)
    learner = next(s for name, s in router.scorers if name == "online_quality")
    server = Server(create_app(router, ledger_path=tmp_path / "ledger.sqlite3")).start()
    try:
        auth = {"authorization": f"Bearer {ALICE}"}
        tp.SCRIPTS["a"] = ["text:hi"]
        r = httpx.post(
            f"{server.url}/v1/chat/completions",
            headers=auth,
            json={"model": "auto", "messages": [{"role": "user", "content": "hello there"}]},
        )
        assert r.status_code == 200, r.text
        rid, model = r.headers["x-request-id"], r.headers["x-router-model"]
        ok = httpx.post(f"{server.url}/v1/feedback", headers=auth, json={"request_id": rid, "rating": 0.9})
        assert ok.status_code == 200 and ok.json()["status"] == "accepted"
        arm = learner.store.arm(model)
        assert arm is not None and arm.n == 1
        unknown = httpx.post(f"{server.url}/v1/feedback", headers=auth, json={"request_id": "nope", "rating": 1})
        assert unknown.status_code == 404
        error = unknown.json()["error"]
        assert error["param"] == "request_id" and "'nope'" in error["message"]
        again = httpx.post(f"{server.url}/v1/feedback", headers=auth, json={"request_id": rid, "rating": 0.1})
        assert again.status_code == 404 and "rated already" in again.json()["error"]["message"]
    finally:
        server.stop()


EXPERIMENT = """
providers:
  a: {type: scripted, models: [small, large], price_in: 1, price_out: 2}
models:
  - {id: a/small, quality: {general: 0.6}}
  - {id: a/large, quality: {general: 0.9}}
score: [quality, cost]
preferences: {quality: 0.9, cost: 0.1}
experiments:
  - name: thrift
    variants:
      control: {}
      cheap: {preferences: {cost: 5}}
gateway:
  keys:
    - {id: alice, key: "${ALICE_KEY}"}
"""


def test_variant_header_ledger_column_and_rated_requests(tmp_path: Path) -> None:
    from llm_router.abtest import ab_report, ledger_rows

    path = tmp_path / "policy.yaml"
    path.write_text(EXPERIMENT, encoding="utf-8")
    server = Server(create_app(Router(path), ledger_path=tmp_path / "ledger.sqlite3")).start()
    auth = {"authorization": f"Bearer {ALICE}"}
    seen: dict[str, str] = {}
    by_user: dict[int, str] = {}
    try:
        for user in range(12):
            r = httpx.post(
                f"{server.url}/v1/chat/completions",
                headers=auth,
                json={"model": "auto", "user": f"user-{user}", "messages": [{"role": "user", "content": "hello"}]},
            )
            assert r.status_code == 200, r.text
            variant = r.headers["x-router-variant"]
            seen[r.headers["x-request-id"]] = variant
            by_user[user] = variant
            assert r.headers["x-router-model"] == ("a/small" if variant == "thrift=cheap" else "a/large")
            fb = httpx.post(
                f"{server.url}/v1/feedback", headers=auth, json={"request_id": r.headers["x-request-id"], "rating": 1}
            )
            assert fb.status_code == 200
        route = httpx.post(
            f"{server.url}/v1/route",
            headers=auth,
            json={"messages": [{"role": "user", "content": "hello"}], "router": {"metadata": {"user": "user-3"}}},
        )
        assert route.status_code == 200
        assert route.json()["variant"] == by_user[3]  # sticky: the same user, the same variant
    finally:
        server.stop()
    assert set(seen.values()) == {"thrift=control", "thrift=cheap"}
    ledger = {row["request_id"]: row["variant"] for row in server.ledger()}
    assert ledger == seen
    rep = ab_report(ledger_rows(tmp_path / "ledger.sqlite3"))
    assert sum(v["requests"] for v in rep["variants"].values()) == 12
    assert all(v["rating"]["value"] == 1.0 for v in rep["variants"].values())
