"""The OpenTelemetry SDK's own cost per span, the floor under any tracing of a request: an empty span, a span
with 10 attributes set in one call, and a span event, with the SDK set up as the router's default (a
BatchSpanProcessor) and an exporter that drops the spans (the export's network cost is not the gateway's); then
what the OTLP exporter spends turning finished spans into its protobuf payload (that work runs in the gateway's
process, in the processor's thread), per span.

    python benchmarks/bench_span_floor.py [--spans 20000] [--rounds 5]

Prints the median over the rounds of the CPU time (this process, the processor's thread included) per item.
Compare with bench_cache_tracing_cpu.py's "off" figure (the gateway's CPU per request without tracing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any


def per_item_us(fn: Callable[[], Any], n: int, rounds: int) -> float:
    for _ in range(min(n, 2000)):
        fn()
    values = []
    for _ in range(rounds):
        c0 = time.process_time()
        for _ in range(n):
            fn()
        values.append((time.process_time() - c0) / n * 1e6)
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=20000, help="spans per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop()))
    tracer = provider.get_tracer("bench")
    attrs = {f"llm_router.a{i}": float(i) for i in range(10)}

    def empty() -> None:
        tracer.start_span("s").end()

    def with_attributes() -> None:
        span = tracer.start_span("s")
        span.set_attributes(attrs)
        span.end()

    root = tracer.start_span("root")

    def event() -> None:
        root.add_event("e", {"a": 1.0})

    print(f"empty span:                {per_item_us(empty, args.spans, args.rounds):6.1f} µs")
    print(f"span + 10 attributes:      {per_item_us(with_attributes, args.spans, args.rounds):6.1f} µs")
    print(f"span event (1 attribute):  {per_item_us(event, min(args.spans, 5000), args.rounds):6.1f} µs")
    root.end()
    provider.shutdown()
    encoding(args.spans, args.rounds, attrs)


def encoding(n: int, rounds: int, attrs: dict[str, float]) -> None:
    """The OTLP exporter's encoding (``encode_spans`` + serialisation) per span, empty and with 10 attributes."""
    try:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    except ImportError:
        print("OTLP encoding: skipped (opentelemetry-exporter-otlp-proto-common not installed)")
        return
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    kept = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("bench")
    batch = 512  # the BatchSpanProcessor's default export batch
    for i in range(batch):
        tracer.start_span("s", attributes=attrs if i % 2 else None).end()
    spans = kept.get_finished_spans()
    plain, rich = [s for s in spans if not s.attributes], [s for s in spans if s.attributes]
    for label, group in (("empty span", plain), ("span + 10 attributes", rich)):
        per_batch = per_item_us(lambda g=group: encode_spans(g).SerializeToString(), max(1, n // 2000), rounds)
        print(f"OTLP encoding, {label + ':':22s}{per_batch / len(group):6.1f} µs")
    provider.shutdown()


if __name__ == "__main__":
    main()
