"""Fit the rule classifier's confidence calibration and measure its accuracy.

Runs the built-in rule classifier (uncalibrated) over labelled prompts, fits an isotonic (pool-adjacent-
violators) map from its raw confidence to the observed share of correct answers, and writes it to
``core/src/llm_router/data/rules_calibration.json`` with its provenance. Then reports accuracy and the
calibration (expected calibration error) on a held-out file.

Labels: Dolly's eight categories (general_qa counts as open_qa) and, from the routing files, each row's
benchmark mapped to a task (mbpp, human_eval → code; gsm8k, math → math; arc, winogrande, mmlu, gpqa,
commonsense_qa, openbook_qa → reasoning; natural_qa, trivia_qa → open_qa).

    python benchmarks/fit_rules_calibration.py \\
        --fit ../shared/data/classify/dolly-train.jsonl ../shared/data/routing/llmrouter-train.jsonl \\
        --holdout ../shared/data/classify/dolly-dev.jsonl [--write]
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

DOLLY = {"general_qa": "open_qa"}
BENCH = {
    "mbpp": "code",
    "human_eval": "code",
    "gsm8k": "math",
    "math": "math",
    "arc_challenge": "reasoning",
    "arc-challenge": "reasoning",
    "winogrande": "reasoning",
    "mmlu": "reasoning",
    "gpqa": "reasoning",
    "commonsense_qa": "reasoning",
    "openbook_qa": "reasoning",
    "natural_qa": "open_qa",
    "trivia_qa": "open_qa",
}
OUT = Path(__file__).resolve().parent.parent / "core/src/llm_router/data/rules_calibration.json"


def load(paths: list[str], caps: list[int], seed: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    rng = random.Random(seed)
    for path, per_file_cap in zip(paths, caps + [caps[-1]] * (len(paths) - len(caps)), strict=True):
        found = []
        with Path(path).open(encoding="utf-8") as fh:
            lines = list(fh)
        for line in lines:
            row = json.loads(line)
            if "label" in row:
                found.append((row["prompt"], DOLLY.get(row["label"], row["label"])))
            elif "task" in row:
                task = BENCH.get(row["task"].split("/")[0])
                if task:
                    found.append((row["prompt"], task))
        rng.shuffle(found)
        rows += found[:per_file_cap]
    return rows


def predictions(rows: list[tuple[str, str]]) -> list[tuple[float, bool, str, str]]:
    from llm_router import Router
    from llm_router.types import RouteRequest

    router = Router({"classify": [{"rules": {"calibration": "none"}}]}, autoload=False)
    clf = router.stages[0].classifier
    out = []
    for prompt, label in rows:
        pred = clf.classify(RouteRequest(messages=prompt))
        assert pred is not None
        out.append((pred.confidence, pred.task == label, pred.task, label))
    return out


def pav(points: list[tuple[float, bool]]) -> tuple[list[float], list[float]]:
    """Isotonic regression by pool-adjacent-violators over the distinct x values.

    Returns the fitted step function as points: each block contributes its lowest and highest x at the
    block's accuracy, so the curve is flat across a block and linear between blocks."""
    by_x: dict[float, list[float]] = {}
    for x, y in points:
        acc = by_x.setdefault(round(x, 6), [0.0, 0.0])
        acc[0] += float(y)
        acc[1] += 1.0
    blocks: list[list[float]] = []  # [x_lo, x_hi, sum_y, n]
    for x in sorted(by_x):
        blocks.append([x, x, by_x[x][0], by_x[x][1]])
        while len(blocks) > 1 and blocks[-2][2] / blocks[-2][3] > blocks[-1][2] / blocks[-1][3]:
            b = blocks.pop()
            blocks[-1] = [blocks[-1][0], b[1], blocks[-1][2] + b[2], blocks[-1][3] + b[3]]
    xs: list[float] = []
    ys: list[float] = []
    for lo, hi, sy, n in blocks:
        for x in (lo, hi) if hi > lo else (lo,):
            xs.append(x)
            ys.append(sy / n)
    return xs, ys


def ece(pairs: list[tuple[float, bool]], bins: int = 10) -> float:
    total = len(pairs)
    err = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        sel = [(c, ok) for c, ok in pairs if lo <= c < hi or (b == bins - 1 and c == 1.0)]
        if sel:
            err += len(sel) / total * abs(sum(c for c, _ in sel) / len(sel) - sum(ok for _, ok in sel) / len(sel))
    return err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fit", nargs="+", required=True)
    ap.add_argument("--holdout", nargs="+", required=True)
    ap.add_argument(
        "--caps",
        type=int,
        nargs="+",
        default=[10**9, 1500],
        help="at most this many prompts from each --fit file, in order (default: all, then 1500)",
    )
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--write", action="store_true", help=f"write {OUT.name}")
    args = ap.parse_args()

    from llm_router.builtin.classifiers import Calibration

    fit = predictions(load(args.fit, args.caps, args.seed))
    xs, ys = pav([(c, ok) for c, ok, _, _ in fit])
    kx, ky = (
        ([0.0] if xs[0] > 0 else []) + xs + ([1.0] if xs[-1] < 1 else []),
        (([ys[0]] if xs[0] > 0 else []) + ys + ([ys[-1]] if xs[-1] < 1 else [])),
    )
    cal = Calibration(kx, ky)
    held = predictions(load(args.holdout, [10**9], args.seed))
    raw = [(c, ok) for c, ok, _, _ in held]
    calibrated = [(cal(c), ok) for c, ok in raw]
    acc = sum(ok for _, ok in raw) / len(raw)
    print(f"fitted on {len(fit)} prompts from {', '.join(Path(p).name for p in args.fit)}; {len(kx)} points")
    print(f"held out {len(held)} prompts from {', '.join(Path(p).name for p in args.holdout)}: rule accuracy {acc:.3f}")
    print(f"expected calibration error: raw {ece(raw):.3f} -> calibrated {ece(calibrated):.3f}")
    for t in (0.3, 0.5, 0.7, 0.8, 0.9):
        sel = [ok for c, ok in calibrated if c >= t]
        if sel:
            print(
                f"  confidence >= {t}: {len(sel) / len(calibrated):6.1%} of prompts, accuracy {sum(sel) / len(sel):.3f}"
            )
    confusion = Counter((label, task) for _, ok, task, label in held if not ok)
    print("most common confusions (label -> predicted):", confusion.most_common(6))
    if args.write:
        OUT.write_text(
            json.dumps(
                {
                    "x": [round(x, 4) for x in kx],
                    "y": [round(y, 4) for y in ky],
                    "provenance": (
                        "isotonic fit of the built-in rule classifier's raw confidence to its observed accuracy on "
                        f"{len(fit)} prompts sampled (seed {args.seed}, at most {args.caps} per file) from: "
                        + ", ".join(Path(p).name for p in args.fit)
                        + " (databricks-dolly-15k, CC BY-SA 3.0; LLMRouter example data, MIT). Made by "
                        "benchmarks/fit_rules_calibration.py; only these fitted numbers are shipped."
                    ),
                },
                indent=1,
            )
            + "\n"
        )
        print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
