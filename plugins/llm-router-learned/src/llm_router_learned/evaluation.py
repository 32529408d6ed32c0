"""Evaluation and calibration through the real decision pipeline.

A :class:`llm_router.Router` is built whose catalogue is the dataset's models (``data/<name>``, priced from
the sidecar ``<name>.models.json`` or from a least-squares fit of the rows' real costs) and whose scorers
are ``learned_quality`` and ``cost``. An operating point is a cost weight w: the request preferences are
``{learned_quality: 1 − w, cost: w}`` (``online_quality`` for ``eval online``'s learner). Each prompt's choice
at every operating point is the one ``Router.route()`` makes (see below for how it is found with one decision
per prompt); the chosen model's *realised* quality and cost on that prompt (from the data) are averaged per
point.

Dataset models the artifact does not know get the scorer's ``fallback``. Their catalogue prior (the same for
every task) can come from another routing file (``priors``: each model's mean score there); without one, the
catalogue has no quality for them and ``quality_for`` gives 0.5.

The operating points are placed where decisions change (RouteLLM's quantile method): one probing decision
per prompt reads both scorers' values for every candidate from the decision's breakdown; the cost weights at
which each prompt's winner changes are collected, and the points are quantiles of those switch points.

Each prompt is decided once, through the real pipeline (classify, candidates, constraints, every scorer), at a
probing weight where every scorer counts; the decision keeps each candidate's breakdown. An operating point
then re-ranks that breakdown with the pipeline's own arithmetic and ranking
(:func:`llm_router.weighted_totals`, :func:`llm_router.rank_order`), which gives the choice a
full decision at that point would make (``tests/test_learned_eval_fast.py`` proves it on every prompt and
point) at a fraction of the cost: the 7,020-prompt MMLU sweep went from 41 decisions per prompt to one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from llm_router import DEFAULT_TASKS, Preferences, Router, RoutingDecision, rank_order, weighted_totals

from . import metrics as M
from .data import OUT_TOKENS, Row, cost_matrix, fit_prices, quality_matrix
from .model import QualityModel
from .scorer import LearnedQualityScorer

PROVIDER = "data"
Tick = Callable[[int], None]


def catalogue_id(name: str) -> str:
    return f"{PROVIDER}/{name}"


def cost_min_ratio(prices: Mapping[str, Mapping[str, float]]) -> float:
    """The cost scorer's span: twice the spread of blended prices (at least the default 20×), so no candidate
    is clipped to 0 and the cost scores keep the price order."""
    blended = [p["input_per_mtok"] + p["output_per_mtok"] for p in prices.values()]
    lo = max(min(blended), 1e-9)
    return float(max(20.0, 2 * max(blended) / lo))


def dataset_models(
    models: Sequence[str], prices: Mapping[str, Mapping[str, float]], priors: Mapping[str, float] | None = None
) -> list[dict[str, Any]]:
    """The generated policies' catalogue: each dataset model with its fitted prices, and ``priors``
    (model → quality in [0, 1]) as its ``quality`` for every task of the built-in taxonomy."""
    entries: list[dict[str, Any]] = []
    for m in models:
        entry: dict[str, Any] = {
            "id": catalogue_id(m),
            "price": {
                "input_per_mtok": round(prices[m]["input_per_mtok"], 9),
                "output_per_mtok": round(prices[m]["output_per_mtok"], 9),
                "source": "routing data",
            },
            "context_window": 10_000_000,
            "max_output_tokens": 100_000,
        }
        if priors is not None and m in priors:
            entry["quality"] = {task: float(priors[m]) for task in DEFAULT_TASKS}
        entries.append(entry)
    return entries


def generated_policy(
    artifact: Path,
    models: Sequence[str],
    prices: Mapping[str, Mapping[str, float]],
    priors: Mapping[str, float] | None = None,
    fallback: str | None = None,
    cache_size: int | None = None,
) -> dict[str, Any]:
    """A policy whose catalogue is the dataset's models, scored by ``learned_quality`` and ``cost``. Dataset
    models the artifact does not know get the scorer's ``fallback`` (default: the scorer's, ``prior``).
    ``priors`` (model → quality in [0, 1]) become each model's catalogue ``quality`` for every task of the
    built-in taxonomy (the generated policy's)."""
    known = set(QualityModel.load(artifact).models)
    entries = dataset_models(models, prices, priors)
    scorer: dict[str, Any] = {
        "artifact": str(Path(artifact).resolve()),
        "models": {m: catalogue_id(m) for m in models if m in known},
    }
    if fallback is not None:
        scorer["fallback"] = fallback
    if cache_size is not None:
        scorer["cache_size"] = cache_size
    return {
        "version": 1,
        "models": entries,
        "score": [
            {"learned_quality": scorer},
            {"cost": {"min_ratio": cost_min_ratio(prices)}},
        ],
        "preferences": {"learned_quality": 1.0, "cost": 0.0},
        "routes": [{"models": [catalogue_id(m) for m in models]}],
    }


@dataclass
class Sweep:
    """Routes a dataset's prompts through a Router at chosen cost weights."""

    router: Router
    rows: list[Row]
    models: list[str]
    id_to_name: dict[str, str]
    prices: Mapping[str, Any] | None = None
    """The sidecar's prices (for realised costs when the rows carry none)."""
    min_ratio: float | None = None
    breaks: np.ndarray = field(default_factory=lambda: np.zeros(0))
    switch: np.ndarray = field(default_factory=lambda: np.zeros(0))
    unknown: list[str] = field(default_factory=list)
    """Dataset models the scorer has no artifact column for (they get its fallback)."""
    decisions: list[RoutingDecision] = field(default_factory=list)
    """One decision per prompt (at the probing weight), re-ranked per operating point by :meth:`choose`."""
    quality: str = "learned_quality"
    """The quality scorer's name (the operating point trades it against ``cost``)."""

    @classmethod
    def build(
        cls,
        rows: list[Row],
        models: list[str],
        artifact: Path | None,
        prices: Mapping[str, Any] | None,
        policy: Path | None = None,
        priors: Mapping[str, float] | None = None,
        fallback: str | None = None,
    ) -> Sweep:
        if policy is not None:
            if priors is not None or fallback is not None:
                raise ValueError("priors and fallback apply to the generated policy: set them in your policy")
            router = Router(policy)
            ratio = None
        else:
            assert artifact is not None
            fitted = fit_prices(rows, models, _model_prices(prices))
            router = Router(generated_policy(artifact, models, fitted, priors, fallback, len(rows) + 16))
            ratio = cost_min_ratio(fitted)
        scorer = next((s for _, s in router.scorers if isinstance(s, LearnedQualityScorer)), None)
        if scorer is None:
            raise ValueError("the policy has no learned_quality scorer")
        id_to_name = {m: m for m in models}
        for key, col in scorer.column.items():
            id_to_name[key] = scorer.model.models[col]
        for m in router.catalogue:
            if m.model in models:
                id_to_name.setdefault(m.id, m.model)
        unknown = [
            info.model
            for info in router.catalogue
            if info.model in models and info.id not in scorer.column and info.model not in scorer.column
        ]
        return cls(router, rows, models, id_to_name, prices, ratio, unknown=unknown)

    def _route(self, row: Row, w: float) -> Any:
        prefs = {self.quality: 1.0 - w, "cost": w}
        return self.router.route(str(row["prompt"]), preferences=prefs, max_tokens=OUT_TOKENS)

    def probe(self, tick: Tick | None = None, grid: int = 2001, strong: str | None = None) -> np.ndarray:
        """Cost weights in (0, 1) where some prompt's winner changes (one probing decision per prompt).

        With ``strong``, also sets :attr:`switch`: per prompt, the largest cost weight at which the strong
        model still wins (−1 where it never does), for RouteLLM's quantile calibration."""
        ws = np.linspace(0.0, 1.0, grid)
        found: list[float] = []
        switch: list[float] = []
        self.decisions = []
        for row in self.rows:
            d = self._route(row, PROBE_WEIGHT)
            self.decisions.append(d)
            q = np.array([c.breakdown.get(self.quality, 0.0) for c in d.ranking])
            cs = np.array([c.breakdown.get("cost", 0.0) for c in d.ranking])
            tot = (1 - ws)[:, None] * q[None, :] + ws[:, None] * cs[None, :]
            win = np.argmax(tot, axis=1)
            change = np.nonzero(np.diff(win))[0]
            found.extend(((ws[change] + ws[change + 1]) / 2).tolist())
            if strong is not None:
                ids = [self.id_to_name.get(c.model.id) for c in d.ranking]
                j = ids.index(strong) if strong in ids else -1
                won = np.nonzero(win == j)[0]
                switch.append(float(ws[won].max()) if j >= 0 and len(won) else -1.0)
            if tick:
                tick(1)
        self.breaks = np.array(sorted(found))
        self.switch = np.array(switch)
        return self.breaks

    def weight_for_share(self, share: float) -> float:
        """The cost weight that sends ``share`` of the probed prompts to the strong model (after :meth:`probe`
        with ``strong``): the (1 − share) quantile of the per-prompt switch weights."""
        if not len(self.switch):
            raise ValueError("probe(strong=...) first")
        w = float(np.quantile(self.switch, 1 - share, method="higher"))
        return min(1.0, max(0.0, w))

    def points(self, n: int) -> list[float]:
        """``n`` cost weights: 0, 1 and quantiles of the switch points (each just past a switch)."""
        pts = {0.0, 1.0}
        if len(self.breaks):
            qs = np.quantile(self.breaks, np.linspace(0, 1, max(n - 2, 1)))
            pts.update(float(min(1.0, q + 1e-6)) for q in qs)
            pts.update(float(max(0.0, q - 1e-6)) for q in qs[:1])
        return sorted(pts)

    def choose(self, w: float) -> list[str]:
        """The dataset model chosen for every prompt at cost weight ``w``: each prompt's decision (made once,
        by :meth:`probe`) re-ranked at ``w``; full decisions (:meth:`choose_full`) before :meth:`probe`."""
        if len(self.decisions) != len(self.rows):
            return self.choose_full(w)
        weights = Preferences(weights={self.quality: 1.0 - w, "cost": w}).normalised()
        return [self._name(rerank(d, weights).id) for d in self.decisions]

    def _name(self, model_id: str) -> str:
        name = self.id_to_name.get(model_id)
        if name is None:
            raise ValueError(f"the router chose {model_id!r}, which is not a model of the data (map it in 'models:')")
        return name

    def choose_full(self, w: float) -> list[str]:
        """The dataset model chosen for every prompt at cost weight ``w``, by a full decision per prompt."""
        out = []
        for row in self.rows:
            sel = self._route(row, w).selected.id
            name = self.id_to_name.get(sel)
            if name is None:
                raise ValueError(f"the router chose {sel!r}, which is not a model of the data (map it in 'models:')")
            out.append(name)
        return out


PROBE_WEIGHT = 0.5
"""The cost weight of the one decision per prompt: every scorer counts, so the breakdown holds every column."""


def rerank(decision: RoutingDecision, weights: Mapping[str, float]) -> Any:
    """The candidate ``decision`` would have chosen with normalised scorer ``weights`` (as
    :meth:`Preferences.normalised` gives them): its breakdown re-weighted and re-ranked with the decision
    pipeline's own code. Every weighted scorer must be in the breakdown (the decision was made with it)."""
    ranking = decision.ranking
    names = list(ranking[0].breakdown)
    missing = [n for n, w in weights.items() if w > 0 and n not in names]
    if missing or decision.skipped:
        raise ValueError(f"decision {decision.request_id} lacks scorer columns {missing or decision.skipped}")
    columns = [(weights[n], [c.breakdown[n] for c in ranking]) for n in names if weights.get(n, 0.0) > 0]
    return ranking[rank_order(weighted_totals(columns, len(ranking)), ranking)[0]]


@dataclass
class PointResult:
    weight: float
    choices: list[str]
    mean_cost: float
    mean_quality: float
    strong_share: float | None = None


def measure(sweep: Sweep, weights: Sequence[float], strong: str | None, tick: Tick | None = None) -> list[PointResult]:
    idx = {m: j for j, m in enumerate(sweep.models)}
    q = quality_matrix(sweep.rows, sweep.models)
    c = cost_matrix(sweep.rows, sweep.models, _model_prices(sweep.prices))
    rows_i = np.arange(len(sweep.rows))
    out = []
    for w in weights:
        ch = sweep.choose(w)
        j = np.array([idx[m] for m in ch])
        share = float(np.mean([m == strong for m in ch])) if strong else None
        out.append(PointResult(w, ch, float(c[rows_i, j].mean()), float(q[rows_i, j].mean()), share))
        if tick:
            tick(1)
    return out


def _model_prices(prices: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if prices is None else dict(prices["models"])


def report(
    rows: list[Row],
    models: list[str],
    prices: Mapping[str, Any] | None,
    router_points: list[PointResult],
    baseline_points: list[PointResult] | None,
    strong: str | None,
    weak: str | None,
) -> dict[str, Any]:
    """Metrics of the router's and the baseline's operating points, beside every single model, random routing
    and the oracle."""
    q = quality_matrix(rows, models)
    c = cost_matrix(rows, models, _model_prices(prices))
    single = {
        m: {"mean_cost": float(c[:, j].mean()), "mean_quality": float(q[:, j].mean())} for j, m in enumerate(models)
    }
    rc, rq = M.random_point(q, c)
    out: dict[str, Any] = {
        "n": len(rows),
        "models": models,
        "single_models": single,
        "random": {"mean_cost": rc, "mean_quality": rq},
        "oracle": M.oracle_report(q, c),
    }

    def block(points: list[PointResult]) -> dict[str, Any]:
        pts = [(p.mean_cost, p.mean_quality) for p in points]
        b: dict[str, Any] = {
            "points": [
                {
                    "operating_point": p.weight,
                    "mean_cost": p.mean_cost,
                    "mean_quality": p.mean_quality,
                    **({"strong_share": p.strong_share} if p.strong_share is not None else {}),
                }
                for p in points
            ]
        }
        if len(models) > 2:
            b.update(M.multi_report_from_points(pts, q, c))
        if strong and weak:
            s = [p.strong_share or 0.0 for p in points]
            b.update(
                M.pair_report_from_points(
                    s, [p.mean_quality for p in points], single[strong]["mean_quality"], single[weak]["mean_quality"]
                )
            )
        return b

    out["router"] = block(router_points)
    if baseline_points is not None:
        out["knn_tfidf"] = block(baseline_points)
    if len(models) > 2:
        out["single_models_hull"] = {
            "AIQ": M.single_models_aiq(q, c),
            "cost95_share_of_best": M.single_models_cost95(q, c),
        }
    if strong and weak:
        js, jw = models.index(strong), models.index(weak)
        out["pair"] = {"strong": strong, "weak": weak}
        out["random"].update(M.pair_report(np.zeros(len(rows)), q[:, js], q[:, jw]))
        out["oracle"].update(M.pair_report(q[:, js] - q[:, jw], q[:, js], q[:, jw]))
    return out


def pair_of(models: list[str], rows: list[Row], prices: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """(strong, weak) for a two-model dataset: the sidecar's, else the dearer model is the strong one. (To
    evaluate a pair of a larger dataset, restrict the rows to it first: :func:`restrict`.)"""
    if len(models) != 2:
        return None, None
    if prices and prices.get("strong") in models and prices.get("weak") in models:
        return str(prices["strong"]), str(prices["weak"])
    c = cost_matrix(rows, models, _model_prices(prices)).mean(axis=0)
    s = int(np.argmax(c))
    return models[s], models[1 - s]


def restrict(rows: Sequence[Row], models: Sequence[str] | None = None, tasks: Sequence[str] | None = None) -> list[Row]:
    """The rows of ``tasks`` (all without), with ``scores`` and ``costs`` cut down to ``models`` (all without);
    rows that lack a score of one of ``models`` are dropped."""
    out: list[Row] = []
    for r in rows:
        if tasks and str(r.get("task", "")) not in tasks:
            continue
        if not models:
            out.append(r)
        elif all(m in r["scores"] for m in models):
            cut = {**r, "scores": {m: r["scores"][m] for m in models}}
            if isinstance(r.get("costs"), dict):
                cut["costs"] = {m: r["costs"][m] for m in models if m in r["costs"]}
            out.append(cut)
    return out
