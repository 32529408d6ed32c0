"""A fleet on a real redis-server: two gateway instances (each its own Router, state and SQLite ledger) share
budgets, rate windows, circuit breakers and live latency; Redis killed mid-run degrades to local state."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
from _gateway_helpers import Server, until, wait_for
from deployed_policy import deployed_policy
from llm_router.policy import StatePolicy
from llm_router_test_plugin import plugin as tp
from services import RedisServer, redis_server
from test_gateway_limits import LONG, MSG, burst, client, key_line, policy, spent, start

pytest.importorskip("redis", reason="the redis extra is not installed (pip install 'llm-router[redis]')")

from llm_router.redis_state import RedisState


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset() -> None:
    tp.SCRIPTS.clear()
    tp.CALLS.clear()


def state_block(url: str, on_outage: str = "local") -> str:
    return f"state: {{backend: redis, url: '{url}', refresh_ms: 20, on_outage: {on_outage}}}"


def fleet(tmp_path: Path, write_policy: Callable[..., Path], text: str, n: int = 2) -> list[Server]:
    return [start(tmp_path, write_policy, text, f"gw{i}") for i in range(n)]


def stop(servers: list[Server]) -> None:
    for s in servers:
        if s.thread.is_alive():
            s.stop()


def state_up(server: Server) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    match = re.search(r"^llm_router_state_backend_up (\S+)$", text, re.M)
    assert match is not None
    return float(match.group(1))


def test_two_instances_never_overspend_a_shared_budget(
    tmp_path: Path, write_policy: Callable[..., Path], redis: RedisServer
) -> None:
    """Alone, each instance would admit up to the whole budget (2x overspend); on Redis the worst cases are
    held in one Lua script, so both together spend at most the budget."""
    tp.SCRIPTS["a"] = [LONG]
    servers = fleet(tmp_path, write_policy, policy([key_line("dave", budget_usd_per_day=0.01)], state_block(redis.url)))
    try:
        results = burst(servers, "dave", 16)
        answered = [r for r in results if not isinstance(r, Exception)]
        refused = [r for r in results if isinstance(r, openai.RateLimitError)]
        assert len(answered) + len(refused) == 16 and refused
        assert {r.body["code"] for r in refused} == {"budget_exceeded"}  # type: ignore[index]
        stop(servers)
        total = spent(servers, "dave")
        assert total == pytest.approx(len(answered) * 0.00301)
        assert total <= 0.01
        # Redis holds the fleet's spend (nano-dollars) and no reservation is left behind
        day_fields = redis.cli("HGETALL", "llmr:{dave}:spend").split()
        assert int(day_fields[1]) == round(total * 1e9)
        assert redis.cli("HLEN", "llmr:{dave}:held") == "0"
    finally:
        stop(servers)


def test_rpm_is_shared_by_the_fleet(tmp_path: Path, write_policy: Callable[..., Path], redis: RedisServer) -> None:
    servers = fleet(tmp_path, write_policy, policy([key_line("gil", rpm=3)], state_block(redis.url)))
    try:
        results = burst(servers, "gil", 6)
        refused = [r for r in results if isinstance(r, openai.RateLimitError)]
        assert len(refused) == 3
        assert all("requests-per-minute limit of key 'gil' reached: 3 used" in r.message for r in refused)
    finally:
        stop(servers)


def test_redis_outage_degrades_to_local_and_replays(
    tmp_path: Path, write_policy: Callable[..., Path], redis: RedisServer
) -> None:
    tp.SCRIPTS["a"] = ["text:one two three"]
    keys = [key_line("ivy", budget_usd_per_day=1)]
    (server,) = fleet(tmp_path, write_policy, policy(keys, state_block(redis.url)), 1)
    try:
        client(server, "ivy").chat.completions.create(model="auto", messages=MSG)
        assert state_up(server) == 1
        redis.stop()
        # requests keep flowing on local state; the metric says Redis is away
        for _ in range(3):
            client(server, "ivy").chat.completions.create(model="auto", messages=MSG)
        assert state_up(server) == 0
        redis.start()  # back, empty: the spend of the outage is replayed, nothing is lost
        wait_for(lambda: state_up(server) == 1, "the gateway to see Redis again")
        per_call = round((10 + 3 * 2) / 1e6 * 1e9)
        wait_for(lambda: redis.cli("HGETALL", "llmr:{ivy}:spend"), "the replayed spend")

        def redis_spend() -> int:
            values = redis.cli("HGETALL", "llmr:{ivy}:spend").split()
            return int(values[1]) if len(values) > 1 else 0

        # the three requests of the outage replayed; the first one's spend was in the Redis that died, and the
        # seed from this instance's ledger restores it
        wait_for(lambda: redis_spend() >= 4 * per_call, "the outage's spend in Redis")
        assert redis_spend() == 4 * per_call
    finally:
        stop([server])


def test_on_outage_refuse_answers_503_for_limited_keys(
    tmp_path: Path, write_policy: Callable[..., Path], redis: RedisServer
) -> None:
    keys = [key_line("jo", budget_usd_per_day=1), key_line("kim")]
    (server,) = fleet(tmp_path, write_policy, policy(keys, state_block(redis.url, "refuse")), 1)
    try:
        redis.stop()
        with pytest.raises(openai.InternalServerError) as err:
            client(server, "jo").chat.completions.create(model="auto", messages=MSG)
        assert err.value.status_code == 503
        assert err.value.body["code"] == "state_unavailable"  # type: ignore[index]
        # a key without limits needs no shared state
        assert client(server, "kim").chat.completions.create(model="auto", messages=MSG).choices
    finally:
        stop([server])


# ------------------------------------------------------------------------------------------------
# circuits and latency


def test_circuits_and_latency_are_fleet_wide_with_one_probe(redis: RedisServer) -> None:
    async def main() -> None:
        cfg = StatePolicy(backend="redis", url=redis.url, refresh_ms=10)
        a = RedisState(cfg, failure_threshold=2, cooldown_s=1.0)
        b = RedisState(cfg, failure_threshold=2, cooldown_s=1.0)
        await a.start()
        await b.start()
        try:
            a.record_success("p/m", 120.0, 80.0)
            await until(lambda: "p/m" in b.latency_table(), "b to see a's latency")
            assert b.latency_table()["p/m"].ttft_ms == pytest.approx(120.0)
            a.record_failure("p/m", "server_error")
            a.record_failure("p/m", "server_error")
            await until(lambda: b.open_circuit_reason("p/m") is not None, "b to see the circuit a opened")
            # after the cooldown exactly one instance of the fleet gets the half-open probe
            await until(
                lambda: (a.open_circuit_reason("p/m") is None) != (b.open_circuit_reason("p/m") is None),
                "one instance to claim the probe",
            )
            await asyncio.sleep(0.05)  # several refreshes later: still one
            winner, loser = (a, b) if a.open_circuit_reason("p/m") is None else (b, a)
            assert loser.open_circuit_reason("p/m") is not None
            winner.record_success("p/m", None, None)  # the probe succeeded: closed for the whole fleet
            await until(lambda: loser.open_circuit_reason("p/m") is None, "the loser to see the circuit closed")
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())


# ------------------------------------------------------------------------------------------------
# deployments: windows, cooldowns and circuits shared by the fleet


def deployed(redis_url: str) -> str:
    """eu/small on two deployments, eu with rpm 3; circuits open after 2 failures; state on Redis."""
    return deployed_policy(eu=", rpm: 3", fallback=", circuit_failures: 2", extra=state_block(redis_url))


EU, US = "eu/small@eu/small", "eu/small@us/small"


def ask(server: Server) -> str:
    """One chat request through ``server``; the provider (deployment) that answered it."""
    answer = httpx.post(
        f"{server.url}/v1/chat/completions", json={"model": "auto", "messages": MSG}, timeout=10
    ).raise_for_status()
    assert answer.json()["choices"][0]["message"]["content"]
    return tp.CALLS[-1][0]


def test_deployment_windows_and_cooldowns_are_fleet_wide(
    tmp_path: Path, write_policy: Callable[..., Path], redis: RedisServer
) -> None:
    """Two gateways share one Redis: calls one makes count in the other's rpm window of a deployment, and a
    429's Retry-After rests the deployment for both."""
    a, b = fleet(tmp_path, write_policy, deployed(redis.url))
    try:
        assert [ask(a) for _ in range(3)] == ["eu"] * 3  # eu's rpm is 3: a used all of it
        shared_b = b.gateway.router.state
        wait_for(lambda: (w := shared_b.fleet_window(EU)) is not None and w.requests >= 3, "b to see a's calls")
        assert ask(b) == "us"  # b alone has made no call: without the shared window it would pick eu
        assert ask(a) == "us"
        # a 429 with Retry-After 30 s on the other deployment rests it for the whole fleet
        tp.SCRIPTS["us"] = ["error:rate_limit=30", "text:from us"]
        with pytest.raises(httpx.HTTPStatusError) as err:
            ask(a)  # eu at its rpm limit, us answers 429: nothing left
        assert err.value.response.status_code == 429
        wait_for(lambda: (w := shared_b.fleet_window(US)) is not None and w.cool_until > 0, "b to see the cooldown")
        tp.CALLS.clear()
        with pytest.raises(httpx.HTTPStatusError) as err:
            ask(b)
        assert err.value.response.status_code == 429 and not tp.CALLS  # b did not call either deployment
        message = err.value.response.json()["error"]["message"]
        assert "eu/small: at its rpm limit (3)" in message
        assert re.search(r"us/small: cooling down after a 429 for (29|30)s more", message), message
    finally:
        stop([a, b])


def test_deployment_circuits_are_fleet_wide_and_per_deployment(
    tmp_path: Path, write_policy: Callable[..., Path], redis: RedisServer
) -> None:
    """eu failing opens eu's circuit for both gateways; us keeps serving the model on both."""
    a, b = fleet(tmp_path, write_policy, deployed(redis.url))
    try:
        tp.SCRIPTS["eu"] = ["error:server_error"]
        assert [ask(a) for _ in range(2)] == ["us", "us"]  # eu fails, the call moves to us
        shared_b = b.gateway.router.state
        wait_for(lambda: shared_b.open_circuit_reason(EU) is not None, "b to see eu's circuit open")
        assert shared_b.open_circuit_reason(US) is None
        assert shared_b.open_circuit_reason("eu/small") is None  # the model is served by us
        tp.CALLS.clear()
        assert ask(b) == "us" and [name for name, _ in tp.CALLS] == ["us"]  # b does not try eu at all
        wait_for(lambda: US in shared_b.latency_table(), "us's latency, measured per deployment")
    finally:
        stop([a, b])


def test_deployments_keep_serving_on_local_windows_while_redis_is_away(
    tmp_path: Path, write_policy: Callable[..., Path], redis: RedisServer
) -> None:
    """Redis killed: the fleet's windows are no longer read (a stale snapshot would hold eu at its limit for
    ever); each gateway counts its own calls, and eu's rpm holds per process."""
    (a,) = fleet(tmp_path, write_policy, deployed(redis.url), 1)
    try:
        assert [ask(a) for _ in range(2)] == ["eu", "eu"]
        shared = a.gateway.router.state
        wait_for(lambda: (w := shared.fleet_window(EU)) is not None and w.requests == 2, "the fleet's window")
        redis.stop()
        wait_for(lambda: shared.fleet_window(EU) is None, "the gateway to see Redis away")
        assert [ask(a) for _ in range(3)] == ["eu", "us", "us"]  # its own three calls of eu's rpm 3, then us
    finally:
        stop([a])


def test_least_busy_and_latency_strategies_see_the_whole_fleet(redis: RedisServer) -> None:
    """Two routers' pools on one Redis: calls in flight on one instance make the other pick the idle deployment
    (least-busy), and latencies measured by one rank the deployments for the other (latency)."""
    from llm_router.deployments import DeploymentPool
    from llm_router.policy import ModelDeployments

    def spec(strategy: str) -> ModelDeployments:
        return ModelDeployments.model_validate(
            {"strategy": strategy, "targets": [{"provider": "eu"}, {"provider": "us"}]}
        )

    async def scenario() -> None:
        cfg = StatePolicy(backend="redis", url=redis.url, refresh_ms=20)
        a, b = RedisState(cfg), RedisState(cfg)
        await a.start()
        await b.start()
        try:
            busy_a = DeploymentPool("m/x", spec("least-busy"), "x", state=a)
            busy_b = DeploymentPool("m/x", spec("least-busy"), "x", state=b)
            held = [busy_a.pick()[0] for _ in range(3)]  # a: eu, us, eu in flight (least-busy alternates)
            assert [d.provider for d in held if d] == ["eu", "us", "eu"]
            await until(lambda: (w := b.fleet_window("m/x@eu/x")) is not None and w.in_flight == 2, "b sees 2")
            chosen, passed = busy_b.pick()
            assert chosen is not None and chosen.provider == "us"  # b has nothing in flight itself
            assert passed == ("eu/x: 2 calls in flight (chosen: 1)",)
            for dep in held:
                assert dep is not None
                busy_a.done(dep, latency_ms=5.0, tokens=10, retry_after_s=None, limited=False)
            await until(lambda: (w := b.fleet_window("m/x@eu/x")) is not None and w.in_flight == 0, "ends")

            fast_a = DeploymentPool("m/y", spec("latency"), "y", state=a)
            fast_b = DeploymentPool("m/y", spec("latency"), "y", state=b)
            for provider, ms in (("eu", 400.0), ("us", 20.0), ("eu", 600.0)):
                dep = next(d for d in fast_a.deployments if d.provider == provider)
                fast_a.done(dep, latency_ms=ms, tokens=0, retry_after_s=None, limited=False)
            await until(lambda: (w := b.fleet_window("m/y@eu/y")) is not None and w.latency_ms == 500.0, "latency")
            chosen, passed = fast_b.pick()
            assert chosen is not None and chosen.provider == "us"  # measured by a: b never called either
            assert passed == ("eu/y: latency 500 ms",)
        finally:
            await a.close()
            await b.close()

    asyncio.run(scenario())
