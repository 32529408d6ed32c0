"""The semantic cache: opt-in per request or for all, never across contexts (system prompt, tools, response format,
scope), the embedder from a plugin's register_embedders hook, and the index itself.

The embedder here is a small one made for the tests (hashed character trigrams, numpy only): real embeddings
come from the classify plugin's back-ends; what is tested is the cache's behaviour around whatever embeds."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace

import llm_router
import numpy as np
import pytest
from llm_router import Router
from llm_router.cache.semantic import EXACT_BELOW, SemanticIndex
from llm_router.errors import PolicyError
from llm_router_test_plugin import plugin as tp

DIM = 256


def trigram_embed(texts: Sequence[str]) -> np.ndarray:
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for i, text in enumerate(texts):
        t = f"  {text.lower()}  "
        for j in range(len(t) - 2):
            h = int.from_bytes(hashlib.blake2b(t[j : j + 3].encode(), digest_size=4).digest(), "little")
            out[i, h % DIM] += 1.0
    return out


LOADED: list[int] = []


def _factory(threads: int) -> Callable[[Sequence[str]], np.ndarray]:
    LOADED.append(threads)
    return trigram_embed


@llm_router.hookimpl
def register_embedders(register: Callable[..., None]) -> None:
    register("trigrams", _factory)


EMBEDDER_PLUGIN = SimpleNamespace(register_embedders=register_embedders, __name__="trigram_embedder")

POLICY = """
providers:
  a: {type: scripted, models: [small], price_in: 1, price_out: 2}
preferences: {cost: 1}
fallback: {retries: 0, max_models: 1, timeout_s: 5}
cache:
  exact: true
  semantic: {embedder: trigrams, threshold: 0.8%s}
"""

Q1 = "What is the capital city of France?"
Q2 = "what is the capital city of France"  # a near paraphrase
Q3 = "How do I bake sourdough bread at home?"


@pytest.fixture
def make_router(write_policy: Callable[..., Path]) -> Callable[..., Router]:
    routers: list[Router] = []

    def make(extra: str = "") -> Router:
        r = Router(write_policy(POLICY % extra, f"s{len(routers)}.yaml"), plugins=[EMBEDDER_PLUGIN])
        routers.append(r)
        return r

    yield make
    for r in routers:
        r.close()


def test_semantic_hit_only_for_requests_that_opt_in(make_router: Callable[..., Router]) -> None:
    router = make_router()
    tp.SCRIPTS["a"] = ["text:Paris", "text:fresh", "text:bread"]
    assert router.route_and_execute(Q1, cache={"semantic": True}).cache == "miss"
    plain = router.route_and_execute("What is the capital city of France ?")  # not opted in: exact alone
    assert (plain.cache, plain.generated_response) == ("miss", "fresh")
    hit = router.route_and_execute(Q2, cache={"semantic": True})
    assert (hit.cache, hit.generated_response) == ("semantic", "Paris")
    other = router.route_and_execute(Q3, cache={"semantic": True})
    assert (other.cache, other.generated_response) == ("miss", "bread")


def test_always_looks_every_request_up(make_router: Callable[..., Router]) -> None:
    router = make_router(", always: true")
    tp.SCRIPTS["a"] = ["text:Paris", "text:other"]
    router.route_and_execute(Q1)
    hit = router.route_and_execute("What is the capital city of France ?")
    assert (hit.cache, hit.generated_response, hit.cost) == ("semantic", "Paris", 0.0)
    assert hit.saved_cost > 0
    assert router.route_and_execute("What's the capital of France?", cache={"semantic": False}).cache == "miss"


@pytest.mark.parametrize(
    "context",
    [
        {"messages_prefix": [{"role": "system", "content": "Answer in German."}]},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
        {"response_format": {"type": "json_object"}},
        {"cache_partition": "someone-else"},
        {"max_tokens": 5},
    ],
)
def test_never_across_contexts(make_router: Callable[..., Router], context: dict) -> None:
    router = make_router(", always: true")
    tp.SCRIPTS["a"] = ["text:Paris", "text:different context"]
    router.route_and_execute(Q1)
    messages = [*context.pop("messages_prefix", []), {"role": "user", "content": Q2}]
    partition = context.pop("cache_partition", None)
    if partition:
        context["cache"] = {"partition": partition}
    result = router.route_and_execute(messages, **context)
    assert (result.cache, result.generated_response) == ("miss", "different context")


def test_the_embedder_loads_once_on_first_use(make_router: Callable[..., Router]) -> None:
    LOADED.clear()
    router = make_router(", threads: 2")
    assert LOADED == []  # not at start-up
    router.route_and_execute(Q1, cache={"semantic": True})
    router.route_and_execute(Q3, cache={"semantic": True})
    assert LOADED == [2]


def test_missing_embedder_is_a_policy_error_naming_the_package(write_policy: Callable[..., Path]) -> None:
    path = write_policy(POLICY.replace("trigrams", "nope") % "")
    with pytest.raises(PolicyError) as info:
        Router(path, plugins=[EMBEDDER_PLUGIN])
    text = str(info.value)
    assert "cache.semantic.embedder" in text and "'nope'" in text and "llm-router-classify[e5]" in text
    assert "trigrams (plugin trigram_embedder)" in text and "policy.yaml:7" in text


def test_gateway_says_semantic(make_router: Callable[..., Router], tmp_path: Path) -> None:
    import openai
    from _cache_helpers import Server
    from llm_router.gateway import create_app

    server = Server(create_app(make_router(), ledger_path=tmp_path / "l.sqlite3")).start()
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="open", max_retries=0)
        tp.SCRIPTS["a"] = ["text:Paris"]
        opt_in = {"router": {"cache": {"semantic": True}}}
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": Q1}], extra_body=opt_in)
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": Q2}], extra_body=opt_in
        )
        assert raw.headers["x-router-cache"] == "semantic" and raw.parse().choices[0].message.content == "Paris"
        server.stop()
        assert [r["cache"] for r in server.ledger()] == ["miss", "semantic"]
    finally:
        if server.thread.is_alive():
            server.stop()


# --------------------------------------------------------------------------------------------------
# the index


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def test_index_prefilter_finds_the_nearest_among_many() -> None:
    rng = np.random.default_rng(0)
    n = EXACT_BELOW * 8
    vecs = _unit(rng.standard_normal((n, 64)))
    index = SemanticIndex(n)
    for i in range(n):
        index.add("a" * 40, vecs[i], f"row{i}".encode(), 60)
    target = 1234
    query = _unit(vecs[target] + 0.05 * rng.standard_normal(64).astype(np.float32))
    sim, payload = index.nearest("a" * 40, query)
    assert payload == f"row{target}".encode() and sim > 0.9
    assert index.search("b" * 40, query, 0.5) is None  # another context


def test_index_is_a_ring_and_entries_expire() -> None:
    index = SemanticIndex(3)
    v = _unit(np.ones(8, dtype=np.float32))
    for i in range(4):
        index.add("c" * 40, v, f"p{i}".encode(), 10, now=100.0)
    assert index.size == 3
    found = {index.nearest("c" * 40, v, now=100.0)}
    assert found and b"p0" not in {p for _, p in found}
    assert index.nearest("c" * 40, v, now=111.0) is None  # expired
    assert index.clear() == 3 and index.nearest("c" * 40, v) is None
