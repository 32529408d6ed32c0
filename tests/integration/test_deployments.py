"""Deployments: one model served by several provider instances (the test plugin's scripted provider as two
"regions"), each with its limits and weight; the executor skips one at its limit or cooling down after a
429 and says why in the attempt."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from deployed_policy import deployed_policy
from llm_router import PolicyError, Router
from llm_router.deployments import DeploymentPool
from llm_router.errors import NoCandidatesError, RateLimitError, ServerError
from llm_router.policy import ModelDeployments
from llm_router_test_plugin import plugin as tp


@pytest.fixture
def make(write_policy: Callable[[str], Path]) -> Iterator[Callable[..., Router]]:
    routers: list[Router] = []

    def build(strategy: str = "least-busy", eu: str = "", us: str = "") -> Router:
        router = Router(write_policy(deployed_policy(strategy, eu, us)))
        routers.append(router)
        return router

    yield build
    for r in routers:
        r.close()


def called() -> list[str]:
    return [name for name, _ in tp.CALLS]


def test_a_429_moves_to_the_other_deployment_and_cools_the_first(make: Callable[..., Router]) -> None:
    router = make()
    tp.SCRIPTS["eu"] = ["error:rate_limit", "text:from eu"]
    tp.SCRIPTS["us"] = ["text:from us"]
    result = router.route_and_execute("hello")
    assert result.response.text == "from us"  # no retry was configured: the other deployment is not a retry
    first, second = result.attempts
    assert (first.deployment, first.error_kind) == ("eu/small", "rate_limit")
    assert second.deployment == "us/small" and second.outcome == "ok"
    assert second.passed_over == ("eu/small: failed for this request",)
    # eu rests for the 429's Retry-After (the scripted provider says 0.01 s) ... then takes calls again
    tp.CALLS.clear()
    import time

    time.sleep(0.05)
    router.route_and_execute("hello")
    assert called() == ["eu"]


def test_rpm_limit_and_cooldown_are_named(make: Callable[..., Router]) -> None:
    router = make(eu=", rpm: 1")
    tp.SCRIPTS["eu"] = ["text:eu"]
    tp.SCRIPTS["us"] = ["text:us"]
    assert router.route_and_execute("hello").attempts[0].deployment == "eu/small"
    second = router.route_and_execute("hello").attempts[0]
    assert second.deployment == "us/small"
    assert second.passed_over == ("eu/small: at its rpm limit (1)",)


def test_every_deployment_unavailable_is_a_rate_limit_naming_each(make: Callable[..., Router]) -> None:
    router = make(eu=", rpm: 1", us=", rpm: 1")
    router.route_and_execute("hello")
    router.route_and_execute("hello")
    with pytest.raises(RateLimitError) as err:
        router.route_and_execute("hello")
    message = str(err.value)
    assert "every deployment of eu/small is at its limit or cooling down" in message
    assert "eu/small: at its rpm limit (1)" in message and "us/small: at its rpm limit (1)" in message
    assert len(tp.CALLS) == 2


def test_weighted_standby_and_least_busy(make: Callable[..., Router]) -> None:
    router = make("weighted", eu=", weight: 0")  # eu is a standby: only when us cannot take the call
    for _ in range(20):
        router.route_and_execute("hello")
    assert set(called()) == {"us"}
    tp.CALLS.clear()
    busy = make("least-busy")
    for _ in range(4):
        busy.route_and_execute("hello")
    assert called() == ["eu"] * 4  # one at a time: neither is busy, the first listed wins


def test_policy_errors_name_the_deployment(write_policy: Callable[[str], Path]) -> None:
    text = deployed_policy().replace("provider: us", "provider: asia")
    with pytest.raises(PolicyError) as err:
        Router(write_policy(text))
    assert "deployments.eu/small.targets[1].provider: no provider named 'asia'" in str(err.value)


def pool(strategy: str, **targets: dict[str, object]) -> DeploymentPool:
    spec = ModelDeployments.model_validate(
        {"strategy": strategy, "targets": [{"provider": name, **t} for name, t in targets.items()]}
    )
    return DeploymentPool("p/m", spec, "m", seed=7)


def test_latency_and_usage_strategies() -> None:
    fast = pool("latency", a={}, b={})
    a, b = fast.deployments
    first, _ = fast.pick()
    assert first is a  # unmeasured first
    fast.done(a, latency_ms=900, tokens=0, retry_after_s=None, limited=False)
    second, _ = fast.pick()
    assert second is b
    fast.done(b, latency_ms=100, tokens=0, retry_after_s=None, limited=False)
    third, passed = fast.pick()
    assert third is b and passed == ("a/m: latency 900 ms",)
    usage = pool("usage", a={"tpm": 1000}, b={"tpm": 10_000})
    x, y = usage.deployments
    x.in_flight += 1
    usage.done(x, latency_ms=None, tokens=500, retry_after_s=None, limited=False)  # a call of 500 tokens on a
    assert usage.pick()[0] is y  # a used half its tpm, b nothing


def test_shuffle_only_draws_deployments_that_can_take_the_call() -> None:
    shuffled = pool("shuffle", a={"rpm": 1}, b={}, c={})
    drawn = {shuffled.pick()[0].provider for _ in range(30)}  # type: ignore[union-attr]
    assert drawn == {"a", "b", "c"}
    assert all(shuffled.pick()[0].provider != "a" for _ in range(30))  # type: ignore[union-attr]


def test_a_stream_moves_to_the_other_deployment_before_any_text(make: Callable[..., Router]) -> None:
    import anyio

    router = make()
    tp.SCRIPTS["eu"] = ["error:server_error"]
    tp.SCRIPTS["us"] = ["stream:Hel|lo"]

    async def main() -> None:
        async with await router.astream("hello") as stream:
            text = "".join([chunk.text async for chunk in stream])
        assert text == "Hello"
        assert stream.result is not None
        assert [a.deployment for a in stream.result.attempts] == ["eu/small", "us/small"]

    anyio.run(main)
    # nothing is left in flight: least-busy sends the next call to the first listed again
    tp.CALLS.clear()
    tp.SCRIPTS["eu"] = ["text:eu"]
    router.route_and_execute("hello")
    assert called() == ["eu"]


def test_rpm_counts_each_call_once(make: Callable[..., Router]) -> None:
    """A call that ended with tokens is still one request of the rpm window (it was counted twice)."""
    router = make(eu=", rpm: 2")
    tp.SCRIPTS["eu"] = ["text:one two three"]
    assert [router.route_and_execute("hello").attempts[0].deployment for _ in range(3)] == [
        "eu/small",
        "eu/small",
        "us/small",
    ]


def test_circuits_and_latency_are_per_deployment(make: Callable[..., Router]) -> None:
    """One deployment failing opens its own circuit: the other keeps serving the model, which the health
    constraint still admits; only when every deployment's circuit is open is the model unavailable. Latency is
    measured per deployment and folded into the model's."""
    router = make()
    router.state.failure_threshold = 2  # type: ignore[attr-defined]
    tp.SCRIPTS["eu"] = ["error:server_error"]
    tp.SCRIPTS["us"] = ["text:from us"]
    for _ in range(2):  # eu fails, us answers: eu's circuit counts two failures
        assert router.route_and_execute("hello").response.text == "from us"
    assert router.state.open_circuit_reason("eu/small@eu/small") is not None
    assert router.state.open_circuit_reason("eu/small@us/small") is None
    assert router.state.open_circuit_reason("eu/small") is None  # the model is still served
    tp.CALLS.clear()
    result = router.route_and_execute("hello")
    assert called() == ["us"]  # eu is not even tried while its circuit is open
    assert result.attempts[0].passed_over[0].startswith("eu/small: its circuit open after 2 consecutive failures")
    table = router.state.latency_table()
    assert "eu/small@us/small" in table and "eu/small" in table and "eu/small@eu/small" not in table
    tp.SCRIPTS["us"] = ["error:server_error"]
    for _ in range(2):
        with pytest.raises(ServerError):  # eu's circuit open, us failing: no other candidate routes
            router.route_and_execute("hello")
    reason = router.state.open_circuit_reason("eu/small")
    assert reason is not None and reason.startswith("every deployment's circuit is open")
    with pytest.raises(NoCandidatesError) as err:  # the health constraint now sees the model as unavailable
        router.route("hello")
    assert "eu/small: health: every deployment's circuit is open" in str(err.value)
