"""``eval route`` decides once per prompt and re-ranks per operating point: the choices must be exactly those
of a full decision at every point."""

from __future__ import annotations

from pathlib import Path

import pytest
from llm_router_learned.data import load_prices, load_rows, models_of
from llm_router_learned.evaluation import Sweep, rerank


@pytest.mark.parametrize(("name", "fallback"), [("synth-test", None), ("pair-test", "difficulty")])
def test_reranked_choices_equal_full_decisions(data_dir: Path, artifact: Path, name: str, fallback: str) -> None:
    path = data_dir / f"{name}.jsonl"
    rows = load_rows([path])
    models = models_of(rows)
    sweep = Sweep.build(rows, models, artifact, load_prices(path), fallback=fallback)
    sweep.probe()
    assert len(sweep.decisions) == len(rows)
    points = [*sweep.points(15), 0.0, 0.05, 0.3, 0.5, 0.77, 1.0]
    changed = set()
    for w in points:
        fast, full = sweep.choose(w), sweep.choose_full(w)
        assert fast == full, f"cost weight {w}"
        changed.add(tuple(fast))
    # the points really move the choices (a test where every point chose the same would prove little)
    assert len(changed) >= 3


def test_rerank_refuses_a_decision_without_the_weighted_scorer(data_dir: Path, artifact: Path) -> None:
    path = data_dir / "synth-test.jsonl"
    rows = load_rows([path])[:3]
    sweep = Sweep.build(rows, models_of(rows), artifact, load_prices(path))
    decision = sweep._route(rows[0], 0.0)  # cost weight 0: the cost scorer was not asked
    with pytest.raises(ValueError, match="lacks scorer columns"):
        rerank(decision, {"learned_quality": 0.5, "cost": 0.5})
