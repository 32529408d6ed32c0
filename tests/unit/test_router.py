"""The decision pipeline with the built-in policy and catalogue (no provider is called)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from llm_router import Constraints, NoCandidatesError, Router
from llm_router.errors import ConfigurationError


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(autoload=False)


def test_catalogue_has_four_vendors_with_prices(router: Router) -> None:
    models = list(router.catalogue)
    assert len(models) >= 20
    assert {m.provider for m in models} >= {"openai", "anthropic", "cohere", "google"}
    for m in models:
        assert m.price.source.startswith("genai-prices") or m.price.source
        assert m.quality_source and m.latency_source
        assert m.context_window > 0 and m.max_output_tokens > 0


def test_route_explains_itself(router: Router) -> None:
    decision = router.route("Write a Python function to calculate fibonacci numbers")
    assert decision.classification.task == "code"
    assert decision.classification.method == "rules"
    assert decision.selected is decision.ranking[0].model
    scores = [c.score for c in decision.ranking]
    assert scores == sorted(scores, reverse=True)
    top = decision.ranking[0]
    assert set(top.breakdown) == {"quality", "cost", "latency"}
    assert abs(sum(decision.weights[k] * v for k, v in top.breakdown.items()) - top.score) < 1e-5
    assert decision.routing_time_ms > 0
    assert decision.input_tokens > 0
    assert "code" in decision.explain()


def test_route_rule_preferences_apply(router: Router) -> None:
    decision = router.route("Summarize this article in three sentences: the sky is blue.")
    assert decision.classification.task == "summarization"
    assert decision.weights == pytest.approx({"quality": 0.4, "cost": 0.5, "latency": 0.1})


def test_request_preferences_override_policy_name_by_name(router: Router) -> None:
    prompt = "Write a Python function to sort a list"
    policy_weights = router.route(prompt).weights
    assert policy_weights == pytest.approx({"quality": 0.75, "cost": 0.2, "latency": 0.05})
    more_cost = router.route(prompt, preferences={"cost_weight": 0.75})  # quality and latency keep theirs
    expected = {"quality": 0.75 / 1.55, "cost": 0.75 / 1.55, "latency": 0.05 / 1.55}
    assert more_cost.weights == pytest.approx(expected, abs=1e-6)
    only_cost = router.route(prompt, preferences={"cost": 1, "quality": 0, "latency": 0})
    assert only_cost.weights == {"cost": 1.0}
    cheapest = min(only_cost.ranking, key=lambda c: c.estimated_cost)
    assert only_cost.selected.id == cheapest.model.id
    best = router.route(prompt, preferences={"quality": 1.0, "cost": 0, "latency": 0})
    assert best.ranking[0].breakdown["quality"] == 1.0


def test_weights_are_worked_out_afresh_for_each_request_that_changes_them(router: Router) -> None:
    """The engine keeps the last preferences' normalised weights: a decision's weights are its own copy, and a
    request with other (or bad) preferences between two plain ones changes only its own decision."""
    prompt = "Write a Python function to sort a list"
    first = router.route(prompt)
    first.weights["quality"] = 99.0  # the caller's copy; the next decision is not affected
    assert router.route(prompt).weights == pytest.approx({"quality": 0.75, "cost": 0.2, "latency": 0.05})
    assert router.route(prompt, preferences={"cost": 1, "quality": 0, "latency": 0}).weights == {"cost": 1.0}
    with pytest.raises(ConfigurationError, match="no scorer of that name"):
        router.route(prompt, preferences={"vibes": 1})
    assert router.route(prompt).weights == pytest.approx({"quality": 0.75, "cost": 0.2, "latency": 0.05})


def test_weights_must_not_all_be_zero(router: Router) -> None:
    with pytest.raises(ConfigurationError, match="at least one weight"):
        router.route("hi", preferences={"cost": 0, "quality": 0, "latency": 0})


def test_unknown_preference_is_an_error(router: Router) -> None:
    with pytest.raises(ConfigurationError, match="no scorer of that name"):
        router.route("hi", preferences={"vibes": 1})


def test_bad_constraint_value_is_a_clear_error(router: Router) -> None:
    with pytest.raises(ConfigurationError, match=r"constraints\.max_latency_ms"):
        router.route("hi", constraints={"max_latency_ms": -5})


def test_cost_constraint_rejects_with_reason(router: Router) -> None:
    decision = router.route("Write a Python function to sort a list", constraints={"max_cost_per_1k_tokens": 0.001})
    assert decision.rejected
    for rejection in decision.rejected:
        if rejection.constraint == "lifecycle":  # a retired model that is cheap enough
            continue
        assert rejection.constraint == "cost"
        assert "max_cost_per_1k_tokens" in rejection.reason
    tokens = decision.input_tokens + decision.expected_output_tokens
    for cand in decision.ranking:
        assert cand.estimated_cost / tokens * 1000 <= 0.001


def test_latency_constraint(router: Router) -> None:
    decision = router.route("hi there, how are you?", constraints=Constraints(max_latency_ms=3000))
    assert all(c.estimated_latency_ms <= 3000 for c in decision.ranking)
    assert any(r.constraint == "latency" for r in decision.rejected)


def test_context_window_counts_prompt_and_output(router: Router) -> None:
    long_prompt = "word " * 150_000  # ~150k tokens
    decision = router.route(long_prompt, max_tokens=1000)
    reasons = {r.model_id: r.reason for r in decision.rejected if r.constraint == "context_window"}
    assert reasons, "some models have windows below 150k tokens"
    assert all("context window" in r and "needed" in r for r in reasons.values())
    assert all(c.model.context_window >= decision.input_tokens + 1000 for c in decision.ranking)


def test_max_output_constraint(router: Router) -> None:
    decision = router.route("Write a novel", max_tokens=60_000)
    assert all(c.model.max_output_tokens >= 60_000 for c in decision.ranking)
    assert any("max output" in r.reason for r in decision.rejected)


def test_capabilities_from_request_and_constraints(router: Router) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    decision = router.route("call the tool", tools=tools, constraints={"required_capabilities": ["vision"]})
    for cand in decision.ranking:
        assert cand.model.capabilities.tools and cand.model.capabilities.vision
    assert all(r.constraint in ("capabilities", "lifecycle") for r in decision.rejected)
    assert any(r.constraint == "capabilities" for r in decision.rejected)


def test_provider_allow_and_block(router: Router) -> None:
    only = router.route("hello", constraints={"allowed_providers": ["anthropic"]})
    assert {c.model.provider for c in only.ranking} == {"anthropic"}
    blocked = router.route("hello", constraints={"blocked_models": ["openai/*", "google/*"]})
    assert {c.model.provider for c in blocked.ranking} <= {"anthropic", "cohere"}


def test_no_candidates_lists_every_model_and_why(router: Router) -> None:
    with pytest.raises(NoCandidatesError) as info:
        router.route("hello", constraints={"max_cost_per_request": 0.0})
    err = info.value
    assert len(err.rejected) == len(router.catalogue)
    text = str(err)
    for model in router.catalogue:
        assert model.id in text
    assert "max_cost_per_request" in text


def test_ties_are_broken_deterministically(write_policy: Callable[[str], Path]) -> None:
    policy = write_policy(
        """
        models:
          - {id: x/b, price: {input_per_mtok: 1, output_per_mtok: 1}, context_window: 8000, max_output_tokens: 1000}
          - {id: x/a, price: {input_per_mtok: 1, output_per_mtok: 1}, context_window: 8000, max_output_tokens: 1000}
          - {id: x/c, price: {input_per_mtok: 0.5, output_per_mtok: 1}, context_window: 8000, max_output_tokens: 1000}
        routes:
          - models: ["x/*"]
        preferences: {quality: 1}
        """
    )
    router = Router(policy, autoload=False)
    for _ in range(3):
        ids = [c.model.id for c in router.route("hello").ranking]
        assert ids == ["x/c", "x/a", "x/b"]  # equal scores: cheaper first, then by id


def test_route_rules_pick_candidates(write_policy: Callable[[str], Path]) -> None:
    policy = write_policy(
        """
        routes:
          - when: {task: code}
            models: [anthropic/claude-opus-4-5, openai/gpt-4.1]
          - when: {task: [summarization, chat]}
            models: ["openai/gpt-4o-mini"]
          - models: "*"
        """
    )
    router = Router(policy, autoload=False)
    code = router.route("Write a Python function to reverse a string")
    assert {c.model.id for c in code.ranking} == {"anthropic/claude-opus-4-5", "openai/gpt-4.1"}
    assert code.route.startswith("routes[0]")
    chat = router.route("hello!")
    assert [c.model.id for c in chat.ranking] == ["openai/gpt-4o-mini"]


def test_policy_adds_and_overrides_models(write_policy: Callable[[str], Path]) -> None:
    policy = write_policy(
        """
        models:
          - id: local/gemma-3-270m
            price: {input_per_mtok: 0, output_per_mtok: 0}
            context_window: 32768
            max_output_tokens: 8192
            quality: {chat: 0.3}
          - id: openai/gpt-4.1
            price: {input_per_mtok: 0.01, output_per_mtok: 0.01, source: negotiated}
          - {id: openai/o3, enabled: false}
        """
    )
    router = Router(policy, autoload=False)
    local = router.catalogue.get("local/gemma-3-270m")
    assert local is not None and local.provider == "local" and local.model == "gemma-3-270m"
    gpt = router.catalogue.get("openai/gpt-4.1")
    assert gpt is not None and gpt.price.input_per_mtok == 0.01 and gpt.price.source == "negotiated"
    assert gpt.context_window > 1_000_000 - 1  # untouched fields keep the built-in values
    assert "openai/o3" not in router.catalogue


def test_declared_providers_restrict_the_catalogue(write_policy: Callable[[str], Path]) -> None:
    policy = write_policy("providers:\n  anthropic: {type: anthropic}\n")
    router = Router(policy, autoload=False)
    assert {m.provider for m in router.catalogue} == {"anthropic"}


def test_messages_and_multi_turn(router: Router) -> None:
    decision = router.route(
        [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "Write a haiku about rain"},
            {"role": "assistant", "content": "Soft rain on the roof"},
            {"role": "user", "content": "Now summarize this paragraph in one sentence: the meeting moved to Tuesday."},
        ]
    )
    assert decision.classification.task == "summarization"


def test_async_twin_matches_sync(router: Router) -> None:
    async def main() -> str:
        decision = await router.aroute("Translate 'good morning' into French")
        return decision.classification.task

    assert anyio.run(main) == "translation"


def test_executing_rejects_uninstalled_providers() -> None:
    router = Router(autoload=False)
    with pytest.raises(NoCandidatesError) as info:
        router.route_and_execute("hello")
    assert all(r.constraint == "health" and "not installed" in r.reason for r in info.value.rejected)
    router.close()


def test_live_latency_measurements_replace_priors() -> None:
    from llm_router.state import MemoryState

    state = MemoryState()
    router = Router(autoload=False, state=state)
    before = {c.model.id: c.estimated_latency_ms for c in router.route("hello").ranking}
    target = "openai/gpt-4o-mini"
    state.record_success(target, None, 5000.0)  # a very fast measured output speed, no first-token figure
    after = {c.model.id: c.estimated_latency_ms for c in router.route("hello").ranking}
    assert after[target] < before[target]
    assert all(after[k] == before[k] for k in before if k != target)
    state.record_success(target, 10.0, None)
    assert state.latency(target) == (10.0, 5000.0)


def test_open_circuit_rejects_the_model() -> None:
    from llm_router.state import MemoryState

    state = MemoryState(failure_threshold=2, cooldown_s=60)
    router = Router(autoload=False, state=state)
    target = router.route("hello").selected.id
    state.record_failure(target, "server_error")
    assert router.route("hello").selected.id == target  # one failure: still closed
    state.record_failure(target, "server_error")
    decision = router.route("hello")
    assert decision.selected.id != target
    rejection = next(r for r in decision.rejected if r.model_id == target)
    assert rejection.constraint == "health" and "circuit open after 2 consecutive failures" in rejection.reason
    state.record_success(target, None, None)
    assert router.route("hello").selected.id == target


def test_best_and_top_match_the_full_ranking(router: Router) -> None:
    lazy = router.route("Write a Python function to sort a list")
    top, best3, count = lazy.top, lazy.best(3), lazy.candidate_count
    full = router.route("Write a Python function to sort a list").ranking
    assert count == len(full)
    assert [c.model.id for c in best3] == [c.model.id for c in full[:3]]
    assert top.model.id == full[0].model.id and top.breakdown == full[0].breakdown
    assert lazy.best(10_000) == lazy.ranking  # past the end: the whole ranking
    assert "candidates" in lazy.explain()
