"""The exact response cache through the library: Router.route_and_execute(..., cache=...) and streams."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from llm_router import Router
from llm_router.errors import PolicyError, ServerError
from llm_router_test_plugin import plugin as tp

POLICY = """
providers:
  a: {type: scripted, models: [small, large], price_in: 1, price_out: 2}
preferences: {cost: 1}
fallback: {retries: 0, backoff_ms: 1, max_backoff_ms: 5, max_models: 2, timeout_s: 5}
cache: {exact: true%s}
"""


@pytest.fixture
def make_router(write_policy: Callable[[str], Path]) -> Callable[..., Router]:
    routers: list[Router] = []

    def make(extra: str = "") -> Router:
        router = Router(write_policy(POLICY % extra, f"policy{len(routers)}.yaml"))
        routers.append(router)
        return router

    yield make
    for r in routers:
        r.close()


def test_second_identical_request_is_a_hit_at_cost_zero(make_router: Callable[..., Router]) -> None:
    router = make_router()
    tp.SCRIPTS["a"] = ["text:first answer", "text:second answer"]
    first = router.route_and_execute("What is the capital of France?", max_tokens=20)
    second = router.route_and_execute("What is the capital of France?", max_tokens=20)
    assert (first.cache, second.cache) == ("miss", "hit")
    assert second.generated_response == "first answer" == first.generated_response
    assert len(tp.CALLS) == 1
    assert second.cost == 0.0 and second.saved_cost == pytest.approx(first.cost) and first.cost > 0
    assert second.selected_model == first.selected_model and second.usage == first.usage
    assert second.attempts == ()
    assert second.to_json()["cache"] == "hit" and second.to_json()["saved_cost_usd"] == pytest.approx(first.cost)
    hooks = [h for h, _ in tp.EVENTS]
    assert hooks.count("on_result") == 2  # a hit is reported like any answer


@pytest.mark.parametrize(
    "change",
    [
        {"max_tokens": 21},
        {"temperature": 0.5},
        {"preferences": {"cost": 1, "quality": 1}},
        {"model": "a/large"},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
        {"response_format": {"type": "json_object"}},
        {"stop": ["\n"]},
    ],
)
def test_what_changes_the_answer_changes_the_key(make_router: Callable[..., Router], change: dict) -> None:
    router = make_router()
    tp.SCRIPTS["a"] = ["text:one", "text:two"]
    base = {"max_tokens": 20}
    router.route_and_execute("same prompt", **base)
    other = router.route_and_execute("same prompt", **{**base, **change})
    assert other.cache == "miss" and other.generated_response == "two"


def test_system_prompt_is_part_of_the_key(make_router: Callable[..., Router]) -> None:
    router = make_router()
    tp.SCRIPTS["a"] = ["text:one", "text:two"]
    router.route_and_execute([{"role": "system", "content": "be terse"}, {"role": "user", "content": "hi"}])
    other = router.route_and_execute([{"role": "system", "content": "be verbose"}, {"role": "user", "content": "hi"}])
    assert other.cache == "miss"


def test_per_request_options(make_router: Callable[..., Router]) -> None:
    router = make_router()
    tp.SCRIPTS["a"] = ["text:one", "text:two", "text:three", "text:four"]
    assert router.route_and_execute("q", cache={"no_store": True}).cache == "miss"
    assert router.route_and_execute("q").cache == "miss"  # the first answer was not stored
    bypass = router.route_and_execute("q", cache={"no_cache": True})
    assert (bypass.cache, bypass.generated_response) == ("bypass", "three")
    hit = router.route_and_execute("q")  # no_cache still stores: the newest answer is served
    assert (hit.cache, hit.generated_response) == ("hit", "three")


def test_the_decision_says_what_the_cache_did(make_router: Callable[..., Router]) -> None:
    """A library user reading only the decision (or its JSON) sees the cache status too."""
    router = make_router()
    tp.SCRIPTS["a"] = ["text:one", "text:two", "text:three"]
    statuses = []
    for options in (None, None, {"no_cache": True}):
        result = router.route_and_execute("decide", cache=options)
        assert result.decision.cache == result.cache
        assert result.decision.to_json()["cache"] == result.cache == result.to_json()["decision"]["cache"]
        statuses.append(result.decision.cache)
    assert statuses == ["miss", "hit", "bypass"]
    gen = router.stream("decide")
    with pytest.raises(StopIteration) as stop:
        while True:
            next(gen)
    streamed = stop.value.value
    assert streamed.decision.cache == "hit" == streamed.decision.to_json()["cache"]


def test_per_request_ttl_expires(make_router: Callable[..., Router]) -> None:
    import time

    router = make_router()
    tp.SCRIPTS["a"] = ["text:one", "text:two"]
    router.route_and_execute("ttl", cache={"ttl_s": 0.05})
    time.sleep(0.1)
    assert router.route_and_execute("ttl").cache == "miss"


def test_errors_are_never_cached(make_router: Callable[..., Router]) -> None:
    router = make_router()
    tp.SCRIPTS["a"] = ["error:server_error", "error:server_error", "text:fine"]
    with pytest.raises(ServerError):
        router.route_and_execute("fails first")
    result = router.route_and_execute("fails first")
    assert (result.cache, result.generated_response) == ("miss", "fine")


def test_partitions_do_not_share(make_router: Callable[..., Router]) -> None:
    router = make_router()
    tp.SCRIPTS["a"] = ["text:for alice", "text:for bob"]
    router.route_and_execute("hello", cache={"partition": "alice"})
    bob = router.route_and_execute("hello", cache={"partition": "bob"})
    assert (bob.cache, bob.generated_response) == ("miss", "for bob")
    assert router.route_and_execute("hello", cache={"partition": "alice"}).generated_response == "for alice"


def test_stream_is_stored_and_replayed_as_chunks(make_router: Callable[..., Router]) -> None:
    router = make_router()
    tp.SCRIPTS["a"] = ["text:Hello| there| friend", "text:other"]
    chunks = list(router.stream("stream me"))
    assert "".join(c.text for c in chunks) == "Hello there friend"
    gen = router.stream("stream me")
    replayed = []
    while True:
        try:
            replayed.append(next(gen))
        except StopIteration as stop:
            result = stop.value
            break
    assert "".join(c.text for c in replayed) == "Hello there friend"
    assert replayed[-1].finish_reason == "stop" and replayed[-1].usage is not None
    assert result.cache == "hit" and result.cost == 0.0 and len(tp.CALLS) == 1
    # a completion request hits the streamed answer too (streaming does not change the answer)
    assert router.route_and_execute("stream me").generated_response == "Hello there friend"


def test_long_answer_replays_in_several_chunks(make_router: Callable[..., Router]) -> None:
    router = make_router()
    text = " ".join(f"word{i}" for i in range(60))
    tp.SCRIPTS["a"] = [f"text:{text}"]
    router.route_and_execute("long one")
    replayed = list(router.stream("long one"))
    assert len(replayed) > 3 and "".join(c.text for c in replayed) == text


def test_memory_lru_is_bounded_in_bytes(make_router: Callable[..., Router]) -> None:
    router = make_router(", max_bytes: 2000")
    for i in range(40):
        tp.SCRIPTS["a"] = [f"text:{'x' * 100} {i}"]
        router.route_and_execute(f"prompt {i}")
    stats = router._loop.call(router.acache_stats)
    assert stats["bytes"] <= 2000 and 0 < stats["entries"] < 40 and stats["evictions"] > 0
    assert router.route_and_execute("prompt 39").cache == "hit"  # the newest survive
    assert router.route_and_execute("prompt 0").cache == "miss"  # the oldest went first


def test_redis_backend_is_shared_between_routers(make_router: Callable[..., Router], redis_url: str) -> None:
    extra = f", backend: redis, url: '{redis_url}', namespace: t-shared"
    one, two = make_router(extra), make_router(extra)
    one._loop.call(one.acache_clear)
    tp.SCRIPTS["a"] = ["text:from one", "text:from two"]
    assert one.route_and_execute("shared?").cache == "miss"
    hit = two.route_and_execute("shared?")
    assert (hit.cache, hit.generated_response) == ("hit", "from one")
    stats = two._loop.call(two.acache_stats)
    assert stats["backend"] == "redis" and stats["entries"] == 1 and stats["hits"] == 1 and stats["misses"] == 1
    assert two._loop.call(two.acache_clear) == 1
    assert one.route_and_execute("shared?").cache == "miss"


def test_redis_ttl_is_redis_expiry(make_router: Callable[..., Router], redis_url: str) -> None:
    import redis

    router = make_router(f", backend: redis, url: '{redis_url}', namespace: t-ttl, ttl_s: 30")
    router._loop.call(router.acache_clear)
    router.route_and_execute("expiring")
    client = redis.Redis.from_url(redis_url)
    (key,) = client.keys("t-ttl:e:*")
    assert 0 < client.pttl(key) <= 30_000
    client.close()


def test_redis_away_answers_without_the_cache(write_policy: Callable[[str], Path]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    router = Router(write_policy(POLICY % f", backend: redis, url: 'redis://127.0.0.1:{port}/0'"))
    try:
        tp.SCRIPTS["a"] = ["text:still answered"]
        result = router.route_and_execute("redis is down")
        assert (result.cache, result.generated_response) == ("bypass", "still answered")
    finally:
        router.close()


def test_bad_cache_section_names_file_line_and_field(write_policy: Callable[[str], Path]) -> None:
    path = write_policy(POLICY % ", backend: redis")
    with pytest.raises(PolicyError) as info:
        Router(path)
    text = str(info.value)
    assert "policy.yaml:5" in text and "cache" in text and "url" in text


def test_no_cache_section_means_no_cache(write_policy: Callable[[str], Path]) -> None:
    router = Router(write_policy(POLICY.replace("cache: {exact: true%s}", "")))
    try:
        tp.SCRIPTS["a"] = ["text:one", "text:two"]
        router.route_and_execute("q")
        again = router.route_and_execute("q")
        assert again.cache is None and again.generated_response == "two"
        assert again.decision.cache is None and "cache" not in again.decision.to_json()
    finally:
        router.close()


def test_redis_cache_uses_the_state_backends_redis_when_it_has_no_url(
    write_policy: Callable[[str], Path], redis_url: str
) -> None:
    """With `state: {backend: redis}` the fleet already has a Redis: `cache.backend: redis` needs no url of its own."""
    import redis

    text = (POLICY % ", backend: redis, namespace: t-state") + f"state: {{backend: redis, url: '{redis_url}'}}\n"
    router = Router(write_policy(text))
    try:
        router._loop.call(router.acache_clear)
        tp.SCRIPTS["a"] = ["text:stored in the state's redis"]
        assert router.route_and_execute("fleet?").cache == "miss"
        assert router.route_and_execute("fleet?").cache == "hit"
    finally:
        router.close()
    client = redis.Redis.from_url(redis_url)
    assert client.keys("t-state:e:*")
    client.close()


def test_redis_cache_without_any_url_is_a_policy_error(write_policy: Callable[[str], Path]) -> None:
    with pytest.raises(PolicyError) as info:
        Router(write_policy(POLICY % ", backend: redis"))
    assert "cache.url" in str(info.value) and "state: {backend: redis, url}" in str(info.value)
