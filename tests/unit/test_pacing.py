"""Budget pacing: ``preferences.pace`` moves the cost weight so the day's spend follows the budget line."""

from __future__ import annotations

from typing import Any

import pytest
from llm_router import PolicyError, Preferences, Router
from llm_router.pacing import DAY_S, PaceBook, paced_cost_weight
from llm_router.types import Pace

pytest.importorskip("llm_router_test_plugin")

DEAR, CHEAP = "a/large", "a/small"


def policy(pace: dict[str, Any] | None, cost: float = 0.3) -> dict[str, Any]:
    prefs: dict[str, Any] = {"quality": 1 - cost, "cost": cost}
    if pace is not None:
        prefs["pace"] = pace
    return {
        "version": 1,
        "providers": {"a": {"type": "scripted", "models": ["small", "large"], "price_in": 1, "price_out": 2}},
        "models": [
            {"id": CHEAP, "quality": {"general": 0.6}},
            {"id": DEAR, "quality": {"general": 0.9}},
        ],
        "score": ["quality", {"cost": {"min_ratio": 4}}],
        "preferences": prefs,
    }


class Clock:
    def __init__(self) -> None:
        self.now = 100 * DAY_S  # midnight UTC

    def __call__(self) -> float:
        return self.now


def test_pace_is_parsed_merged_and_refused_when_bad() -> None:
    p = Preferences.model_validate({"cost": 0.5, "pace": {"budget_usd_per_day": 10}})
    assert p.weights == {"cost": 0.5} and p.pace == Pace(budget_usd_per_day=10)
    assert p.merged(Preferences.model_validate({"cost": 0.2})).pace == p.pace
    with pytest.raises(PolicyError, match="budget_usd_per_day"):
        Router(policy({"budget_usd_per_day": -1}))


def test_the_controller_moves_the_weight_with_the_error() -> None:
    pace = Pace(budget_usd_per_day=100)
    assert paced_cost_weight(pace, 0.3, spent=50, t=0.5) == pytest.approx(0.3)
    assert paced_cost_weight(pace, 0.3, spent=60, t=0.5) > 0.9  # 10 % over plan: strongly cheaper
    assert paced_cost_weight(pace, 0.3, spent=49, t=0.5) < 0.3


def test_overspending_raises_the_cost_weight_and_picks_the_cheaper_model() -> None:
    router = Router(policy({"budget_usd_per_day": 1.0}))
    clock = Clock()
    router.pacing.clock = clock
    clock.now += DAY_S / 2
    router.pacing.record("policy", 0.5)  # on plan
    on_plan = router.route("hello there")
    assert on_plan.weights["cost"] == pytest.approx(0.3, abs=1e-6)
    assert on_plan.selected.id == DEAR
    router.pacing.record("policy", 0.1)  # 10 % of the budget over plan
    over = router.route("hello there")
    assert over.weights["cost"] > 0.9 and over.selected.id == CHEAP
    clock.now += DAY_S  # a new day starts from nothing spent: under plan, the weight falls
    assert router.route("hello there").weights["cost"] < 0.3


def _simulate_day(router: Router, clock: Clock, n: int) -> list[tuple[float, float]]:
    """n requests spread over a day; each answered one costs its decision's estimate."""
    out = []
    start = clock.now
    for i in range(n):
        clock.now = start + DAY_S * i / n
        d = router.route("hello there")
        router.pacing.record("policy", d.top.estimated_cost)
        out.append((i / n, router.pacing.spent()))
    return out


def test_spend_tracks_the_budget_line_through_a_day() -> None:
    # unpaced, the dear model answers every request: the day costs 1.4 budgets
    free = Router(policy(None))
    clock = Clock()
    free.pacing.clock = clock
    estimate = free.route("hello there").top.estimated_cost
    n = 400
    budget = estimate * n * 0.7  # the cheap model costs half: the dear one for 40 % of the traffic
    unpaced = _simulate_day(free, clock, n)
    assert unpaced[-1][1] > 1.4 * budget

    paced = Router(policy({"budget_usd_per_day": budget}))
    clock2 = Clock()
    paced.pacing.clock = clock2
    curve = _simulate_day(paced, clock2, n)
    spent = curve[-1][1]
    assert 0.9 * budget <= spent <= 1.05 * budget
    # through the day, never more than 5 % of the budget away from the line (after the first hour)
    assert all(abs(s - budget * t) <= 0.05 * budget for t, s in curve if t > 1 / 24)


def test_answered_requests_feed_the_book_per_scope() -> None:
    from llm_router_test_plugin import plugin as tp

    tp.SCRIPTS["a"] = ["text:hi", "text:hi"]
    router = Router(policy({"budget_usd_per_day": 5.0}))
    result = router.route_and_execute("hello there")
    assert result.cost is not None and result.cost > 0
    assert router.pacing.spent() == pytest.approx(result.cost)
    keyed = router.route_and_execute("hello there", metadata={"pace_scope": "key:alice"})
    assert router.pacing.spent("key:alice") == pytest.approx(keyed.cost)
    assert router.pacing.spent() == pytest.approx(result.cost + keyed.cost)


def test_a_book_forgets_yesterday() -> None:
    clock = Clock()
    book = PaceBook(clock)
    book.record("policy", 3.0)
    clock.now += DAY_S
    assert book.spent() == 0.0
