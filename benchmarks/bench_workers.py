"""`llm-router serve --workers N`: requests per second with 1 and 2 worker processes, side by side, and the same
scaling for the bare pass-through floor (uvicorn's own `--workers`), so the machine's ceiling is visible.

    python benchmarks/bench_workers.py [--requests 20000] [--concurrency 50] [--rounds 3]

The bench_gateway.py set-up (the instant fake OpenAI upstream, the gateway policy with `openai_compatible`, wrk
as the load), but nothing is pinned: on a 2-core machine the workers, the upstream and wrk share both cores, as
they would on a small host running its own load. Each round measures every target once, in turn; the figure is
the median of the rounds. The issue's target: 2 workers >= 1.7x one worker's req/s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_gateway as bg

HERE = Path(__file__).resolve()


def run_floor(port: int, upstream: str, workers: int) -> None:
    """The pass-through floor, as a uvicorn factory so that it can have workers."""
    import uvicorn

    os.environ["BENCH_UPSTREAM"] = upstream
    uvicorn.run(
        "bench_workers:floor_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_level="error",
        access_log=False,
        app_dir=str(HERE.parent),
    )


def floor_app() -> object:
    """bench_gateway.py's pass-through proxy, for uvicorn's factory (the upstream from ``BENCH_UPSTREAM``)."""
    return bg.passthrough_app(os.environ["BENCH_UPSTREAM"])


NGINX = """
worker_processes 1;
daemon off;
pid %(dir)s/nginx.pid;
error_log %(dir)s/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %(dir)s/nginx-body;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:%(port)d;
        location /v1/chat/completions { default_type application/json; return 200 '%(answer)s'; }
    }
}
"""


def start_nginx(workdir: Path) -> str:
    """The same fixed answer served by nginx (one worker process): an upstream that costs the machine little."""
    port = bg.free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX % {"dir": workdir, "port": port, "answer": json.dumps(bg.ANSWER)})
    start([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf), "-p", str(workdir)])
    upstream = f"http://127.0.0.1:{port}"
    bg.wait_chat(f"{upstream}/v1/chat/completions")
    return upstream


def start(cmd: list[str]) -> None:
    """``cmd`` unpinned, kept in bench_gateway's PROCS (stopped at the end)."""
    bg.PROCS.append(bg.start(cmd, cpu=None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000, help="requests per target per round")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument(
        "--upstream",
        choices=["python", "nginx"],
        default="python",
        help="the fake upstream: bench_gateway's (a Python process) or nginx returning the same answer",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt-get install -y wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    try:
        if args.upstream == "nginx" and not shutil.which("nginx") and not Path("/usr/sbin/nginx").exists():
            sys.exit("nginx is not installed (Debian: apt-get install -y nginx-light)")
        upstream = start_nginx(workdir) if args.upstream == "nginx" else bg.start_upstream(cpu=None)
        policy = workdir / "policy.yaml"
        policy.write_text(textwrap.dedent(bg.GATEWAY_POLICY % {"upstream": upstream, "model": bg.MODEL, "client": ""}))
        cli = str(Path(sys.executable).with_name("llm-router"))
        targets: dict[str, tuple[str, str]] = {}
        for n in (1, 2):
            port = bg.free_port()
            start([sys.executable, str(HERE), "_floor", str(port), upstream, str(n)])
            targets[f"floor x{n}"] = (f"http://127.0.0.1:{port}/v1/chat/completions", bg.MODEL)
            port = bg.free_port()
            ledger = str(workdir / f"usage-{n}.sqlite3")
            serve = [cli, "serve", "--policy", str(policy), "--port", str(port), "--workers", str(n)]
            start([*serve, "--ledger", ledger, "--log-level", "warning"])
            targets[f"llm-router x{n}"] = (f"http://127.0.0.1:{port}/v1/chat/completions", "auto")
        for url, model in targets.values():
            bg.wait_chat(url, model)
            _wrk(url, model, args.warmup, args.concurrency, workdir)
        rps: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, (url, model) in targets.items():
                rps[name].append(_wrk(url, model, args.requests, args.concurrency, workdir))
        report(rps, args.concurrency)
    finally:
        for proc in reversed(bg.PROCS):
            bg.stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def _wrk(url: str, model: str, requests: int, concurrency: int, workdir: Path) -> float:
    """req/s of one wrk run, wrk unpinned."""
    result = bg.run_wrk(url, model, None, requests, concurrency, workdir, pin=False)
    if result["errors"]:
        raise RuntimeError(f"{url}: {result['errors']} errors")
    return float(result["rps"])


def report(rps: dict[str, list[float]], concurrency: int) -> None:
    med = {name: statistics.median(values) for name, values in rps.items()}
    print(f"req/s at concurrency {concurrency} (median of {len(next(iter(rps.values())))} rounds):")
    for name, value in med.items():
        print(f"  {name:14s} {value:8.0f} req/s  (rounds: {', '.join(f'{v:.0f}' for v in rps[name])})")
    for kind in ("floor", "llm-router"):
        print(f"  {kind}: 2 workers / 1 worker = {med[f'{kind} x2'] / med[f'{kind} x1']:.2f}x")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_floor":
        run_floor(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    else:
        main()
