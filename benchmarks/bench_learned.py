"""What the learned quality scorer costs: train time on a routing file, artifact load time, and the latency it
adds to ``Router.route()`` (p50 / p99, single-threaded, pinned to one core, prediction cache off).

Two routers share one catalogue (the data's models, priced from the data): ``quality + cost`` (the built-in
prior) and ``learned_quality + cost``. Each routes the same distinct prompts once; the added latency is the
difference of their percentiles.

    python benchmarks/bench_learned.py --data ../shared/data/routing/mmlu-pair-train.jsonl [--prompts 1000] [--json]

Needs ``pip install -e 'plugins/llm-router-learned[train]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path, help="a routing JSONL file (train time is measured on it)")
    ap.add_argument("--method", default="stack")
    ap.add_argument("--prompts", type=int, default=1000, help="distinct prompts routed by each router")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    from llm_router import Router
    from llm_router_learned.data import OUT_TOKENS, fit_prices, load_prices, load_rows, models_of
    from llm_router_learned.evaluation import generated_policy
    from llm_router_learned.model import QualityModel, train

    rows = load_rows([args.data])
    models = models_of(rows)
    t0 = time.perf_counter()
    qm = train(rows, method=args.method)
    train_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        art = Path(tmp) / "router.npz"
        qm.save(art)
        size_mb = art.stat().st_size / 1e6
        t0 = time.perf_counter()
        QualityModel.load(art).predict_matrix(["warm up"])
        load_s = time.perf_counter() - t0
        side = load_prices(args.data)
        pol = generated_policy(art, models, fit_prices(rows, models, None if side is None else side["models"]))
        pol["score"][0]["learned_quality"]["cache_size"] = 0
        learned = Router(pol, autoload=True)
        prior = Router({**pol, "score": ["quality", pol["score"][1]], "preferences": {"quality": 0.7, "cost": 0.3}})
    prompts = [str(r["prompt"]) for r in rows[: args.prompts]]
    prefs = {"learned_quality": 0.7, "cost": 0.3}
    for p in prompts[:20]:  # warm-up
        learned.route(p, preferences=prefs, max_tokens=OUT_TOKENS)
        prior.route(p, max_tokens=OUT_TOKENS)
    t_learned: list[float] = []
    t_prior: list[float] = []
    for p in prompts:
        t = time.perf_counter_ns()
        prior.route(p, max_tokens=OUT_TOKENS)
        t_prior.append((time.perf_counter_ns() - t) / 1e6)
        t = time.perf_counter_ns()
        learned.route(p, preferences=prefs, max_tokens=OUT_TOKENS)
        t_learned.append((time.perf_counter_ns() - t) / 1e6)
    figures = {
        "benchmark": "learned_quality",
        "data": args.data.name,
        "rows": len(rows),
        "models": len(models),
        "method": args.method,
        "train_s": round(train_s, 1),
        "artifact_mb": round(size_mb, 2),
        "load_s": round(load_s, 3),
        "prompts": len(prompts),
        "route_prior_p50_ms": round(pct(t_prior, 50), 3),
        "route_prior_p99_ms": round(pct(t_prior, 99), 3),
        "route_learned_p50_ms": round(pct(t_learned, 50), 3),
        "route_learned_p99_ms": round(pct(t_learned, 99), 3),
        "added_p50_ms": round(pct(t_learned, 50) - pct(t_prior, 50), 3),
        "added_p99_ms": round(pct(t_learned, 99) - pct(t_prior, 99), 3),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"{args.data.name}: {len(rows)} rows, {len(models)} models, method {args.method}")
    print(f"  train {train_s:.1f} s (one thread), artifact {size_mb:.2f} MB, load + first prediction {load_s:.3f} s")
    print(f"  route() over {len(prompts)} distinct prompts, one core, cache off:")
    print(
        f"    quality prior + cost    p50 {figures['route_prior_p50_ms']:.3f} ms  "
        f"p99 {figures['route_prior_p99_ms']:.3f} ms"
    )
    print(
        f"    learned_quality + cost  p50 {figures['route_learned_p50_ms']:.3f} ms  "
        f"p99 {figures['route_learned_p99_ms']:.3f} ms"
    )
    print(f"    added by the scorer     p50 {figures['added_p50_ms']:.3f} ms  p99 {figures['added_p99_ms']:.3f} ms")


if __name__ == "__main__":
    main()
