"""``llm-router eval online``: replay a routing dataset as a bandit stream (see :mod:`.online_eval`)."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from llm_router import PolicyError
from rich.console import Console
from rich.table import Table

from .base import ArtifactError
from .cli import _fail, _load_rows, _priors, _progress, _train_with_bar, err


def eval_online(
    data: Annotated[Path, typer.Option("--data", help="routing JSONL: its tail is held out, the rest is the stream")],
    out: Annotated[Path, typer.Option("--out", help="the report (JSON)")],
    seed: Annotated[int, typer.Option(help="seed of the stream's order (and of the Thompson draws)")] = 0,
    start_from: Annotated[
        Path | None, typer.Option("--start-from", help="a learned_quality artifact to start from (default: priors)")
    ] = None,
    priors: Annotated[
        Path | None,
        typer.Option(help="routing JSONL (not --data): each model's mean score there is its catalogue prior"),
    ] = None,
    algorithm: Annotated[str, typer.Option(help="thompson or linucb")] = "thompson",
    explore: Annotated[float, typer.Option(help="the policy's bound on the share of exploring decisions")] = 0.05,
    alpha: Annotated[float, typer.Option(help="exploration width (posterior std devs)")] = 1.0,
    ridge: Annotated[float, typer.Option(help="λ, the prior's weight in ratings")] = 1.0,
    cost_weight: Annotated[float, typer.Option(help="the stream's cost weight (operating point), in [0, 1)")] = 0.0,
    holdout: Annotated[float, typer.Option(help="share of the file's tail held out for the frozen policy")] = 0.2,
    limit: Annotated[int | None, typer.Option(help="use only the first N rows of --data (fast iterations)")] = None,
    points: Annotated[int, typer.Option(help="operating points of the frozen sweeps")] = 41,
    offline: Annotated[bool, typer.Option(help="train the offline full-information router as a baseline")] = True,
    pace: Annotated[
        float | None, typer.Option(help="replay the stream as one day with this budget (USD per day) and pace it")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="write the learning curves (PNG; needs matplotlib)")] = None,
    json_: Annotated[bool, typer.Option("--json", help="the report on stdout too")] = False,
) -> None:
    """Replay DATA as a stream of bandit feedback; report learning curves, regret and the frozen policy."""
    from .data import load_prices, models_of

    if algorithm not in ("linucb", "thompson"):
        _fail(f"--algorithm must be linucb or thompson, got {algorithm!r}")
    if not 0 <= explore <= 1:
        _fail("--explore must be in [0, 1]")
    if not 0 <= cost_weight < 1:
        _fail(
            "--cost-weight must be in [0, 1): at 1 the quality scorer has no weight, the online learner is not "
            "consulted and has nothing to learn from"
        )
    if not 0 < holdout < 1:
        _fail("--holdout must be in (0, 1)")
    if pace is not None and pace <= 0:
        _fail("--pace must be a budget in USD per day greater than 0")
    rows = _load_rows([data])[: limit or None]
    prior_of = _priors(priors, data, rows) if priors is not None else None
    learner: dict[str, Any] = {
        "algorithm": algorithm,
        "explore": explore,
        "alpha": alpha,
        "ridge": ridge,
        "seed": seed,
        "cache_size": len(rows) + 16,
        "max_pending": 1024,
    }
    if start_from is not None:
        learner["artifact"] = str(start_from.resolve())
    t0 = time.perf_counter()
    try:
        rep = _run(
            rows,
            models_of(rows),
            load_prices(data),
            learner,
            prior_of,
            seed,
            cost_weight,
            holdout,
            points,
            offline,
            pace,
            json_,
        )
    except (ArtifactError, ValueError, PolicyError) as exc:
        _fail(str(exc))
    rep["seconds"] = round(time.perf_counter() - t0, 1)
    rep["settings"] = {k: v for k, v in learner.items() if k not in ("cache_size", "max_pending")}
    rep["settings"].update(data=str(data), cost_weight=cost_weight, holdout=holdout, limit=limit, pace=pace)
    out.write_text(json.dumps({"version": 1, **rep}, indent=2) + "\n", encoding="utf-8")
    if plot is not None:
        _plot(rep, plot)
    if json_:
        sys.stdout.write(json.dumps({"version": 1, **rep}, indent=2) + "\n")
    else:
        _print(rep)


def _run(
    rows: list[dict[str, Any]],
    models: list[str],
    prices: Any,
    learner: dict[str, Any],
    priors: dict[str, float] | None,
    seed: int,
    weight: float,
    holdout: float,
    points: int,
    offline: bool,
    pace: float | None,
    quiet: bool,
) -> dict[str, Any]:
    from . import online_eval as oe
    from .evaluation import Sweep, measure, pair_of, report, rerank

    stream_rows, test = oe.split_tail(rows, holdout)
    stream = oe.shuffled(stream_rows, seed)
    setup = oe.setup_for(rows, models, prices, learner, priors, pace)
    q, c = oe.matrices(stream, models, prices)
    strong, weak = pair_of(models, rows, prices)
    with _progress(quiet) as bar:
        t = bar.add_task(f"stream of {len(stream)} prompts", total=len(stream))
        router, scorer = setup.router(paced=pace is not None)
        log = oe.replay(router, scorer, stream, q, c, weight, lambda k: bar.advance(t, k))
        static_router, static_scorer = setup.router(explore=0.0)
        static_scorer.learning = False
        static_scorer.warm([str(r["prompt"]) for r in stream])
        probe = setup.sweep(static_router, stream)
        probe.probe()
        name_idx = {m: j for j, m in enumerate(models)}
        static = [
            name_idx[probe._name(rerank(d, _weights(w)).id)] for d, w in zip(probe.decisions, log.weight, strict=True)
        ]
        rep: dict[str, Any] = {"stream": oe.stream_report(log, q, c, static), "models": models}
        rep["stream"]["model_share"] = {models[j]: s for j, s in rep["stream"]["model_share"].items()}
        t2 = bar.add_task(f"frozen sweeps on {len(test)} held-out prompts", total=None)
        online_pts = oe.frozen_points(setup, router, scorer, test, points, strong)
        static_pts = oe.frozen_points(setup, *setup.router(explore=0.0), test, points, strong)
        frozen = report(test, models, prices, online_pts, None, strong, weak)
        frozen["online"] = frozen.pop("router")
        frozen["static_priors"] = report(test, models, prices, static_pts, None, strong, weak)["router"]
        if offline:
            tmp = Path(tempfile.mkdtemp(prefix="llm-router-online-")) / "offline.npz"
            _train_with_bar(stream_rows, "stack", "offline, full information", quiet).save(tmp)
            sweep = Sweep.build(test, models, tmp, prices, None, priors)
            sweep.probe()
            off_pts = measure(sweep, sweep.points(points), strong)
            frozen["offline_full_information"] = report(test, models, prices, off_pts, None, strong, weak)["router"]
        bar.update(t2, total=1, completed=1)
    rep["frozen"] = frozen
    if pace is not None:
        rep["pace"] = _pace_report(pace, log)
    return rep


def _weights(w: float) -> dict[str, float]:
    from llm_router import Preferences

    return Preferences(weights={"online_quality": 1.0 - w, "cost": w}).normalised()


def _pace_report(budget: float, log: Any) -> dict[str, Any]:
    import numpy as np

    n = len(log.cost)
    spend = np.cumsum(log.cost)
    steps = np.unique(np.linspace(1, n, min(50, n)).round().astype(int))
    target = budget * steps / n
    return {
        "budget_usd_per_day": budget,
        "spent_usd": float(spend[-1]),
        "t": (steps / n).round(4).tolist(),
        "spend": spend[steps - 1].round(8).tolist(),
        "target": target.round(8).tolist(),
        "weight": [round(log.weight[s - 1], 4) for s in steps],
        "max_overspend_share": float(np.max((spend[steps - 1] - target) / budget)),
    }


KEY = "AIQ"


def _print(rep: dict[str, Any]) -> None:
    out = Console()
    s = rep["stream"]
    table = Table(
        title=f"stream of {s['n']} prompts (cost weight {rep['settings']['cost_weight']})", title_justify="left"
    )
    for col in ("router", "mean quality", "mean cost USD", "regret"):
        table.add_column(col, justify="right" if col != "router" else "left")
    for name in ("online", "static_priors", "random", "oracle"):
        b = s[name]
        table.add_row(
            name,
            f"{b['mean_quality']:.4f}",
            f"{b['mean_cost']:.7f}",
            f"{b.get('regret', 0):.1f}" if "regret" in b else "-",
        )
    out.print(table)
    out.print(
        "exploration cost (static prior router's mean quality − online's, over the stream): "
        f"{s['exploration_cost']:+.4f}"
    )
    f = rep["frozen"]
    key = "APGR" if "pair" in f else KEY
    frozen = Table(title=f"frozen policy on {f['n']} held-out prompts", title_justify="left")
    frozen.add_column("router")
    frozen.add_column(key, justify="right")
    for name in ("online", "static_priors", "offline_full_information", "random", "oracle"):
        if name in f and isinstance(f[name].get(key), float):
            frozen.add_row(name, f"{f[name][key]:.4f}")
    out.print(frozen)
    if "pace" in rep:
        p = rep["pace"]
        out.print(
            f"pacing: spent {p['spent_usd']:.4f} of {p['budget_usd_per_day']:.4f} USD; largest overspend against "
            f"the line {p['max_overspend_share']:+.1%} of the budget"
        )
    out.print(f"{rep['seconds']} s")


def _plot(rep: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _fail("--plot needs matplotlib: pip install 'llm-router-learned[plot]'")
    panels = 3 if "pace" in rep else 2
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4))
    s = rep["stream"]
    for name in ("online", "static_priors", "random", "oracle"):
        curve = s[name]["quality_curve"]
        axes[0].plot(curve["step"], curve["mean"], label=name)
    axes[0].set_xlabel("prompts")
    axes[0].set_ylabel("cumulative mean quality")
    axes[0].legend()
    reg = s["online"]["regret_curve"]
    axes[1].plot(reg["step"], reg["cumulative"], label="online")
    axes[1].set_xlabel("prompts")
    axes[1].set_ylabel("cumulative regret (vs oracle)")
    if "pace" in rep:
        p = rep["pace"]
        axes[2].plot(p["t"], p["spend"], label="spend")
        axes[2].plot(p["t"], p["target"], "--", label="target")
        axes[2].set_xlabel("fraction of the day")
        axes[2].set_ylabel("USD")
        axes[2].legend()
    err.print(f"wrote {path}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
