"""Decision latency of Router.route(): p50 / p99 over a mix of prompts, in-process, after warm-up.

The catalogue is the built-in one plus synthetic models added through the policy until it holds at least
``--models`` models (default 60), so scoring works over a catalogue of realistic size. The process is pinned
to one core. Prints a table and, with --json, machine-readable figures.

    python benchmarks/bench_route.py [--models 60] [--iterations 20000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

PROMPTS = [
    "Write a Python function to calculate fibonacci numbers",
    "What is 17 * 23 + 5?",
    "Summarize the following text in two sentences: The meeting was moved to Tuesday because the room was booked.",
    "Translate 'where is the station' into German",
    "Give me 10 ideas for a birthday party",
    "hello!",
    "Who was the first president of the United States?",
    "Classify each of the following as a fruit or a vegetable: apple, carrot, pear",
    "Write a poem about the sea at night",
    "Based on the passage below, when was the bridge built?\n\n" + "The bridge was built in 1932 by the city. " * 20,
]


def policy_with(n_models: int) -> str:
    from llm_router.catalogue import builtin_models

    have = len(builtin_models())
    lines = ["version: 1", "models:"]
    for i in range(max(0, n_models - have)):
        lines += [
            f"  - id: synth/model-{i:03d}",
            f"    price: {{input_per_mtok: {0.05 * (i + 1):.2f}, output_per_mtok: {0.2 * (i + 1):.2f}}}",
            f"    context_window: {8192 * (1 + i % 16)}",
            "    max_output_tokens: 4096",
            f"    quality: {{code: {0.3 + (i % 7) / 10:.2f}, chat: {0.4 + (i % 5) / 10:.2f}, "
            f"math: {0.35 + (i % 6) / 10:.2f}}}",
            f"    ttft_ms: {200 + 37 * i}",
            f"    tokens_per_second: {40 + i % 90}",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", type=int, default=60)
    ap.add_argument("--iterations", type=int, default=20000)
    ap.add_argument("--warmup", type=int, default=2000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    from llm_router import Router

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.yaml"
        path.write_text(policy_with(args.models))
        t0 = time.perf_counter()
        router = Router(path, autoload=False)
        init_s = time.perf_counter() - t0
    n_models = len(router.catalogue)
    for i in range(args.warmup):
        router.route(PROMPTS[i % len(PROMPTS)])
    timings = []
    import gc

    gc.collect()
    for i in range(args.iterations):
        prompt = PROMPTS[i % len(PROMPTS)]
        t = time.perf_counter_ns()
        router.route(prompt)
        timings.append((time.perf_counter_ns() - t) / 1e6)
    timings.sort()

    def pct(p: float) -> float:
        return timings[min(len(timings) - 1, int(p / 100 * len(timings)))]

    figures = {
        "benchmark": "route",
        "models": n_models,
        "iterations": args.iterations,
        "p50_ms": round(pct(50), 4),
        "p90_ms": round(pct(90), 4),
        "p99_ms": round(pct(99), 4),
        "mean_ms": round(statistics.fmean(timings), 4),
        "router_init_s": round(init_s, 3),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"route() over {n_models} models, {args.iterations} calls after {args.warmup} warm-up, one core")
        print(
            f"  p50 {figures['p50_ms']:.3f} ms   p90 {figures['p90_ms']:.3f} ms   p99 {figures['p99_ms']:.3f} ms   "
            f"mean {figures['mean_ms']:.3f} ms   (router start-up {init_s:.2f} s)"
        )


if __name__ == "__main__":
    main()
