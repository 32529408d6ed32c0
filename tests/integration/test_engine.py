"""The execution engine and the decision's isolation: circuit breakers count only upstream-health failures,
post-processor crashes are their own kind, raising scorers / constraints / model listings are contained,
streams settle their cost in one place, and the public API that faces use."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import anyio
import llm_router
import pytest
from llm_router import Candidate, NoCandidatesError, Router, RoutingContext
from llm_router.errors import ComponentError, ConfigurationError, PostprocessError
from llm_router.state import MemoryState
from llm_router.types import CompletionResponse, ModelInfo, RouteRequest
from llm_router_test_plugin import plugin as tp

POLICY = """
providers:
  a: {type: scripted, models: [small, large], price_in: 1, price_out: 2}
  b: {type: scripted, models: [only], price_in: 5, price_out: 5}
preferences: {cost: 1}
fallback: {retries: 0, backoff_ms: 1, max_backoff_ms: 5, max_models: 3, timeout_s: 0.5, circuit_failures: 2}
"""


class CrashingPost(llm_router.PostProcessor):
    name = "crashing"

    async def process(self, response: CompletionResponse, request: RouteRequest, model: ModelInfo) -> Any:
        raise KeyError("a bug in a post-processor")


class RaisingScorer(llm_router.Scorer):
    name = "raising_score"

    def score(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[float]:
        raise RuntimeError("scorer bug")


class RaisingConstraint(llm_router.Constraint):
    name = "raising_check"

    def check(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[str | None]:
        raise RuntimeError("constraint bug")


class InProcess:
    @llm_router.hookimpl
    def register_postprocessors(self, register: Callable[..., None]) -> None:
        register(CrashingPost)

    @llm_router.hookimpl
    def register_scorers(self, register: Callable[..., None]) -> None:
        register(RaisingScorer)

    @llm_router.hookimpl
    def register_constraints(self, register: Callable[..., None]) -> None:
        register(RaisingConstraint)


def _router(write_policy: Callable[[str], Path], extra: str = "", **kw: Any) -> Router:
    return Router(write_policy(POLICY + extra), plugins=[InProcess()], **kw)


# ------------------------------------------------------------------------------------------------
# circuit breakers


def test_client_errors_never_open_a_circuit(write_policy: Callable[[str], Path]) -> None:
    state = MemoryState(failure_threshold=2, cooldown_s=60)
    with _router(write_policy, state=state) as router:
        tp.SCRIPTS["a"] = ["error:context_length"]
        tp.SCRIPTS["b"] = ["error:bad_request"]
        for _ in range(5):
            with pytest.raises(llm_router.ProviderError):
                router.route_and_execute("hello")
        assert not state.has_open_circuits()
        decision = router.route("hello")
        assert not decision.rejected and decision.selected.id == "a/small"


def test_upstream_health_failures_open_the_circuit(write_policy: Callable[[str], Path]) -> None:
    state = MemoryState(failure_threshold=2, cooldown_s=60)
    with _router(write_policy, state=state) as router:
        tp.SCRIPTS["a"] = ["error:server_error", "error:server_error", "error:server_error", "error:server_error"]
        tp.SCRIPTS["b"] = ["text:from b"]
        for _ in range(2):
            assert router.route_and_execute("hello").selected_model.id == "b/only"
        rejected = {r.model_id: r for r in router.route("hello").rejected}
        assert set(rejected) == {"a/small", "a/large"}
        assert all(r.constraint == "health" and "circuit open" in r.reason for r in rejected.values())


def test_a_crashing_postprocessor_is_its_own_error_and_spares_the_circuit(
    write_policy: Callable[[str], Path],
) -> None:
    state = MemoryState(failure_threshold=1, cooldown_s=60)
    with _router(write_policy, "postprocess: [crashing]\n", state=state) as router:
        tp.SCRIPTS["a"] = ["text:fine"]
        tp.SCRIPTS["b"] = ["text:fine"]
        with pytest.raises(PostprocessError) as info:
            router.route_and_execute("hello")
        error = info.value
        assert error.broken and error.postprocessor == "crashing" and "KeyError" in str(error)
        assert [(a.model_id, a.error_kind) for a in error.attempts] == [
            ("a/small", "postprocess"),
            ("a/large", "postprocess"),
            ("b/only", "postprocess"),
        ]
        assert not state.has_open_circuits()  # every model answered: none is unhealthy


# ------------------------------------------------------------------------------------------------
# isolation in the decision


def test_a_raising_scorer_is_skipped_for_the_request(write_policy: Callable[[str], Path]) -> None:
    policy = POLICY.replace(
        "preferences: {cost: 1}", "score: [quality, cost, raising_score]\npreferences: {cost: 1, raising_score: 1}"
    )
    with Router(write_policy(policy), plugins=[InProcess()]) as router:
        tp.EVENTS.clear()
        decision = router.route("hello")
        assert [(s.kind, s.name) for s in decision.skipped] == [("scorer", "raising_score")]
        assert "scorer bug" in decision.skipped[0].error
        assert decision.weights == {"cost": 1.0}  # the rest re-normalised
        assert all(set(c.breakdown) == {"cost"} for c in decision.ranking)
        assert "skipped scorer raising_score" in decision.explain()
        errors = [error for hook, error in tp.EVENTS if hook == "on_error"]
        assert len(errors) == 1 and isinstance(errors[0], ComponentError)
        assert errors[0].component == "raising_score"
        assert decision.to_json()["skipped"] == [
            {"kind": "scorer", "name": "raising_score", "error": "RuntimeError: scorer bug"}
        ]


def test_a_raising_constraint_is_skipped_for_the_request(write_policy: Callable[[str], Path]) -> None:
    with _router(write_policy, "constrain: [capabilities, raising_check, health]\n") as router:
        tp.SCRIPTS["a"] = ["text:still routed"]
        result = router.route_and_execute("hello")
        assert result.response.text == "still routed"
        assert [(s.kind, s.name) for s in result.decision.skipped] == [("constraint", "raising_check")]


class BadModels(llm_router.Provider):
    name = "bad_models"

    def models(self) -> Sequence[ModelInfo]:
        raise RuntimeError("listing exploded")


class BadModelsPlugin:
    @llm_router.hookimpl
    def register_providers(self, register: Callable[..., None]) -> None:
        register(BadModels)


def test_a_provider_whose_models_raise_loses_its_models_only(write_policy: Callable[[str], Path]) -> None:
    policy = POLICY.replace("  b: {type: scripted", "  broken: {type: bad_models}\n  b: {type: scripted", 1)
    with Router(write_policy(policy), plugins=[BadModelsPlugin()]) as router:
        assert any("provider 'broken'" in w and "listing exploded" in w for w in router.warnings)
        assert not [m for m in router.catalogue if m.provider == "broken"]
        assert router.route("hello").selected.id == "a/small"


def test_a_policy_naming_a_model_of_that_provider_says_why(write_policy: Callable[[str], Path]) -> None:
    policy = POLICY.replace("  b: {type: scripted", "  broken: {type: bad_models}\n  b: {type: scripted", 1)
    policy += "routes:\n  - models: [broken/x, a/small]\n"
    with pytest.raises(llm_router.PolicyError) as info:
        Router(write_policy(policy), plugins=[BadModelsPlugin()])
    assert "unknown model 'broken/x'" in str(info.value) and "listing exploded" in str(info.value)


# ------------------------------------------------------------------------------------------------
# streams settle in one place


def test_stream_settlement_when_completed_failed_and_abandoned(write_policy: Callable[[str], Path]) -> None:
    async def main() -> None:
        async with _router(write_policy) as router:
            request = router.build_request("hello", stream=True)
            tp.SCRIPTS["a"] = ["text:one|two|three"]
            stream = router.open_stream(request, await router.adecide(request, for_execution=True))
            assert [c.text async for c in stream][:3] == ["one", "two", "three"]
            done = stream.settlement()
            assert done.completed and done.model is not None and done.model.id == "a/small"
            assert done.usage.output_tokens == 3 and done.cost == pytest.approx((10 * 1 + 3 * 2) / 1e6)

            tp.SCRIPTS["a"] = ["streamfail:alpha|beta"]
            stream = router.open_stream(request, await router.adecide(request, for_execution=True))
            seen = []
            with pytest.raises(llm_router.ProviderError) as info:
                async for chunk in stream:
                    seen.append(chunk.text)
            assert seen[:2] == ["alpha", "beta"] and info.value.attempts[-1].error_kind == "server_error"
            failed = stream.settlement()
            assert not failed.completed and failed.usage.output_tokens > 0
            assert failed.usage.input_tokens == request_tokens(router, request)

            tp.SCRIPTS["a"] = ["slow:0.05:x|y|z|w"]
            async with router.open_stream(request, await router.adecide(request, for_execution=True)) as stream:
                async for _ in stream:
                    break  # the consumer walks away after the first chunk
            assert "a" in tp.CANCELLED  # the upstream stream was closed at once
            left = stream.settlement()
            assert not left.completed and left.model is not None and left.usage.output_tokens == 1

    anyio.run(main)


def request_tokens(router: Router, request: RouteRequest) -> int:
    return router.decide(request).input_tokens


# ------------------------------------------------------------------------------------------------
# the request boundary


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (None, "got NoneType"),
        (42, "got int"),
        (b"hi", "got bytes"),
        ("", "the prompt is empty"),
        ("  \n\t ", "the prompt is empty"),
        ([{"role": "user", "content": "   "}], "the prompt is empty"),
        ([{"content": "no role"}], "messages.0.role"),
        ([42], "messages.0"),
        ({"role": "user", "content": "a dict, not a list"}, "got dict"),
    ],
)
def test_bad_prompts_are_configuration_errors(prompt: Any, message: str) -> None:
    router = Router(autoload=False)
    with pytest.raises(ConfigurationError) as info:
        router.route(prompt)
    assert str(info.value).startswith("invalid request:") and message in str(info.value)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 1e999])
def test_infinite_weights_and_limits_are_refused(value: float) -> None:
    router = Router(autoload=False)
    with pytest.raises(ConfigurationError, match=r"preferences\.cost"):
        router.route("hello", preferences={"cost": value})
    with pytest.raises(ConfigurationError, match=r"constraints\.max_latency_ms"):
        router.route("hello", constraints={"max_latency_ms": value})


def test_a_pinned_model_that_is_rejected_names_its_own_rejection(write_policy: Callable[[str], Path]) -> None:
    with _router(write_policy) as router:
        with pytest.raises(NoCandidatesError) as info:
            router.route("hello", model="a/small", constraints={"blocked_models": ["a/small"]})
        assert [r.model_id for r in info.value.rejected] == ["a/small"]


class ThreadProbe(llm_router.Scorer):
    name = "thread_probe"
    seen: ClassVar[list[int]] = []

    def score(self, candidates: Sequence[Candidate], ctx: RoutingContext) -> Sequence[float]:
        import threading

        ThreadProbe.seen.append(threading.get_ident())
        return [0.5] * len(candidates)


class ProbePlugin:
    @llm_router.hookimpl
    def register_scorers(self, register: Callable[..., None]) -> None:
        register(ThreadProbe)


def test_a_huge_prompt_is_decided_off_the_event_loop(write_policy: Callable[[str], Path]) -> None:
    import threading

    policy = POLICY.replace(
        "preferences: {cost: 1}", "score: [cost, thread_probe]\npreferences: {cost: 1, thread_probe: 1}"
    )

    async def main() -> tuple[int, list[int]]:
        async with Router(write_policy(policy), plugins=[ProbePlugin()]) as router:
            ThreadProbe.seen.clear()
            await router.aroute("short prompt")
            await router.aroute("word " * 10_000)  # 50,000 characters
            return threading.get_ident(), list(ThreadProbe.seen)

    loop_thread, seen = anyio.run(main)
    assert seen[0] == loop_thread  # a short prompt is decided in place (cheaper than a thread hop)
    assert seen[1] != loop_thread  # a huge one in a worker thread


# ------------------------------------------------------------------------------------------------
# the same faults from a real installed distribution (tests/plugins/llm-router-faulty-plugin)

FAULTY = """
providers:
  a: {type: scripted, models: [small, large], price_in: 1, price_out: 2}
  bad: {type: faulty_models}
score: [quality, cost, faulty_score]
constrain: [capabilities, faulty_check, health]
preferences: {cost: 1, faulty_score: 1}
fallback: {retries: 0}
"""


def test_a_faulty_distribution_degrades_the_decision_not_the_router(write_policy: Callable[[str], Path]) -> None:
    from typer.testing import CliRunner

    path = write_policy(FAULTY)
    with Router(path) as router:  # the provider whose models() raises loses its models; start-up goes on
        assert [w for w in router.warnings if "'bad'" in w and "faulty models" in w]
        tp.SCRIPTS["a"] = ["text:answered"]
        tp.EVENTS.clear()
        result = router.route_and_execute("hello")
        assert result.response.text == "answered"
        skipped = {(s.kind, s.name): s.error for s in result.decision.skipped}
        assert skipped == {
            ("constraint", "faulty_check"): "RuntimeError: faulty constraint",
            ("scorer", "faulty_score"): "RuntimeError: faulty scorer",
        }
        reported = [e.component for hook, e in tp.EVENTS if hook == "on_error" and isinstance(e, ComponentError)]
        assert sorted(reported) == ["faulty_check", "faulty_score"]
    from llm_router.cli import build_app

    done = CliRunner().invoke(build_app(), ["route", "hello", "--json", "-p", str(path)])
    assert done.exit_code == 0, done.output
    assert {s["name"] for s in json.loads(done.stdout)["skipped"]} == {"faulty_check", "faulty_score"}


def test_policy_validate_warns_about_a_provider_whose_models_raise(write_policy: Callable[[str], Path]) -> None:
    from llm_router.cli import build_app
    from typer.testing import CliRunner

    done = CliRunner().invoke(build_app(), ["policy", "validate", "--json", str(write_policy(FAULTY))])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["valid"] is True
    assert [w for w in report["warnings"] if w.startswith("provider 'bad': listing its models failed")]


class Warming(llm_router.Provider):
    name = "warming"
    warmed: ClassVar[list[str]] = []

    def warm_up(self) -> None:
        import threading

        if self.context.name == "cold":
            raise ImportError("no SDK here")
        Warming.warmed.append(threading.current_thread().name)


class WarmingPlugin:
    @llm_router.hookimpl
    def register_providers(self, register: Callable[..., None]) -> None:
        register(Warming)


def test_warm_up_loads_each_provider_off_the_event_loop_and_survives_a_failure(
    write_policy: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    import threading

    policy = POLICY.replace(
        "  b: {type: scripted", "  warm: {type: warming}\n  cold: {type: warming}\n  b: {type: scripted", 1
    )
    Warming.warmed.clear()

    async def main() -> None:
        async with Router(write_policy(policy), plugins=[WarmingPlugin()]) as router:
            await router.awarm_up()

    anyio.run(main)
    assert len(Warming.warmed) == 1 and Warming.warmed[0] != threading.current_thread().name
    assert "provider 'cold' could not warm up: ImportError: no SDK here" in caplog.text
