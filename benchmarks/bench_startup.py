"""Start-up wall time: what a new user waits for before the first routing decision.

Runs, each as a fresh subprocess, interleaved round by round (the order rotates every round, so that no
command always follows another on this shared, noisy machine):

* ``python -c "import pydantic, yaml"``: the floor, a bare interpreter with the core's two main libraries;
* ``python -c "import llm_router"`` (names are imported on first use, so this loads almost nothing);
* ``python -c "from llm_router import Router"``: what the library costs an application that routes;
* ``llm-router route "Write a haiku"``: the command line's decision, no model called, with every plugin that is
  installed in this environment (``nox -s bench_startup`` installs the core and every plugin of the repository);

and prints, for each, the median and spread (quartiles, min, max) of the wall time, and the ratio of its median to
the bare import's median. One round is run first and not counted (it writes bytecode caches and warms the file
system cache).

    python benchmarks/bench_startup.py [--runs 21] [--max-ratio 3] [--json]

``--max-ratio R`` makes the exit status 1 when a median is more than R times the bare import's.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROMPT = "Write a haiku"


def commands(python: str, cli: str) -> dict[str, list[str]]:
    return {
        "bare import (pydantic, yaml)": [python, "-c", "import pydantic, yaml"],
        "import llm_router": [python, "-c", "import llm_router"],
        "from llm_router import Router": [python, "-c", "from llm_router import Router"],
        f'llm-router route "{PROMPT}"': [cli, "route", PROMPT],
    }


def run_once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr.decode(errors='replace')}")
    return elapsed


def measure(cmds: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict[str, list[float]]:
    names = list(cmds)
    for name in names:  # warm-up round, not counted
        run_once(cmds[name], env)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(runs):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(run_once(cmds[name], env))
    return times


def summary(samples: list[float]) -> dict[str, float]:
    q1, median, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return {"median": median, "q1": q1, "q3": q3, "min": min(samples), "max": max(samples)}


def plugins() -> list[str]:
    found = set()
    for ep in md.entry_points(group="llm_router"):
        dist = getattr(ep, "dist", None)
        found.add(f"{dist.metadata['Name']} {dist.version}" if dist is not None else ep.value)
    return sorted(found)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=21, help="counted runs of each command (default 21)")
    ap.add_argument("--python", default=sys.executable, help="the interpreter to start (default: this one)")
    ap.add_argument("--cli", default=None, help="the llm-router script (default: the one beside --python)")
    ap.add_argument("--max-ratio", type=float, default=None, help="fail when a median exceeds R x the bare one")
    ap.add_argument("--json", action="store_true", help="machine-readable figures on stdout")
    args = ap.parse_args()
    cli = args.cli or str(Path(args.python).parent / "llm-router")
    if not Path(cli).exists():
        cli = shutil.which("llm-router") or cli
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_ROUTER_", "PYTHON"))}
    cmds = commands(args.python, cli)
    times = measure(cmds, args.runs, env)
    stats = {name: summary(samples) for name, samples in times.items()}
    bare = stats[next(iter(stats))]["median"]
    ratios = {name: s["median"] / bare for name, s in stats.items()}
    if args.json:
        print(json.dumps({"runs": args.runs, "plugins": plugins(), "stats": stats, "ratios": ratios}, indent=2))
    else:
        print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; {args.runs} runs")
        print("plugins installed: " + (", ".join(plugins()) or "none"))
        print(f"{'command':<36} {'median':>8} {'q1-q3':>15} {'min-max':>15} {'x bare':>7}")
        for name, s in stats.items():
            print(
                f"{name:<36} {s['median']:>7.3f}s {s['q1']:>6.3f}-{s['q3']:<6.3f}s  "
                f"{s['min']:>6.3f}-{s['max']:<6.3f}s {ratios[name]:>6.2f}x"
            )
    if args.max_ratio is not None:
        over = [name for name, r in ratios.items() if r > args.max_ratio]
        if over:
            print(f"over {args.max_ratio}x the bare import: {', '.join(over)}", file=sys.stderr)
            raise SystemExit(1)


if __name__ == "__main__":
    main()
