"""``eval route``'s sweep, old against new, side by side in one run: a full decision per prompt and operating
point (``Sweep.choose_full``, what ``eval route`` did) against one decision per prompt re-ranked per point
(``Sweep.choose``), on the same prompts, the same artifact and the same points. The old way runs with the
prediction cache off: on a file over 1,024 prompts its LRU missed on every decision. It also checks that both
give the same choices, and times the whole ``eval route`` path (training included) of the new sweep.

    python benchmarks/bench_eval_route.py --data ../shared/data/routing/mmlu-pair-train.jsonl \
        [--prompts 500] [--points 41] [--model router.npz] [--json]

CPU seconds (process time) and wall seconds; single-threaded BLAS. Training the stack fits its fold and final
models in up to 2 worker processes (``train(n_jobs=...)``), whose CPU the training's CPU seconds do not count. Needs
``pip install -e 'plugins/llm-router-learned[train]'``.
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


def timed(fn):  # type: ignore[no-untyped-def]
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def main() -> None:
    from llm_router_learned.data import load_prices, load_rows, models_of
    from llm_router_learned.evaluation import Sweep
    from llm_router_learned.model import train
    from llm_router_learned.scorer import LearnedQualityScorer

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--prompts", type=int, default=500, help="prompts swept by both (the old way is slow)")
    ap.add_argument("--points", type=int, default=41)
    ap.add_argument("--model", type=Path, help="a trained artifact (skips training; its time is then not reported)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = load_rows([args.data])
    prices = load_prices(args.data)
    models = models_of(rows)
    if args.model is None:
        model, train_cpu, train_wall = timed(lambda: train(rows, method="stack"))
        path = Path(tempfile.mkdtemp()) / "router.npz"
        model.save(path)
    else:
        path, train_cpu, train_wall = args.model, float("nan"), float("nan")
    sub = rows[: args.prompts]

    sweep = Sweep.build(sub, models, path, prices)
    _, probe_cpu, probe_wall = timed(sweep.probe)
    weights = sweep.points(args.points)
    new, rerank_cpu, rerank_wall = timed(lambda: [sweep.choose(w) for w in weights])
    # the old way: a full decision per prompt and point, predictions not cached. The old sweep's LRU of 1,024
    # prompts missed on every decision of a file over 1,024 prompts (each point cycles through all of them).
    before = Sweep.build(sub, models, path, prices)
    for _, scorer in before.router.scorers:
        if isinstance(scorer, LearnedQualityScorer):
            scorer.cfg.cache_size = 0
    old, old_cpu, old_wall = timed(lambda: [before.choose_full(w) for w in weights])
    assert new == old, "the re-ranked choices differ from full decisions"

    full = Sweep.build(rows, models, path, prices)
    _, fprobe_cpu, fprobe_wall = timed(full.probe)
    fweights = full.points(args.points)
    _, frerank_cpu, frerank_wall = timed(lambda: [full.choose(w) for w in fweights])
    out = {
        "data": str(args.data),
        "rows": len(rows),
        "prompts_compared": len(sub),
        "points": len(weights),
        "same_choices": True,
        "old_full_decisions": {"cpu_s": round(old_cpu, 2), "wall_s": round(old_wall, 2)},
        "new_one_decision_and_rerank": {
            "cpu_s": round(probe_cpu + rerank_cpu, 2),
            "wall_s": round(probe_wall + rerank_wall, 2),
        },
        "speedup_cpu": round(old_cpu / max(probe_cpu + rerank_cpu, 1e-9), 1),
        "whole_file_new": {
            "train_stack_cpu_s": round(train_cpu, 1),
            "train_stack_wall_s": round(train_wall, 1),
            "probe_cpu_s": round(fprobe_cpu, 1),
            "rerank_cpu_s": round(frerank_cpu, 1),
            "probe_wall_s": round(fprobe_wall, 1),
            "rerank_wall_s": round(frerank_wall, 1),
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    new_cpu = probe_cpu + rerank_cpu
    print(f"{len(sub)} prompts × {len(weights)} points: old {old_cpu:.1f} s CPU, new {new_cpu:.1f} s CPU")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
