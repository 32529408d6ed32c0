"""Exact budgets and per-key rate limits in one gateway process (state in memory).

Every admitted request holds its worst case (counted prompt + max output at the model's prices) until it
settles, so no burst, however concurrent, spends more than a budget; the decision sees the remaining budget.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from _gateway_helpers import Server, wait_for
from llm_router import Router
from llm_router.gateway import create_app
from llm_router_test_plugin import plugin as tp

MSG = [{"role": "user", "content": "hello there"}]
LONG = "text:" + " ".join(["word"] * 1500)  # a long real answer: 1,500 output tokens

POLICY = """
providers:
  a: {{type: scripted, models: [small, large], price_in: 1, price_out: 2}}
  b: {{type: scripted, models: [only], price_in: 5, price_out: 5}}
preferences: {{cost: 1}}
fallback: {{retries: 0, backoff_ms: 1, max_backoff_ms: 5, max_models: 1, timeout_s: 10}}
gateway:
  keys:
{keys}
{extra}
"""


def key_line(name: str, **limits: Any) -> str:
    fields = "".join(f", {k}: {v}" for k, v in limits.items())
    return f"    - {{id: {name}, key_sha256: {hashlib.sha256(name.encode()).hexdigest()}{fields}}}"


def policy(keys: list[str], extra: str = "") -> str:
    return POLICY.format(keys="\n".join(keys), extra=extra)


def start(
    tmp_path: Path, write_policy: Callable[..., Path], text: str, name: str = "gw", ledger: str | None = None
) -> Server:
    router = Router(write_policy(text, f"{name}.yaml"))
    return Server(create_app(router, ledger_path=ledger or tmp_path / f"{name}.sqlite3")).start()


def client(server: Server, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


def burst(servers: list[Server], key: str, n: int, **kwargs: Any) -> list[Any]:
    """``n`` concurrent requests spread over ``servers``: each an answer or the error it raised."""

    def one(i: int) -> Any:
        try:
            return client(servers[i % len(servers)], key).chat.completions.create(model="auto", messages=MSG, **kwargs)
        except openai.APIStatusError as exc:
            return exc

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(n)))


def spent(servers: list[Server], key: str) -> float:
    return sum(r["cost_usd"] for s in servers for r in s.ledger() if r["key_id"] == key)


@pytest.fixture(autouse=True)
def _reset() -> None:
    tp.SCRIPTS.clear()
    tp.CALLS.clear()


def test_a_burst_of_long_answers_never_overspends(tmp_path: Path, write_policy: Callable[..., Path]) -> None:
    """The issue's 16x overspend: long answers on a small budget. Each request holds its worst case (2,048
    max output tokens), so at most what fits is admitted, and the ledger's spend stays within the budget."""
    tp.SCRIPTS["a"] = [LONG]
    server = start(tmp_path, write_policy, policy([key_line("dave", budget_usd_per_day=0.01)]))
    try:
        results = burst([server], "dave", 12)
        answered = [r for r in results if not isinstance(r, Exception)]
        refused = [r for r in results if isinstance(r, openai.RateLimitError)]
        assert len(answered) + len(refused) == 12
        assert answered and refused
        assert all(r.body["code"] == "budget_exceeded" for r in refused)  # type: ignore[index]
        server.stop()
        total = spent([server], "dave")
        assert total == pytest.approx(len(answered) * (10 * 1 + 1500 * 2) / 1e6)
        assert total <= 0.01
    finally:
        if server.thread.is_alive():
            server.stop()


def test_429_names_spent_and_reserved(tmp_path: Path, write_policy: Callable[..., Path]) -> None:
    tp.SCRIPTS["a"] = [LONG]
    server = start(tmp_path, write_policy, policy([key_line("erin", budget_usd_per_day=0.005)]))
    try:
        client(server, "erin").chat.completions.create(model="auto", messages=MSG)  # spends $0.00301
        with pytest.raises(openai.RateLimitError) as err:
            client(server, "erin").chat.completions.create(model="auto", messages=MSG)
        message = err.value.message
        assert "daily budget of key 'erin' exceeded" in message
        assert "$0.003010 spent" in message and "$0.000000 reserved" in message
        assert err.value.body["type"] == "insufficient_quota"  # type: ignore[index]
        # a small enough max_tokens fits what is left
        ok = client(server, "erin").chat.completions.create(model="auto", messages=MSG, max_tokens=50)
        assert ok.choices[0].message.content
    finally:
        server.stop()


def test_the_decision_sees_the_remaining_budget(tmp_path: Path, write_policy: Callable[..., Path]) -> None:
    """The caller prefers quality (a/large or b/only would win), but only a/small's worst case fits what is left
    of the budget: it answers, instead of a 429 for the preferred model."""
    server = start(tmp_path, write_policy, policy([key_line("fay", budget_usd_per_day=0.005)]))
    try:
        body = {"model": "auto", "messages": MSG, "router": {"preferences": {"quality": 1, "cost": 0}}}
        free = httpx.post(f"{server.url}/v1/route", json=body, headers={"authorization": "Bearer fay"}).json()
        rejected = {r["model_id"]: r["reason"] for r in free["rejected"]}
        assert rejected["a/large"].startswith("worst-case cost $0.008")
        assert "remaining budget $0.005000" in rejected["b/only"]
        r = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers={"authorization": "Bearer fay"})
        assert r.status_code == 200
        assert r.json()["model"] == "a/small"
    finally:
        server.stop()


def test_rpm_and_tpm(tmp_path: Path, write_policy: Callable[..., Path]) -> None:
    keys = [key_line("gil", rpm=2), key_line("hal", tpm=100)]
    server = start(tmp_path, write_policy, policy(keys))
    try:
        gil = client(server, "gil")
        gil.chat.completions.create(model="auto", messages=MSG)
        gil.chat.completions.create(model="auto", messages=MSG)
        with pytest.raises(openai.RateLimitError) as err:
            gil.chat.completions.create(model="auto", messages=MSG)
        assert err.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
        assert "requests-per-minute limit of key 'gil' reached: 2 used" in err.value.message
        assert 1 <= int(err.value.response.headers["retry-after"]) <= 60
        hal = client(server, "hal")
        # each request holds prompt + max_tokens (10 + 60) until it settles to what it used (10 + 1)
        for _ in range(3):
            hal.chat.completions.create(model="auto", messages=MSG, max_tokens=60)
        with pytest.raises(openai.RateLimitError) as err:
            hal.chat.completions.create(model="auto", messages=MSG, max_tokens=60)
        assert "tokens-per-minute limit of key 'hal' reached" in err.value.message
        assert err.value.body["type"] == "tokens"  # type: ignore[index]
        rows = wait_for(lambda: [r for r in server.ledger() if r["key_id"] == "hal"][3:], "hal's 4 ledger rows")
        assert [r["status"] for r in server.ledger() if r["key_id"] == "hal"] == [200, 200, 200, 429]
        assert rows[0]["outcome"] == "rate_limit"
    finally:
        server.stop()


def test_default_max_tokens_caps_the_hold_and_is_sent_upstream(
    tmp_path: Path, write_policy: Callable[..., Path]
) -> None:
    """A request without max_tokens holds the model's whole max output (2,048 tokens here): a small budget
    refuses it, and the 429 says how to cap it. `gateway.default_max_tokens` (or the key's own) caps it: the
    cap is sent upstream as the call's max_tokens (within the model's max output), so the hold stays a bound."""
    tp.SCRIPTS["a"] = ["text:a short answer"]
    budget = 0.003  # < the uncapped worst case, 10 x $1/M + 2,048 x $2/M = $0.004106
    keys = [
        key_line("fay", budget_usd_per_day=budget),
        key_line("gus", budget_usd_per_day=budget, default_max_tokens=100),
    ]
    bare = start(tmp_path, write_policy, policy(keys), name="bare")
    try:
        with pytest.raises(openai.RateLimitError) as err:
            client(bare, "fay").chat.completions.create(model="auto", messages=MSG)
        assert "no max_tokens was sent, so the model's whole max output is held" in err.value.message
        assert "gateway.keys[fay].default_max_tokens or gateway.default_max_tokens" in err.value.message
        assert not tp.CALLS
        client(bare, "gus").chat.completions.create(model="auto", messages=MSG)  # the key's own cap fits
        assert tp.CALLS[-1][1].max_tokens == 100
    finally:
        bare.stop()
    hal = key_line("hal", budget_usd_per_day=0.005, default_max_tokens=5000)
    ivy = key_line("ivy", budget_usd_per_day=0.001)
    capped = start(tmp_path, write_policy, policy([*keys, hal, ivy], "  default_max_tokens: 500"), name="capped")
    try:
        for key, sent in (("fay", 500), ("gus", 100), ("hal", 2048)):  # hal's cap is above the model's max output
            answer = client(capped, key).chat.completions.create(model="auto", messages=MSG)
            assert answer.choices[0].message.content == "a short answer"
            assert tp.CALLS[-1][1].max_tokens == sent, key
        client(capped, "fay").chat.completions.create(model="auto", messages=MSG, max_tokens=7)
        assert tp.CALLS[-1][1].max_tokens == 7  # the request's own max_tokens wins
        # a cap that does not fit either: the 429 names the field that set it
        with pytest.raises(openai.RateLimitError) as err:  # 10 x $1/M + 500 x $2/M = $0.00101 held
            client(capped, "ivy").chat.completions.create(model="auto", messages=MSG)
        assert "output capped at 500 tokens by gateway.default_max_tokens" in err.value.message
    finally:
        capped.stop()
