"""Few-shot custom labels: the ``fewshot`` stage vs TF-IDF + logistic regression on the same examples.

For every label set (``--sets DIR``: ``<name>-<part>.jsonl`` files from benchmarks/fewshot_sets.py) and seed,
``--shots`` prompts per label are drawn as the label's examples and up to ``--test-per-label`` others are
classified. Printed per set, as the mean over seeds: the majority-class rate, the TF-IDF + LR baseline (word
1–2-grams + char_wb 2–5-grams, sublinear tf, C=10; scikit-learn, as ``eval classify`` prints it), the product
(``fewshot`` with its defaults), zero-shot (label names only, no example), and the product's per-prompt
latency (p50/p99 over every test prompt, in-process, one thread). ``--part dev`` is where the defaults were
tuned; report ``--part test``.

    nox -s bench_fewshot -- --sets /tmp/fewshot-sets --part test --seeds 5
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from llm_router import TaskSpec
from llm_router_classify.baseline import baseline_accuracy
from llm_router_classify.embeddings import get_embedder
from llm_router_classify.fewshot import FewShotConfig, FewShotModel

Rows = list[tuple[str, str]]


def read(path: Path) -> Rows:
    lines = [ln for ln in path.read_text(encoding="utf-8").split("\n") if ln.strip()]
    return [(o["prompt"], o["label"]) for o in map(json.loads, lines)]


def draw(rows: Rows, shots: int, per_label: int, seed: int) -> tuple[Rows, Rows]:
    by: dict[str, list[str]] = defaultdict(list)
    for p, label in rows:
        by[label].append(p)
    rng = random.Random(seed)
    train: Rows = []
    test: Rows = []
    for label in sorted(by):
        prompts = by[label][:]
        rng.shuffle(prompts)
        train += [(p, label) for p in prompts[:shots]]
        test += [(p, label) for p in prompts[shots : shots + per_label]]
    return train, test


def product(train: Rows, test: Rows, config: FewShotConfig, zero_shot: bool) -> tuple[float, list[float]]:
    labels = sorted({label for _, label in train})
    examples = {label: tuple(p for p, lab in train if lab == label) for label in labels}
    tasks = {label: TaskSpec(examples=() if zero_shot else examples[label]) for label in labels}
    model = FewShotModel(tasks, get_embedder(config.backend, config.threads), config)
    right = 0
    times: list[float] = []
    for p, label in test:
        t0 = time.perf_counter()
        scores, _ = model.predict(p)
        times.append((time.perf_counter() - t0) * 1000)
        right += max(scores, key=scores.__getitem__) == label
    return right / len(test), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=Path, required=True)
    parser.add_argument("--part", choices=["dev", "test"], default="test")
    parser.add_argument("--only", default="", help="comma-separated set names (default: every set in --sets)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--test-per-label", type=int, default=30)
    parser.add_argument("--backend", default="static")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    files = sorted(args.sets.glob(f"*-{args.part}.jsonl"))
    names = [f.name.removesuffix(f"-{args.part}.jsonl") for f in files]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    if not names:
        sys.exit(f"no *-{args.part}.jsonl set in {args.sets}")
    config = FewShotConfig(backend=args.backend)
    report: dict[str, dict[str, float]] = {}
    all_times: list[float] = []
    print(f"{'set':16} {'labels':>6} {'majority':>8} {'tfidf+LR':>8} {'fewshot':>8} {'zero-shot':>9}  p50/p99 ms")
    for name in names:
        rows = read(args.sets / f"{name}-{args.part}.jsonl")
        acc: dict[str, list[float]] = defaultdict(list)
        times: list[float] = []
        for seed in range(args.seeds):
            train, test = draw(rows, args.shots, args.test_per_label, seed)
            gold = [label for _, label in test]
            acc["majority"].append(max(gold.count(g) for g in set(gold)) / len(gold))
            acc["baseline"].append(baseline_accuracy(train, test))
            a, t = product(train, test, config, zero_shot=False)
            acc["fewshot"].append(a)
            times += t
            acc["zero_shot"].append(product(train, test, config, zero_shot=True)[0])
        all_times += times
        r = {k: statistics.mean(v) for k, v in acc.items()}
        r["labels"] = len({label for _, label in rows})
        r["p50_ms"], r["p99_ms"] = float(np.percentile(times, 50)), float(np.percentile(times, 99))
        report[name] = r
        print(
            f"{name:16} {r['labels']:>6} {r['majority']:8.3f} {r['baseline']:8.3f} {r['fewshot']:8.3f} "
            f"{r['zero_shot']:9.3f}  {r['p50_ms']:.2f}/{r['p99_ms']:.2f}",
            flush=True,
        )
    mean = {k: statistics.mean(r[k] for r in report.values()) for k in ("majority", "baseline", "fewshot", "zero_shot")}
    wins = sum(r["fewshot"] > r["baseline"] for r in report.values())
    print(
        f"{'mean':16} {'':>6} {mean['majority']:8.3f} {mean['baseline']:8.3f} {mean['fewshot']:8.3f} "
        f"{mean['zero_shot']:9.3f}  {np.percentile(all_times, 50):.2f}/{np.percentile(all_times, 99):.2f}"
    )
    print(f"fewshot above the baseline on {wins} of {len(report)} sets ({args.part} part, {args.seeds} seeds)")
    if args.json:
        print(json.dumps({"part": args.part, "seeds": args.seeds, "shots": args.shots, "sets": report, "mean": mean}))


if __name__ == "__main__":
    main()
