"""``eval online``: a routing dataset replayed as a stream of bandit feedback.

The rows are split: the last ``holdout`` share of the file (its tail, never seen by the learner) is kept for
the frozen evaluation; the rest is the stream, shuffled with ``seed``. A :class:`llm_router.Router` is built
whose catalogue is the dataset's models (as for ``eval route``) and whose scorers are ``online_quality`` and
``cost``. For each stream prompt the router decides with what it knows so far (``Router.route``, which emits
``on_decision``), and only the chosen model's score is revealed, as ``Router.feedback`` with that rating.

Measured during the stream, at the stream's cost weight: the cumulative mean quality and cost of the online
router, of the *static prior router* (the same policy with nothing learned and no exploration: catalogue
priors or the ``--start-from`` artifact), of random routing and of the oracle (the best score on each prompt);
the regret (oracle quality − chosen quality, summed); the exploration cost (static prior router's cumulative
quality − the online router's; negative when learning already pays during the stream).

After the stream the learner is frozen (no exploration, no learning) and swept over the cost weight on the
held-out rows exactly like ``eval route`` (one decision per prompt, re-ranked per point): AIQ (several
models) or APGR (a pair), beside the static prior router and the offline ``learned_quality`` router trained
with full information (every model's score) on the same stream rows.

With ``pace`` (USD per day) the stream is a replayed day: the policy gets ``preferences.pace``, prompt i arrives
at i / n of the day (the router's pace book reads the replay's clock), each chosen model's realised cost is
recorded as spent, and the router's own pacing moves the cost weight; the spend curve is reported against the
target line.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from llm_router import Router

from .data import OUT_TOKENS, Row, cost_matrix, fit_prices, quality_matrix
from .evaluation import Sweep, _model_prices, catalogue_id, cost_min_ratio, dataset_models, measure
from .online import OnlineQualityScorer

Tick = Callable[[int], None]
QUALITY = "online_quality"


def online_policy(
    models: Sequence[str],
    prices: Mapping[str, Mapping[str, float]],
    learner: Mapping[str, Any],
    priors: Mapping[str, float] | None = None,
    pace: float | None = None,
) -> dict[str, Any]:
    """A policy over the dataset's models scored by ``online_quality`` (with ``learner``'s parameters) and
    ``cost``; ``priors`` (model → quality) become the catalogue's quality priors for every task."""
    entries = dataset_models(models, prices, priors)
    return {
        "version": 1,
        "models": entries,
        "score": [{QUALITY: dict(learner)}, {"cost": {"min_ratio": cost_min_ratio(prices)}}],
        "preferences": {QUALITY: 1.0, "cost": 0.0, **({"pace": {"budget_usd_per_day": pace}} if pace else {})},
        "routes": [{"models": [catalogue_id(m) for m in models]}],
    }


def split_tail(rows: Sequence[Row], holdout: float) -> tuple[list[Row], list[Row]]:
    """(stream, held-out): the held-out rows are the file's last ``holdout`` share."""
    if not 0 < holdout < 1:
        raise ValueError("holdout must be in (0, 1)")
    cut = len(rows) - max(1, round(len(rows) * holdout))
    if cut < 1:
        raise ValueError(f"{len(rows)} rows are too few to hold out {holdout:.0%}")
    return list(rows[:cut]), list(rows[cut:])


@dataclass
class OnlineSetup:
    """The data of one replay: rows, their true quality and cost matrices, prices, and how to build routers."""

    models: list[str]
    prices: Mapping[str, Any] | None
    fitted: dict[str, dict[str, float]]
    learner: dict[str, Any]
    priors: Mapping[str, float] | None = None
    pace: float | None = None

    def router(self, paced: bool = False, **overrides: Any) -> tuple[Router, OnlineQualityScorer]:
        pace = self.pace if paced else None
        policy = online_policy(self.models, self.fitted, {**self.learner, **overrides}, self.priors, pace)
        router = Router(policy)
        scorer = next(s for _, s in router.scorers if isinstance(s, OnlineQualityScorer))
        return router, scorer

    def sweep(self, router: Router, rows: list[Row]) -> Sweep:
        id_to_name = {catalogue_id(m): m for m in self.models}
        return Sweep(router, rows, self.models, id_to_name, self.prices, cost_min_ratio(self.fitted), quality=QUALITY)


@dataclass
class StreamLog:
    """Per stream step: the chosen model's index, its quality and cost, the cost weight used."""

    chosen: list[int] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)


def replay(
    router: Router,
    scorer: OnlineQualityScorer,
    rows: Sequence[Row],
    q: np.ndarray,
    c: np.ndarray,
    weight: float,
    tick: Tick | None = None,
) -> StreamLog:
    """Route each row in order, reveal only the chosen model's score as feedback. With a paced policy the rows
    are one day (row i at i / n of it) and each chosen model's realised cost is recorded as spent."""
    idx = {catalogue_id(m): j for j, m in enumerate(_models_of(router))}
    log = StreamLog()
    n = len(rows)
    clock = _ReplayClock()
    router.pacing.clock = clock
    scorer.warm([str(r["prompt"]) for r in rows])
    for i, row in enumerate(rows):
        clock.now = DAY_S * (1000 + i / n)
        d = router.route(str(row["prompt"]), preferences={QUALITY: 1.0 - weight, "cost": weight}, max_tokens=OUT_TOKENS)
        j = idx[d.selected.id]
        rating = float(q[i, j])
        router.feedback({"request_id": d.request_id, "rating": rating})
        router.pacing.record("policy", float(c[i, j]))
        log.chosen.append(j)
        log.quality.append(rating)
        log.cost.append(float(c[i, j]))
        log.weight.append(d.weights.get("cost", 0.0))
        if tick and i % 100 == 99:
            tick(100)
    return log


DAY_S = 86_400.0


class _ReplayClock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def _models_of(router: Router) -> list[str]:
    return [m.model for m in router.catalogue if m.provider == "data"]


def curves(values: np.ndarray, points: int = 50) -> dict[str, list[float]]:
    """The cumulative mean of ``values`` at ``points`` evenly spaced steps (``step`` 1-based)."""
    n = len(values)
    steps = np.unique(np.linspace(1, n, min(points, n)).round().astype(int))
    cum = np.cumsum(values)
    return {"step": steps.tolist(), "mean": (cum[steps - 1] / steps).round(6).tolist()}


def stream_report(log: StreamLog, q: np.ndarray, c: np.ndarray, static_choice: Sequence[int]) -> dict[str, Any]:
    """The stream's figures: cumulative curves of the online, static prior, random and oracle routers."""
    rows_i = np.arange(len(q))
    chosen_q, chosen_c = np.array(log.quality), np.array(log.cost)
    static = np.asarray(static_choice)
    series = {
        "online": (chosen_q, chosen_c),
        "static_priors": (q[rows_i, static], c[rows_i, static]),
        "random": (q.mean(axis=1), c.mean(axis=1)),
        "oracle": (q.max(axis=1), c[rows_i, _oracle(q, c)]),
    }
    out: dict[str, Any] = {"n": len(q)}
    for name, (qq, cc) in series.items():
        out[name] = {
            "mean_quality": float(qq.mean()),
            "mean_cost": float(cc.mean()),
            "quality_curve": curves(qq),
            "cost_curve": curves(cc),
        }
    regret = q.max(axis=1) - chosen_q
    out["online"]["regret"] = float(regret.sum())
    out["online"]["regret_curve"] = {"step": curves(regret)["step"], "cumulative": _cum_at(regret)}
    out["static_priors"]["regret"] = float((q.max(axis=1) - series["static_priors"][0]).sum())
    # mean quality per prompt the online router lost against the static prior router (negative: it gained)
    out["exploration_cost"] = float(series["static_priors"][0].sum() - chosen_q.sum()) / len(q)
    out["model_share"] = {int(j): float(np.mean(np.array(log.chosen) == j)) for j in sorted(set(log.chosen))}
    return out


def _cum_at(values: np.ndarray, points: int = 50) -> list[float]:
    n = len(values)
    steps = np.unique(np.linspace(1, n, min(points, n)).round().astype(int))
    return np.cumsum(values)[steps - 1].round(6).tolist()


def _oracle(q: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Per row, the cheapest model with the best score."""
    best = q.max(axis=1, keepdims=True)
    masked = np.where(q >= best, c, np.inf)
    return np.asarray(masked.argmin(axis=1))


def frozen_points(
    setup: OnlineSetup, router: Router, scorer: OnlineQualityScorer, rows: list[Row], n: int, strong: str | None
) -> list[Any]:
    """The learner frozen (no exploration, no learning) and swept over the cost weight on ``rows``."""
    scorer.cfg.explore = 0.0
    scorer.learning = False
    scorer.warm([str(r["prompt"]) for r in rows])
    sweep = setup.sweep(router, rows)
    sweep.probe()
    return measure(sweep, sweep.points(n), strong)


def shuffled(rows: Sequence[Row], seed: int) -> list[Row]:
    order = list(rows)
    random.Random(seed).shuffle(order)
    return order


def setup_for(
    rows: Sequence[Row],
    models: list[str],
    prices: Mapping[str, Any] | None,
    learner: dict[str, Any],
    priors: Mapping[str, float] | None,
    pace: float | None = None,
) -> OnlineSetup:
    fitted = fit_prices(list(rows), models, _model_prices(prices))
    return OnlineSetup(models, prices, fitted, learner, priors, pace)


def matrices(
    rows: Sequence[Row], models: Sequence[str], prices: Mapping[str, Any] | None
) -> tuple[np.ndarray, np.ndarray]:
    return quality_matrix(list(rows), list(models)), cost_matrix(list(rows), list(models), _model_prices(prices))
