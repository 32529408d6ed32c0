"""End to end: the official OpenAI SDK → `llm-router serve`'s app → the real OpenAI provider plugin →
the fake OpenAI upstream, over each of the plugin's transports (the SDK over aiohttp, and `direct`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from fakes import FakeOpenAI

pytest.importorskip("starlette", reason="the gateway extra is not installed")
pytest.importorskip("llm_router_openai")
openai = pytest.importorskip("openai")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))
from _gateway_helpers import Server, wait_for  # noqa: E402
from llm_router import Router  # noqa: E402
from llm_router.gateway import create_app  # noqa: E402

MSG = [{"role": "user", "content": "Summarise this in one sentence: the quick brown fox jumps over the dog."}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def _policy(base_url: str, http_client: str) -> dict[str, object]:
    return {
        "providers": {
            "local": {
                "type": "openai_compatible",
                "base_url": base_url,
                "http_client": http_client,
                "models": [
                    {
                        "model": "served-model",
                        "context_window": 32768,
                        "price": {"input_per_mtok": 1, "output_per_mtok": 2},
                    }
                ],
            }
        },
        "classify": ["rules"],
        "fallback": {"retries": 0, "timeout_s": 10},
    }


@pytest.fixture(params=["aiohttp", "direct"])
def server(request: pytest.FixtureRequest, upstream: FakeOpenAI, tmp_path: Path) -> Iterator[Server]:
    upstream.reset()
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(_policy(upstream.base_url, request.param)))
    srv = Server(create_app(Router(path), ledger_path=tmp_path / "usage.sqlite3")).start()
    yield srv
    if srv.thread.is_alive():
        srv.stop()


def test_completion_through_the_plugin(server: Server, upstream: FakeOpenAI) -> None:
    upstream.queue_text("A fox jumps over a dog.", usage=(21, 8))
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=MSG)  # type: ignore[arg-type]
    completion = raw.parse()
    assert completion.choices[0].message.content == "A fox jumps over a dog."
    assert completion.model == "local/served-model"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (21, 8)  # type: ignore[union-attr]
    assert float(raw.headers["x-router-cost"]) == pytest.approx((21 * 1 + 8 * 2) / 1e6)
    assert raw.headers["x-router-task"] == "summarization"
    sent = upstream.requests[-1].json
    assert sent is not None and sent["model"] == "served-model" and sent["messages"] == MSG
    server.stop()
    (row,) = server.ledger()
    assert (row["model"], row["outcome"], row["input_tokens"], row["output_tokens"]) == (
        "local/served-model",
        "ok",
        21,
        8,
    )


def test_stream_with_usage_through_the_plugin(server: Server, upstream: FakeOpenAI) -> None:
    upstream.queue_text("one two three", usage=(9, 3))
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="auto",
            messages=MSG,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (9, 3)


def test_client_disconnect_closes_the_upstream_stream(server: Server, upstream: FakeOpenAI) -> None:
    upstream.queue_text(" ".join(f"w{i}" for i in range(40)), chunk_delay_s=0.1)
    closed_before = upstream.closed_streams
    with httpx.stream(
        "POST",
        f"{server.url}/v1/chat/completions",
        json={"model": "auto", "messages": MSG, "stream": True},
        timeout=30,
    ) as r:
        for line in r.iter_lines():
            if '"content":"w0"' in line:
                break
    # the client left after the first word: the gateway cancels the call, which closes the upstream stream
    wait_for(lambda: upstream.closed_streams > closed_before, "the upstream stream to be closed")
    assert upstream.open_streams == 0
    server.stop()
    (row,) = server.ledger()
    assert (row["outcome"], row["status"], row["model"]) == ("cancelled", 499, "local/served-model")
    assert row["input_tokens"] > 0


@pytest.mark.parametrize("http_client", ["aiohttp", "httpx", "direct"])
def test_a_refused_connection_is_a_502_not_a_timeout(http_client: str, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on: the upstream refuses the connection
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(_policy(f"http://127.0.0.1:{port}/v1", http_client)))
    srv = Server(create_app(Router(path), ledger_path=tmp_path / "usage.sqlite3")).start()
    try:
        r = httpx.post(f"{srv.url}/v1/chat/completions", json={"model": "auto", "messages": MSG}, timeout=30)
    finally:
        srv.stop()
    assert r.status_code == 502, r.text
    error = r.json()["error"]
    assert (error["type"], error["code"]) == ("api_error", "upstream_error")
    assert "could not reach the API" in error["message"]
