"""``llm-router train router``, ``llm-router eval route`` / ``eval online`` and ``llm-router calibrate router``.

This module is imported by the ``register_commands`` hook, i.e. by every ``llm-router`` command, ``route``
included: the data, model and evaluation modules (numpy, scipy) and rich's progress bars are imported inside the
commands that use them.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from llm_router import PolicyError
from rich.console import Console
from rich.table import Table

from .base import METHODS, ArtifactError
from .scorer import FALLBACKS

if TYPE_CHECKING:
    from llm_router.commands import CommandGroups
    from rich.progress import Progress

    from .model import QualityModel

err = Console(stderr=True)
EXIT_BAD_INPUT = 2


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(EXIT_BAD_INPUT)


@contextmanager
def _progress(quiet: bool = False) -> Iterator[Progress]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
        transient=False,
    ) as bar:
        yield bar


def _train_with_bar(rows: list[dict[str, Any]], method: str, label: str, quiet: bool = False) -> QualityModel:
    from .model import train

    with _progress(quiet) as bar:
        task = bar.add_task(f"train {method} ({label})", total=None)

        def step(name: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"train {method} ({label}): {name}")

        return train(rows, method=method, progress=step)


def _load_rows(files: list[Path]) -> list[dict[str, Any]]:
    from .data import load_rows

    try:
        return load_rows(files)
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    raise AssertionError  # unreachable


def train_router(
    data: Annotated[list[Path], typer.Option("--data", help="routing JSONL file(s) to train on (repeatable)")],
    out: Annotated[Path, typer.Option("--out", help="the artifact to write (.npz)")],
    method: Annotated[str, typer.Option(help=f"one of {', '.join(METHODS)}")] = "stack",
    holdout: Annotated[
        float, typer.Option(help="share of rows (stratified by task) kept out of training and reported on")
    ] = 0.0,
    holdout_out: Annotated[
        Path | None, typer.Option(help="write the held-out rows here (JSONL) to evaluate on them later")
    ] = None,
    train_out: Annotated[
        Path | None, typer.Option(help="write the rows trained on here (JSONL), e.g. for the baseline")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="machine-readable summary on stdout")] = False,
) -> None:
    """Train the learned quality scorer's artifact from routing data."""
    from .data import split

    if method not in METHODS:
        _fail(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if not 0 <= holdout < 1:
        _fail("--holdout must be in [0, 1)")
    rows = _load_rows(data)
    held: list[dict[str, Any]] = []
    if holdout > 0:
        rows, held = split(rows, holdout)
        if holdout_out is not None:
            with holdout_out.open("w", encoding="utf-8") as fh:
                fh.writelines(json.dumps(r) + "\n" for r in held)
    if train_out is not None:
        with train_out.open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
    t0 = time.perf_counter()
    try:
        qm = _train_with_bar(rows, method, f"{len(rows)} rows", quiet=json_)
    except (RuntimeError, ValueError) as exc:
        _fail(str(exc))
    seconds = time.perf_counter() - t0
    qm.save(out)
    summary: dict[str, Any] = {
        "artifact": str(out),
        "method": method,
        "models": qm.models,
        "train_rows": len(rows),
        "holdout_rows": len(held),
        "train_seconds": round(seconds, 2),
        "size_mb": round(out.stat().st_size / 1e6, 2),
    }
    if held:
        import numpy as np

        from .data import quality_matrix

        p = qm.predict_matrix([str(r["prompt"]) for r in held])
        y = quality_matrix(held, qm.models)
        ok = ~np.isnan(y)
        summary["holdout_mae"] = round(float(np.abs(p - y)[ok].mean()), 4)
    if json_:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        err.print(
            f"wrote {out} ({summary['size_mb']} MB): {len(qm.models)} models, {len(rows)} rows, "
            f"{summary['train_seconds']} s" + (f"; hold-out MAE {summary['holdout_mae']}" if held else "")
        )


def _sweep_run(sweep: Any, n_points: int, strong: str | None, label: str, quiet: bool) -> list[Any]:
    from .evaluation import measure

    with _progress(quiet) as bar:
        t = bar.add_task(f"{label}: probe", total=len(sweep.rows))
        sweep.probe(lambda k: bar.advance(t, k))
        weights = sweep.points(n_points)
        t2 = bar.add_task(f"{label}: route {len(sweep.rows)} prompts × {len(weights)} points", total=len(weights))
        return measure(sweep, weights, strong, lambda k: bar.advance(t2, k))


# Options shared by `eval route` and `calibrate router` (models the artifact does not know).
PriorsOption = Annotated[
    Path | None,
    typer.Option(
        help="routing JSONL (not the --data rows): each model's mean score there becomes its catalogue "
        "quality prior for every task, used for models the artifact does not know"
    ),
]
FallbackOption = Annotated[
    str | None,
    typer.Option(help=f"learned_quality fallback for unknown models: {', '.join(FALLBACKS)} (default prior)"),
]


def eval_route(
    data: Annotated[Path, typer.Option("--data", help="routing JSONL to evaluate on (never trained on)")],
    out: Annotated[Path, typer.Option("--out", help="predictions.jsonl: one line per (prompt, operating point)")],
    train_file: Annotated[
        list[Path] | None, typer.Option("--train", help="train the router (and the baseline) on these files")
    ] = None,
    model: Annotated[Path | None, typer.Option("--model", help="a trained artifact (instead of --train)")] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="a knn_tfidf artifact for the baseline (default: trained from --train)")
    ] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="route with this policy (it must use learned_quality and cost)")
    ] = None,
    priors: PriorsOption = None,
    fallback: FallbackOption = None,
    strong: Annotated[str | None, typer.Option(help="evaluate this pair only: the strong model (with --weak)")] = None,
    weak: Annotated[str | None, typer.Option(help="the weak model of the pair (with --strong)")] = None,
    task: Annotated[
        list[str] | None, typer.Option("--task", help="evaluate only the rows of this task (repeatable)")
    ] = None,
    points: Annotated[int, typer.Option(help="operating points (cost weights) to sweep")] = 41,
    plot: Annotated[Path | None, typer.Option(help="write the cost-quality curve (PNG; needs matplotlib)")] = None,
    json_: Annotated[bool, typer.Option("--json", help="the full report as JSON on stdout")] = False,
) -> None:
    """Sweep the operating point through the real decision pipeline and report routing metrics."""
    from .data import load_prices, models_of
    from .evaluation import Sweep, pair_of, report, restrict

    if model is None and not train_file and policy is None:
        _fail("give --train FILE or --model ARTIFACT (or --policy with a learned_quality scorer)")
    if fallback is not None and fallback not in FALLBACKS:
        _fail(f"--fallback must be one of {', '.join(FALLBACKS)}, got {fallback!r}")
    if policy is not None and (priors is not None or fallback is not None):
        _fail("--priors and --fallback apply to the generated policy; with --policy, set them in the policy")
    if (strong is None) != (weak is None):
        _fail("give both --strong and --weak, or neither")
    rows = _load_rows([data])
    prices = load_prices(data)
    if strong is not None and weak is not None:
        have = models_of(rows)
        for name in (strong, weak):
            if name not in have:
                _fail(f"{name!r} is not a model of {data} ({', '.join(have)})")
        if strong == weak:
            _fail("--strong and --weak must differ")
    if task or strong is not None:
        rows = restrict(rows, [strong, weak] if strong is not None and weak is not None else None, task)
        if not rows:
            _fail(f"no rows of {data} left for --task {task} / --strong {strong} --weak {weak}")
    models = models_of(rows)
    if strong is None:
        strong, weak = pair_of(models, rows, prices)
    prior_of = _priors(priors, data, rows) if priors is not None else None
    quiet = json_
    tmp = Path(tempfile.mkdtemp(prefix="llm-router-eval-"))
    if model is None and train_file:
        train_rows = _load_rows(train_file)
        ids = {str(r.get("id")) for r in train_rows if "id" in r}
        if ids and any(str(r.get("id")) in ids for r in rows):
            err.print("[yellow]warning:[/] some --data ids are also in --train: the figures are not a hold-out")
        model = tmp / "router.npz"
        _train_with_bar(train_rows, "stack", "router", quiet).save(model)
    if baseline is None and train_file:
        baseline = tmp / "knn_tfidf.npz"
        _train_with_bar(_load_rows(train_file), "knn_tfidf", "baseline", quiet).save(baseline)
    if baseline is None:
        err.print("[yellow]warning:[/] no kNN-TF-IDF baseline: give --train FILE or --baseline ARTIFACT")
    try:
        sweep = Sweep.build(rows, models, model, prices, policy, prior_of, fallback)
        unknown = sweep.unknown
        if policy is None and unknown and (fallback or "prior") in ("prior", "difficulty"):
            missing = [m for m in unknown if prior_of is None or m not in prior_of]
            if missing:
                err.print(
                    f"[yellow]warning:[/] no catalogue prior for {', '.join(missing)} (the artifact does not know "
                    "them): quality_for gives 0.5; give --priors FILE"
                )
        router_points = _sweep_run(sweep, points, strong, "router", quiet)
        base_points = None
        if baseline is not None:
            base = Sweep.build(rows, models, baseline, prices, None, prior_of, fallback)
            base_points = _sweep_run(base, points, strong, "knn_tfidf", quiet)
    except (ArtifactError, ValueError, PolicyError) as exc:
        _fail(str(exc))
    rep = report(rows, models, prices, router_points, base_points, strong, weak)
    if policy is None:
        rep["unknown_models"] = unknown
        rep["fallback"] = fallback or "prior"
        rep["priors"] = None if prior_of is None else {"file": str(priors), "quality": prior_of}
    with out.open("w", encoding="utf-8") as fh:
        for p in router_points:
            for r, m in zip(rows, p.choices, strict=True):
                fh.write(json.dumps({"id": r.get("id"), "operating_point": p.weight, "model": m}) + "\n")
    if plot is not None:
        _plot(rep, plot)
    if json_:
        sys.stdout.write(json.dumps({"version": 1, **rep}, indent=2) + "\n")
    else:
        _print_report(rep)


def _priors(path: Path, data: Path, rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per-model mean score of the --priors file; refused if it is the --data file or shares rows with it."""
    from .data import mean_scores, row_key

    if path.resolve() == data.resolve() or (path.exists() and data.exists() and path.samefile(data)):
        _fail(f"--priors {path} is the --data file: priors must come from rows that are not evaluated")
    prior_rows = _load_rows([path])
    shared = {row_key(r) for r in prior_rows} & {row_key(r) for r in rows}
    if shared:
        _fail(
            f"--priors {path} shares {len(shared)} rows with --data {data}: priors must come from rows that are "
            "not evaluated (e.g. the --train-out part of the split)"
        )
    return {m: round(q, 6) for m, q in mean_scores(prior_rows).items()}


def _print_report(rep: dict[str, Any]) -> None:
    out = Console()
    pair = "pair" in rep
    cols = ["APGR", "CPT50", "CPT80"] if pair else ["AIQ", "cost95_share_of_best", "max_quality"]
    table = Table(
        title=f"routing on {rep['n']} prompts"
        + (f" ({rep['pair']['strong']} vs {rep['pair']['weak']})" if pair else ""),
        title_justify="left",
    )
    table.add_column("router")
    for c in cols:
        table.add_column(c, justify="right")
    rows = [
        ("learned (stack)", rep["router"]),
        ("kNN-TF-IDF baseline", rep.get("knn_tfidf")),
        ("random", rep["random"]),
        ("oracle", rep["oracle"]),
    ]
    if not pair:
        rows.insert(2, ("single models (hull)", rep.get("single_models_hull")))
    for name, blk in rows:
        if blk is None:
            continue
        table.add_row(name, *(f"{blk[c]:.3f}" if isinstance(blk.get(c), float) else "-" for c in cols))
    out.print(table)
    single = Table(title="single models", title_justify="left")
    for c in ("model", "mean cost USD", "mean quality"):
        single.add_column(c)
    for m, v in rep["single_models"].items():
        single.add_row(m, f"{v['mean_cost']:.7f}", f"{v['mean_quality']:.3f}")
    single.add_row("random", f"{rep['random']['mean_cost']:.7f}", f"{rep['random']['mean_quality']:.3f}")
    out.print(single)


def _plot(rep: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _fail("--plot needs matplotlib: pip install 'llm-router-learned[plot]'")
    fig, ax = plt.subplots(figsize=(7, 5))
    for key, label in (("router", "learned (stack)"), ("knn_tfidf", "kNN-TF-IDF")):
        if key in rep:
            pts = sorted((p["mean_cost"], p["mean_quality"]) for p in rep[key]["points"])
            ax.plot([a for a, _ in pts], [b for _, b in pts], marker=".", label=label)
    for m, v in rep["single_models"].items():
        ax.scatter(v["mean_cost"], v["mean_quality"], marker="s")
        ax.annotate(m.split("/")[-1], (v["mean_cost"], v["mean_quality"]), fontsize=7)
    ax.scatter(rep["random"]["mean_cost"], rep["random"]["mean_quality"], marker="x", color="k", label="random")
    ax.set_xscale("log")
    ax.set_xlabel("mean cost per prompt (USD)")
    ax.set_ylabel("mean quality")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def calibrate_router(
    data: Annotated[Path, typer.Option("--data", help="routing JSONL (representative prompts)")],
    model: Annotated[Path, typer.Option("--model", help="the trained artifact")],
    target_strong_share: Annotated[
        float | None, typer.Option(help="share of calls to the strong model (two-model data)")
    ] = None,
    budget_per_1k: Annotated[float | None, typer.Option(help="USD per 1,000 requests")] = None,
    priors: PriorsOption = None,
    fallback: FallbackOption = None,
    points: Annotated[int, typer.Option(help="operating points to try")] = 41,
    json_: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Pick the operating point (cost weight) on DATA and print the policy snippet."""
    from .data import load_prices, models_of
    from .evaluation import Sweep, measure, pair_of

    if (target_strong_share is None) == (budget_per_1k is None):
        _fail("give exactly one of --target-strong-share and --budget-per-1k")
    if fallback is not None and fallback not in FALLBACKS:
        _fail(f"--fallback must be one of {', '.join(FALLBACKS)}, got {fallback!r}")
    rows = _load_rows([data])
    prices = load_prices(data)
    models = models_of(rows)
    strong, _weak = pair_of(models, rows, prices)
    prior_of = _priors(priors, data, rows) if priors is not None else None
    try:
        sweep = Sweep.build(rows, models, model, prices, None, prior_of, fallback)
        with _progress(json_) as bar:
            t = bar.add_task("probe", total=len(rows))
            sweep.probe(lambda k: bar.advance(t, k), strong=strong)
            if target_strong_share is not None:
                if strong is None:
                    _fail("--target-strong-share needs two-model data (a strong and a weak model)")
                if not 0 <= target_strong_share <= 1:
                    _fail("--target-strong-share must be in [0, 1]")
                # RouteLLM's quantile method: a prompt goes to the strong model up to its switch weight
                w = sweep.weight_for_share(target_strong_share)
                chosen = measure(sweep, [w], strong)[0]
            else:
                assert budget_per_1k is not None
                ws = sweep.points(points)
                t2 = bar.add_task("route", total=len(ws))
                res = measure(sweep, ws, strong, lambda k: bar.advance(t2, k))
                ok = [p for p in res if p.mean_cost * 1000 <= budget_per_1k]
                if not ok:
                    _fail(
                        f"no operating point costs ≤ {budget_per_1k} USD per 1k requests "
                        f"(cheapest: {min(p.mean_cost for p in res) * 1000:.4g})"
                    )
                chosen = max(ok, key=lambda p: (p.mean_quality, -p.mean_cost))
    except (ArtifactError, ValueError, PolicyError) as exc:
        _fail(str(exc))
    w = round(chosen.weight, 6)
    learned = f"artifact: {model}" + (f", fallback: {fallback}" if fallback else "")
    snippet = (
        "score:\n"
        f"  - learned_quality: {{{learned}}}\n"
        + (f"  - cost: {{min_ratio: {sweep.min_ratio:.6g}}}\n" if sweep.min_ratio else "  - cost\n")
        + f"preferences: {{learned_quality: {round(1 - w, 6)}, cost: {w}}}\n"
    )
    result = {
        "operating_point": w,
        "mean_cost": chosen.mean_cost,
        "cost_per_1k": chosen.mean_cost * 1000,
        "mean_quality": chosen.mean_quality,
        "strong_share": chosen.strong_share,
        "policy_snippet": snippet,
        "unknown_models": sweep.unknown,
        "priors": prior_of,
    }
    if json_:
        sys.stdout.write(json.dumps({"version": 1, **result}, indent=2) + "\n")
        return
    err.print(
        f"operating point: cost weight {w}; on {len(rows)} prompts: mean quality {chosen.mean_quality:.3f}, "
        f"{chosen.mean_cost * 1000:.4g} USD per 1k requests"
        + (f", strong share {chosen.strong_share:.1%}" if chosen.strong_share is not None else "")
    )
    if sweep.unknown:
        err.print(
            f"note: the artifact does not know {', '.join(sweep.unknown)}: they were scored by their fallback"
            + (" with the --priors qualities; give them the same `quality:` in your policy" if prior_of else "")
        )
    sys.stdout.write(snippet)


def add_commands(cli: CommandGroups) -> None:
    """Add the sub-commands to the command line's ``train``, ``eval`` and ``calibrate`` groups."""
    cli.train.command("router")(train_router)
    cli.eval.command("route")(eval_route)
    from .online_cli import eval_online

    cli.eval.command("online")(eval_online)
    cli.calibrate.command("router")(calibrate_router)
