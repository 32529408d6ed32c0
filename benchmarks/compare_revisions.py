"""Two revisions' benchmarks side by side in one run: old and new interleaved for several rounds.

Each revision is a Python executable (a clean virtual environment with that revision installed and only what the
benchmarks need). Every round runs every benchmark once with each executable, one right after the other, the
order alternating between rounds (old-new, new-old, …) so that the machine's drift and the position in the pair
affect both sides alike. The run is pinned to one core where the OS allows (the benchmarks pin themselves too).

A benchmark is ``NAME=SCRIPT [ARGS…]``; the same script file is run by both executables. Its figures are read
from a JSON object printed on a line of its own (``--json``), or else from its "<number> µs" figure (reported as
``us``). Time figures (keys ending in _ns, _us, _ms or _s) are compared: median, min and max over the rounds,
and new/old, the ratio of the medians, and the median of the rounds' own ratios (each pair ran back to back).

    python benchmarks/compare_revisions.py --old ../bench-old/bin/python --new ../bench-new/bin/python \\
        --rounds 7 --bench "route=benchmarks/bench_route.py --iterations 20000 --json" \\
        --bench "gateway_cpu=benchmarks/bench_gateway_cpu.py --requests 20000"

``--max-ratio 1.05`` exits 1 when a median ratio exceeds it; ``--json`` prints every round's figures too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

TIME_SUFFIXES = ("_ns", "_us", "_ms", "_s")
MICROSECONDS = re.compile(r"(\d+(?:\.\d+)?)\s*(?:µs|us)\b")
SIDES = ("old", "new")


@dataclass
class Benchmark:
    name: str
    argv: list[str]
    # side -> metric -> one value per round
    figures: dict[str, dict[str, list[float]]] = field(default_factory=lambda: {s: {} for s in SIDES})


def parse_bench(spec: str) -> Benchmark:
    name, sep, command = spec.partition("=")
    if not sep or not name.strip() or not command.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=SCRIPT [ARGS...], got {spec!r}")
    return Benchmark(name.strip(), shlex.split(command))


def parse_figures(stdout: str) -> dict[str, float]:
    """The time figures of one run: a JSON object on a line of its own, else the last '<n> µs' figure."""
    for raw in reversed(stdout.splitlines()):
        line = raw.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict):
                return {
                    k: float(v)
                    for k, v in data.items()
                    if k.endswith(TIME_SUFFIXES) and isinstance(v, int | float) and not isinstance(v, bool)
                }
    found = MICROSECONDS.findall(stdout)
    if found:
        return {"us": float(found[-1])}
    return {}


def run_once(python: str, bench: Benchmark, timeout: float) -> dict[str, float]:
    proc = subprocess.run(
        [python, *bench.argv], capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
    )
    figures = parse_figures(proc.stdout)
    if proc.returncode != 0 or not figures:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"{bench.name} with {python} exited {proc.returncode} and printed no figures it could read")
    return figures


def pin_to_one_core(cpu: int | None) -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (the OS has no sched_setaffinity)"
    allowed = os.sched_getaffinity(0)
    core = min(allowed) if cpu is None else cpu
    os.sched_setaffinity(0, {core})  # inherited by the benchmark processes
    return f"pinned to core {core}"


def fmt(value: float) -> str:
    return f"{value:.4g}"


def table(benches: list[Benchmark]) -> str:
    header = ("benchmark", "metric", "old median", "old min-max", "new median", "new min-max", "new/old", "paired")
    rows: list[tuple[str, ...]] = [header]
    for bench in benches:
        old, new = bench.figures["old"], bench.figures["new"]
        for metric in (m for m in old if m in new):
            o, n = old[metric], new[metric]
            om, nm = statistics.median(o), statistics.median(n)
            paired = statistics.median(b / a for a, b in zip(o, n, strict=True) if a)
            rows.append(
                (
                    bench.name,
                    metric,
                    fmt(om),
                    f"{fmt(min(o))}-{fmt(max(o))}",
                    fmt(nm),
                    f"{fmt(min(n))}-{fmt(max(n))}",
                    f"{nm / om:.3f}" if om else "-",
                    f"{paired:.3f}",
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def worst_ratio(bench: Benchmark) -> float:
    old, new = bench.figures["old"], bench.figures["new"]
    ratios = [
        statistics.median(new[m]) / statistics.median(old[m]) for m in old if m in new and statistics.median(old[m])
    ]
    return max(ratios, default=1.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True, help="python executable of the old revision's environment")
    ap.add_argument("--new", required=True, help="python executable of the new revision's environment")
    ap.add_argument("--bench", action="append", type=parse_bench, required=True, help="NAME=SCRIPT [ARGS...]")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cpu", type=int, default=None, help="the core to pin to (default: the lowest allowed one)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds one benchmark run may take")
    ap.add_argument("--max-ratio", type=float, default=None, help="exit 1 when a new/old median ratio exceeds it")
    ap.add_argument("--json", action="store_true", help="also print every round's figures as JSON")
    args = ap.parse_args()
    benches: list[Benchmark] = args.bench
    pythons = {"old": args.old, "new": args.new}
    for side, python in pythons.items():
        if not Path(python).exists():
            raise SystemExit(f"--{side}: {python} does not exist")

    pinned = pin_to_one_core(args.cpu)
    print(f"{args.rounds} rounds, old and new interleaved, {pinned}", flush=True)
    started = time.monotonic()
    for round_no in range(args.rounds):
        order = SIDES if round_no % 2 == 0 else SIDES[::-1]
        for bench in benches:
            for side in order:
                for metric, value in run_once(pythons[side], bench, args.timeout).items():
                    bench.figures[side].setdefault(metric, []).append(value)
        print(f"  round {round_no + 1}/{args.rounds} done ({time.monotonic() - started:.0f} s)", flush=True)

    print()
    print(f"old: {args.old}\nnew: {args.new}")
    print("new/old: ratio of the medians (< 1: new is faster); paired: median of each round's new/old")
    print(table(benches))
    if args.json:
        print(json.dumps({"rounds": args.rounds, "benchmarks": {b.name: b.figures for b in benches}}))
    if args.max_ratio is not None:
        over = [b.name for b in benches if worst_ratio(b) > args.max_ratio]
        if over:
            print(f"slower than {args.max_ratio}x: {', '.join(over)}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
