"""Tracing's cost in the served gateway: CPU time of `llm-router serve`'s process per request, tracing off vs on,
side by side in one run (bench_cache_tracing_cpu.py measures the same in process, without HTTP).

    python benchmarks/bench_tracing_served.py [--requests 5000] [--rounds 3] [--concurrency 10]

Five gateways (the bench_gateway.py set-up: uvicorn + uvloop + httptools, an instant fake OpenAI upstream, wrk
as the load; gateways pinned to CPU 0, the upstream, wrk and the span sink to CPU 1), each run as
`llm-router serve` runs it, the same policy but for `telemetry:`:

- off:     no tracing;
- tracing: `telemetry: {tracing: true}` with the router's own SDK set-up (BatchSpanProcessor + the OTLP/HTTP
           exporter, configured by OTEL_EXPORTER_OTLP_ENDPOINT) exporting to a local sink that answers 200:
           every request sampled, 5 spans a request (request, classify, constrain, score, the provider attempt);
           the export (protobuf encoding, the HTTP POST) runs in the gateway's process and is counted;
- lean:    the same with `telemetry.decision_spans: false` (2 spans a request);
- traced10: "tracing" with the SDK's `parentbased_traceidratio` sampler at 10 % (OTEL_TRACES_SAMPLER,
           OTEL_TRACES_SAMPLER_ARG=0.1): one request in ten recorded and exported;
- traced1: the same at 1 %.

For each round and gateway, wrk sends the same fixed number of requests; the gateway's CPU (user + system, from
/proc/PID/stat, its threads included) over the run is divided by the requests answered. Rounds are interleaved
so a busy machine weighs on all five alike. Prints the median µs per request and the ratio to "off".
"""

from __future__ import annotations

import argparse
import http.server
import os
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_gateway as bg

HERE = Path(__file__).resolve()
TRACED = "telemetry: {tracing: true}\n"
SAMPLED_10 = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}
SAMPLED_1 = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"}
# name: (the policy's telemetry section, the gateway's extra environment)
GATEWAYS: dict[str, tuple[str, dict[str, str]]] = {
    "off": ("", {}),
    "tracing": (TRACED, {}),
    "lean": ("telemetry: {tracing: true, decision_spans: false}\n", {}),
    "traced10": (TRACED, SAMPLED_10),
    "traced1": (TRACED, SAMPLED_1),
}


def run_sink(port: int) -> None:
    """An OTLP/HTTP receiver that reads each export and answers 200 (the spans are dropped)."""

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per gateway per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=1000)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt-get install -y wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="bench-tracing-served-"))
    procs = bg.PROCS
    try:
        upstream, sink_port = bg.start_upstream(cpu=1), bg.free_port()
        procs.append(bg.start([sys.executable, str(HERE), "_sink", str(sink_port)], cpu=1))
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}", "OTEL_SERVICE_NAME": "bench"}
        gateways: dict[str, tuple[str, int]] = {}
        for name, (telemetry, extra_env) in GATEWAYS.items():
            port = bg.free_port()
            policy = workdir / f"{name}.yaml"
            base = textwrap.dedent(bg.GATEWAY_POLICY % {"upstream": upstream, "model": bg.MODEL, "client": ""})
            policy.write_text(base + telemetry)
            ledger = str(workdir / f"{name}.sqlite3")
            cmd = [sys.executable, str(bg.HERE), "_gateway", str(port), str(policy), ledger]
            proc = bg.start(cmd, cpu=0, env=env | extra_env)
            procs.append(proc)
            gateways[name] = (f"http://127.0.0.1:{port}/v1/chat/completions", proc.pid)  # taskset execs: the same pid
        for url, _pid in gateways.values():
            bg.wait_chat(url, "auto")
            bg.run_wrk(url, "auto", None, args.warmup, args.concurrency, workdir)
        results: dict[str, list[float]] = {name: [] for name in gateways}
        for _ in range(args.rounds):
            for name, (url, pid) in gateways.items():
                c0 = cpu_seconds(pid)
                r = bg.run_wrk(url, "auto", None, args.requests, args.concurrency, workdir)
                time.sleep(0.3)  # let the batch processor export what the run left queued (counted too)
                used = cpu_seconds(pid) - c0
                if r["errors"]:
                    raise RuntimeError(f"{name}: {r['errors']} errors")
                results[name].append(used / r["requests"] * 1e6)
        base = statistics.median(results["off"])
        print(f"served gateway CPU per request, concurrency {args.concurrency}, {args.rounds} rounds:")
        for name, values in results.items():
            med = statistics.median(values)
            print(
                f"  {name:8s} {med:7.1f} µs/request (min {min(values):.1f}, max {max(values):.1f}; "
                f"{(med / base - 1) * 100:+.1f} % vs off)"
            )
    finally:
        for proc in reversed(procs):
            bg.stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_sink":
        run_sink(int(sys.argv[2]))
    else:
        main()
