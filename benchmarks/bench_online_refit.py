"""Research probe for issue 13 item 2 (not a product option): after one ``eval online`` stream, the frozen
bandit beside the *direct method* (the offline stack trained only on the logged rows, one chosen model's score
per prompt) and, with ``--offline``, the full-information stack; AIQ (or APGR) on the file's held-out tail.

    python benchmarks/bench_online_refit.py --data /tmp/val-routerbench.jsonl --seed 0 --explore 0.05 \
        --cost-weight 0 [--offline]

Run it on validation files only (the first 80 % of a routing file): the file's last 20 % is held out here.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from llm_router_learned import online_eval as oe
from llm_router_learned.data import load_prices, load_rows, models_of
from llm_router_learned.evaluation import Sweep, measure, pair_of, report
from llm_router_learned.model import train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--explore", type=float, default=0.05)
    ap.add_argument("--cost-weight", type=float, default=0.0)
    ap.add_argument("--offline", action="store_true", help="also train the full-information stack")
    a = ap.parse_args()
    rows = load_rows([a.data])
    models, prices = models_of(rows), load_prices(a.data)
    learner = {"algorithm": "thompson", "explore": a.explore, "seed": a.seed, "cache_size": len(rows) + 16}
    stream_rows, test = oe.split_tail(rows, 0.2)
    stream = oe.shuffled(stream_rows, a.seed)
    setup = oe.setup_for(rows, models, prices, learner, None)
    q, c = oe.matrices(stream, models, prices)
    strong, weak = pair_of(models, rows, prices)
    key = "APGR" if strong else "AIQ"
    t0 = time.perf_counter()
    router, scorer = setup.router()
    log = oe.replay(router, scorer, stream, q, c, a.cost_weight)
    pts = oe.frozen_points(setup, router, scorer, test, 41, strong)
    res = {"bandit": report(test, models, prices, pts, None, strong, weak)["router"][key]}

    def artifact_metric(train_rows: list[dict[str, object]]) -> float:
        path = Path(tempfile.mkdtemp(prefix="bench-online-refit-")) / "a.npz"
        train(train_rows, method="stack").save(path)
        sweep = Sweep.build(test, models, path, prices, None, None)
        sweep.probe()
        return float(
            report(test, models, prices, measure(sweep, sweep.points(41), strong), None, strong, weak)["router"][key]
        )

    logged = [
        {"prompt": r["prompt"], "task": r.get("task", ""), "scores": {models[j]: rating}}
        for r, j, rating in zip(stream, log.chosen, log.quality, strict=True)
    ]
    res["direct_method"] = artifact_metric(logged)
    if a.offline:
        res["offline_full_information"] = artifact_metric(stream_rows)
    res["stream_mean_quality"] = float(np.mean(log.quality))
    out = {"data": a.data, "seed": a.seed, "explore": a.explore, "cost_weight": a.cost_weight, "metric": key}
    print(json.dumps({**out, **res, "seconds": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
