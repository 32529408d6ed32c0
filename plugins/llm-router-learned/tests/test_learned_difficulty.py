"""``fallback: difficulty``: an unknown candidate's prior scaled by the prompt's predicted hardness."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llm_router import Router
from llm_router.taxonomy import DEFAULT_TASKS
from llm_router_learned import LearnedQualityScorer, QualityModel, train
from llm_router_learned.data import load_rows

MATH = "solve the integral equation derivative algebra matrix prime root"
CHAT = "hello weather movie recipe holiday friend music garden"


def _model(mid: str, price: float, prior: float | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": mid,
        "price": {"input_per_mtok": price, "output_per_mtok": price},
        "context_window": 100_000,
        "max_output_tokens": 4096,
    }
    if prior is not None:  # the same prior for every task, so the classifier's label does not matter
        entry["quality"] = {t: prior for t in DEFAULT_TASKS}
    return entry


def _policy(artifact: Path, fallback: str, known: bool = True, **unknown: tuple[float, float]) -> dict[str, Any]:
    """The artifact's three models (``lab/big``, ``lab/small``, ``lab/mid``) when ``known``, plus unknown
    models ``new/<name>`` with (price, prior)."""
    models = [_model(f"lab/{m}", p) for m, p in (("big", 10.0), ("small", 0.5), ("mid", 2.0))] if known else []
    models += [_model(f"new/{name}", price, prior) for name, (price, prior) in unknown.items()]
    return {
        "version": 1,
        "models": models,
        "score": [{"learned_quality": {"artifact": str(artifact), "fallback": fallback}}, {"cost": {"min_ratio": 100}}],
        "preferences": {"learned_quality": 1.0, "cost": 0.0},
        "routes": [{"models": [m["id"] for m in models]}],
    }


def _scorer(router: Router) -> LearnedQualityScorer:
    return next(s for _, s in router.scorers if isinstance(s, LearnedQualityScorer))


def _quality(router: Router, prompt: str, **prefs: float) -> dict[str, float]:
    d = router.route(prompt, preferences=prefs or {"learned_quality": 1.0, "cost": 0.0})
    return {c.model.id: c.breakdown["learned_quality"] for c in d.ranking}


@pytest.fixture(scope="module")
def artifact_d06(tmp_path_factory: pytest.TempPathFactory, artifact: Path) -> Path:
    """The session artifact with d̄ set to 0.6 in its header (so h is easy to compute by hand)."""
    qm = QualityModel.load(artifact)
    qm.header["mean_prediction"] = 0.6
    path = tmp_path_factory.mktemp("difficulty") / "d06.npz"
    qm.save(path)
    return path


def test_difficulty_formula_hand_computed(artifact_d06: Path) -> None:
    router = Router(_policy(artifact_d06, "difficulty", newcomer=(1.0, 0.42), veteran=(3.0, 0.9), perfect=(4.0, 1.0)))
    scorer = _scorer(router)
    assert scorer.mean_prediction == pytest.approx(0.6)
    # predictions injected through the per-prompt cache: d = mean over the artifact's three models
    scorer._cache["hard prompt"] = np.array([0.3, 0.1, 0.2])  # d = 0.2: h = 0.8 / 0.4 = 2
    scorer._cache["easy prompt"] = np.array([0.9, 0.85, 0.95])  # d = 0.9: h = 0.1 / 0.4 = 0.25
    scorer._cache["average prompt"] = np.array([0.8, 0.4, 0.6])  # d = 0.6: h = 1
    easy = _quality(router, "easy prompt")
    assert easy["new/veteran"] == pytest.approx(1 - 0.1 * 0.25)  # 0.975
    assert easy["new/newcomer"] == pytest.approx(1 - 0.58 * 0.25)  # 0.855
    assert easy["new/perfect"] == pytest.approx(1.0)
    average = _quality(router, "average prompt")
    assert average["new/veteran"] == pytest.approx(0.9)  # an average prompt gives the prior itself
    assert average["new/newcomer"] == pytest.approx(0.42)
    # h = 2 is past the point where the lowest prior (0.42) reaches 0, h_max = 1 / 0.58: h stops there
    hard = _quality(router, "hard prompt")
    assert hard["new/newcomer"] == pytest.approx(0.0)
    assert hard["new/veteran"] == pytest.approx(1 - 0.1 / 0.58)  # 0.8276, not 1 − 0.1 · 2
    assert hard["new/perfect"] == pytest.approx(1.0)  # a prior of 1 stays 1 at any hardness
    # known models keep their own predictions
    assert (hard["lab/big"], hard["lab/small"], hard["lab/mid"]) == pytest.approx((0.3, 0.1, 0.2))
    for q in (*hard.values(), *easy.values(), *average.values()):
        assert 0.0 <= q <= 1.0
    # without the low-prior newcomer among the candidates, h = 2 applies in full: 1 − 0.1 · 2
    alone = Router(_policy(artifact_d06, "difficulty", veteran=(3.0, 0.9)))
    _scorer(alone)._cache["hard prompt"] = np.array([0.3, 0.1, 0.2])
    assert _quality(alone, "hard prompt")["new/veteran"] == pytest.approx(0.8)


def test_difficulty_gap_never_shrinks_and_scores_stay_in_range(artifact_d06: Path) -> None:
    """From the easiest to the hardest prompt the gap between two unknown models only grows, and no score leaves
    [0, 1]. (Clipping each score at 0 would fail this: past h = 1 / (1 − 0.5) the weaker model's score sticks at
    0 while the stronger one's keeps falling.)"""
    router = Router(_policy(artifact_d06, "difficulty", known=False, strongx=(10.0, 0.7), weakx=(1.0, 0.5)))
    scorer = _scorer(router)
    gaps = []
    for d in np.linspace(1.0, 0.0, 21):  # h from 0 to 2.5
        prompt = f"d={d:.2f}"
        scorer._cache[prompt] = np.full(3, d)
        q = _quality(router, prompt)
        assert 0.0 <= q["new/weakx"] <= q["new/strongx"] <= 1.0
        gaps.append(q["new/strongx"] - q["new/weakx"])
    assert gaps[0] == pytest.approx(0.0)  # h = 0: every unknown model gets 1
    assert all(b >= a - 1e-12 for a, b in pairwise(gaps))
    assert gaps[-1] == pytest.approx(0.2 * 2.0)  # h stops at 1 / (1 − 0.5) = 2: gap (0.7 − 0.5) · 2


def test_difficulty_degenerate_reference_gives_prior(artifact_d06: Path) -> None:
    router = Router(_policy(artifact_d06, "difficulty", veteran=(3.0, 0.9)))
    scorer = _scorer(router)
    scorer.mean_prediction = 1.0  # every training answer perfect: no difficulty scale
    scorer._cache["p"] = np.array([0.2, 0.2, 0.2])
    assert scorer.hardness(np.array([0.2, 0.2, 0.2])) == 1.0
    assert _quality(router, "p")["new/veteran"] == pytest.approx(0.9)


def test_difficulty_known_models_unaffected(artifact: Path) -> None:
    by_fallback = {
        fb: Router(_policy(artifact, fb, newcomer=(1.0, 0.42), veteran=(3.0, 0.9)))
        for fb in ("prior", "difficulty", "mean", "zero")
    }
    for prompt in (MATH, CHAT, "python loop bug compile class"):
        pred = _scorer(by_fallback["prior"]).predictions(prompt)
        for router in by_fallback.values():
            q = _quality(router, prompt)
            assert (q["lab/big"], q["lab/small"], q["lab/mid"]) == pytest.approx(tuple(pred))
    # and the unknown ones do differ between the fallbacks on a hard prompt
    q_prior = _quality(by_fallback["prior"], MATH)["new/newcomer"]
    q_diff = _quality(by_fallback["difficulty"], MATH)["new/newcomer"]
    assert q_prior == pytest.approx(0.42)
    assert q_diff < q_prior - 0.1


def test_difficulty_reference_stored_at_training(tmp_path: Path, data_dir: Path, artifact: Path) -> None:
    qm = QualityModel.load(artifact)
    y_mean = float(np.mean(qm.arrays["Y"].astype(np.float64)))
    d_bar = qm.header["mean_prediction"]
    # the stacker is calibrated out of fold, so its mean prediction is close to the mean training score
    assert 0.0 < d_bar < 1.0
    assert d_bar == pytest.approx(y_mean, abs=0.03)
    assert qm.mean_prediction == d_bar
    knn = train(load_rows([data_dir / "synth-train.jsonl"]), method="knn_tfidf")
    assert knn.header["mean_prediction"] == pytest.approx(y_mean, abs=0.05)
    # an artifact written before the key existed: d̄ = the mean of its stored training scores
    del qm.header["mean_prediction"]
    legacy = tmp_path / "legacy.npz"
    qm.save(legacy)
    loaded = QualityModel.load(legacy)
    assert "mean_prediction" not in loaded.header
    assert loaded.mean_prediction == pytest.approx(y_mean)


def test_difficulty_harder_prompt_flips_choice_between_unknown_models(artifact: Path) -> None:
    """Two models the artifact does not know; at one fixed cost weight the hard (math) prompt goes to the
    stronger, dearer one and the easy (chat) prompt to the cheaper one. The priors alone cannot do that."""
    unknown = {"strongx": (10.0, 0.8), "weakx": (1.0, 0.6)}  # price ratio 10: cost-score gap 0.5 (min_ratio 100)
    prefs = {"learned_quality": 0.8, "cost": 0.2}  # the strong one wins when its quality gap exceeds 0.125
    diff = Router(_policy(artifact, "difficulty", known=False, **unknown))
    assert diff.route(MATH, preferences=prefs).selected.id == "new/strongx"
    assert diff.route(CHAT, preferences=prefs).selected.id == "new/weakx"
    q_math, q_chat = _quality(diff, MATH), _quality(diff, CHAT)
    assert q_math["new/strongx"] - q_math["new/weakx"] > q_chat["new/strongx"] - q_chat["new/weakx"] + 0.1
    for fallback in ("prior", "mean"):
        flat = Router(_policy(artifact, fallback, known=False, **unknown))
        assert flat.route(MATH, preferences=prefs).selected.id == flat.route(CHAT, preferences=prefs).selected.id
