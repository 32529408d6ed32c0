from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from llm_router import PolicyError, Router
from llm_router_learned import LearnedQualityScorer


def policy(artifact: str, **extra: Any) -> dict[str, Any]:
    models = [
        {
            "id": f"lab/{m}",
            "price": {"input_per_mtok": p, "output_per_mtok": p},
            "context_window": 100_000,
            "max_output_tokens": 4096,
        }
        for m, p in (("big", 10.0), ("small", 0.5), ("mid", 2.0))
    ]
    models.append(
        {
            "id": "lab/newcomer",
            "price": {"input_per_mtok": 1.0, "output_per_mtok": 1.0},
            "context_window": 100_000,
            "max_output_tokens": 4096,
            "quality": {"math": 0.42, "chat": 0.42},
        }
    )
    return {
        "version": 1,
        "models": models,
        "score": [{"learned_quality": {"artifact": artifact, **extra}}, {"cost": {"min_ratio": 100}}],
        "preferences": {"learned_quality": 1.0, "cost": 0.0},
        "routes": [{"models": ["lab/*"]}],
    }


def test_scorer_in_router_policy_file(tmp_path: Path, artifact: Path) -> None:
    (tmp_path / "model.npz").write_bytes(artifact.read_bytes())
    file = tmp_path / "policy.yaml"
    file.write_text(yaml.safe_dump(policy("model.npz")))  # relative to the policy's folder
    router = Router(file)
    math = "solve the integral equation derivative algebra matrix prime root"
    chat = "hello weather movie recipe holiday friend music garden"
    d = router.route(math)
    assert d.selected.id == "lab/big"
    assert d.ranking[0].breakdown["learned_quality"] > 0.6
    # cost weighs in through the normal pipeline: on chat everyone is right, so the cheap model wins
    assert router.route(chat, preferences={"learned_quality": 0.5, "cost": 0.5}).selected.id == "lab/small"
    # and a hard constraint still applies
    capped = router.route(math, constraints={"max_cost_per_1k_tokens": 0.005})
    assert capped.selected.id != "lab/big"


def test_unknown_model_falls_back_to_prior(artifact: Path) -> None:
    router = Router(policy(str(artifact)))
    d = router.route("solve the integral equation", preferences={"learned_quality": 1.0})
    by_id = {c.model.id: c for c in d.ranking}
    task = d.classification.task
    assert by_id["lab/newcomer"].breakdown["learned_quality"] == pytest.approx(
        by_id["lab/newcomer"].model.quality_for(task)
    )
    mean = Router(policy(str(artifact), fallback="mean")).route("solve the integral equation")
    q = {c.model.id: c.breakdown["learned_quality"] for c in mean.ranking}
    assert q["lab/newcomer"] == pytest.approx((q["lab/big"] + q["lab/small"] + q["lab/mid"]) / 3)


def test_models_mapping(artifact: Path) -> None:
    pol = policy(str(artifact), models={"big": "lab/newcomer"})
    d = Router(pol).route("solve the integral equation derivative algebra")
    assert d.selected.id in {"lab/newcomer", "lab/big"}
    scorer = next(s for _, s in Router(pol).scorers if isinstance(s, LearnedQualityScorer))
    assert scorer.column["lab/newcomer"] == scorer.column["big"]


def test_bad_artifact_is_a_policy_error(tmp_path: Path, artifact: Path) -> None:
    (tmp_path / "bad.npz").write_text("garbage")
    with pytest.raises(PolicyError, match=r"bad\.npz"):
        Router(policy(str(tmp_path / "bad.npz")))
    with pytest.raises(PolicyError, match="does not know"):
        Router(policy(str(artifact), models={"nope": "lab/big"}))
