"""Gateway CPU per request with the response cache on but missing, and with tracing on, side by side with both
off: the same in-process ASGI driver as bench_gateway_cpu.py (instant provider, no network), three gateways in one
process, their rounds interleaved so a busy machine weighs on all three alike.

    python benchmarks/bench_cache_tracing_cpu.py [--requests 4000] [--rounds 5]

- off:     no cache, no tracing (every prompt distinct, as in the other two);
- cache:   ``cache: {exact: true}`` (memory LRU), every prompt distinct: each request is a lookup that misses,
           then a store;
- tracing: ``telemetry.tracing`` with the OpenTelemetry SDK (BatchSpanProcessor, an exporter that drops the
           spans: the export's network cost is not the gateway's), every request sampled: 1 request span +
           3 decision-phase spans + 1 attempt span per request;
- lean:    the same with ``telemetry.decision_spans: false`` (the decision phases as attributes of the request
           span, not as 3 child spans): 2 spans per request;
- traced10: "tracing" with the SDK's ``parentbased_traceidratio`` sampler at 10 % (OTEL_TRACES_SAMPLER_ARG=0.1):
           a request left out costs its root span's sampling decision and no child span.

Prints each configuration's median and minimum µs per request over the rounds (CPU time of this process, which
includes the span processor's thread) and the ratio of the medians to "off". The issue's target: at most +15 %.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_gateway_cpu import POLICY, PROMPT, instant_plugin, one, run_loop


def null_tracer_provider(ratio: float | None = None) -> Any:
    """The SDK with a batch processor and an exporter that drops spans; ``ratio``: sample that share of traces."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio))) if ratio is not None else TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    return provider


def make_app(workdir: Path, name: str, extra: str, tracer_provider: Any = None) -> Any:
    from llm_router import Router
    from llm_router.gateway import create_app

    (workdir / f"{name}.yaml").write_text(POLICY + extra)
    router = Router(workdir / f"{name}.yaml", plugins=[instant_plugin()], tracer_provider=tracer_provider)
    return create_app(router, ledger_path=workdir / f"{name}.sqlite3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="requests per configuration per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})

    workdir = Path(tempfile.mkdtemp(prefix="bench-cache-tracing-"))
    apps = {
        "off": make_app(workdir, "off", ""),
        "cache": make_app(workdir, "cache", "cache: {exact: true}\n"),
        "tracing": make_app(workdir, "tracing", "", null_tracer_provider()),
        "lean": make_app(workdir, "lean", "telemetry: {decision_spans: false}\n", null_tracer_provider()),
        "traced10": make_app(workdir, "traced10", "", null_tracer_provider(0.1)),
    }
    counter = iter(range(10**9))

    def body() -> bytes:
        prompt = f"{PROMPT} (#{next(counter)})"  # distinct: every cache lookup misses
        return json.dumps({"model": "auto", "messages": [{"role": "user", "content": prompt}]}).encode()

    async def run(app: Any, n: int) -> float:
        bodies = [body() for _ in range(n)]
        c0 = time.process_time()
        for b in bodies:
            await one(app, b)
        return (time.process_time() - c0) / n * 1e6

    async def bench() -> None:
        results: dict[str, list[float]] = {name: [] for name in apps}
        async with (
            apps["off"].router.lifespan_context(apps["off"]),
            apps["cache"].router.lifespan_context(apps["cache"]),
            apps["tracing"].router.lifespan_context(apps["tracing"]),
            apps["lean"].router.lifespan_context(apps["lean"]),
            apps["traced10"].router.lifespan_context(apps["traced10"]),
        ):
            for app in apps.values():
                await run(app, 500)  # warm-up
            for _ in range(args.rounds):
                for name, app in apps.items():
                    results[name].append(await run(app, args.requests))
        base = statistics.median(results["off"])
        for name, values in results.items():
            med = statistics.median(values)
            low = (min(values) / min(results["off"]) - 1) * 100
            print(
                f"{name:8s} {med:7.1f} µs/request (min {min(values):.1f}, max {max(values):.1f}; "
                f"{(med / base - 1) * 100:+.1f} % vs off; min vs min {low:+.1f} %)"
            )

    run_loop(bench)


if __name__ == "__main__":
    main()
