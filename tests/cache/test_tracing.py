"""OpenTelemetry traces: the SDK's in-memory exporter for the span tree and attributes, a traceparent continued
through the gateway, and once the real OTLP/HTTP exporter against a receiver started here."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

pytest.importorskip("opentelemetry.sdk")
from llm_router import Router
from llm_router_test_plugin import plugin as tp
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

POLICY = """
providers:
  a: {type: scripted, models: [small, large], price_in: 1, price_out: 2}
preferences: {cost: 1}
fallback: {retries: 1, backoff_ms: 1, max_backoff_ms: 5, max_models: 2, timeout_s: 5}
cache: {exact: true}
"""


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    p = TracerProvider()
    p.add_span_processor(SimpleSpanProcessor(exporter))
    return p


@pytest.fixture
def router(write_policy: Callable[..., Path], provider: TracerProvider) -> Iterator[Router]:
    r = Router(write_policy(POLICY), tracer_provider=provider)
    yield r
    r.close()


def _by_name(spans: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for s in spans:
        out.setdefault(s.name, []).append(s)
    return out


def test_request_span_with_phases_attempts_retries_and_fallback(router: Router, exporter: InMemorySpanExporter) -> None:
    tp.SCRIPTS["a"] = ["error:server_error", "error:server_error", "text:from large"]
    result = router.route_and_execute("secret prompt text", max_tokens=30)
    assert result.selected_model.id == "a/large"
    spans = exporter.get_finished_spans()
    names = _by_name(spans)
    (root,) = names["chat auto"]
    assert root.parent is None
    for child in ("llm_router.classify", "llm_router.constrain", "llm_router.score", "llm_router.cache"):
        (span,) = names[child]
        assert span.parent.span_id == root.context.span_id and span.context.trace_id == root.context.trace_id
    attempts = names["chat small"] + names["chat large"]
    assert [
        (s.attributes["gen_ai.request.model"], s.attributes["llm_router.retry"], s.status.is_ok)
        for s in sorted(attempts, key=lambda s: s.start_time)
    ] == [("small", 0, False), ("small", 1, False), ("large", 0, True)]
    assert all(s.parent.span_id == root.context.span_id for s in attempts)
    ok = names["chat large"][0]
    assert ok.attributes["gen_ai.operation.name"] == "chat" and ok.attributes["gen_ai.provider.name"] == "a"
    assert ok.attributes["gen_ai.usage.input_tokens"] == 10 and ok.attributes["gen_ai.response.model"] == "large"
    assert names["chat small"][0].attributes["error.type"] == "server_error"
    attrs = root.attributes
    assert attrs["gen_ai.operation.name"] == "chat" and attrs["gen_ai.request.model"] == "auto"
    assert attrs["gen_ai.response.model"] == "large" and attrs["gen_ai.usage.output_tokens"] == 2
    assert attrs["llm_router.task"] == result.decision.classification.task and attrs["llm_router.cache"] == "miss"
    assert attrs["llm_router.cost_usd"] == pytest.approx(result.cost) and "llm_router.score" in attrs
    assert attrs["llm_router.fallbacks"] == 1
    everything = str([dict(s.attributes) for s in spans])
    assert "secret prompt text" not in everything and "from large" not in everything  # log_prompts is off


def test_cache_hit_is_visible_and_calls_nothing(router: Router, exporter: InMemorySpanExporter) -> None:
    tp.SCRIPTS["a"] = ["text:once"]
    router.route_and_execute("twice")
    exporter.clear()
    router.route_and_execute("twice")
    names = _by_name(exporter.get_finished_spans())
    assert names["llm_router.cache"][0].attributes["llm_router.cache"] == "hit"
    assert "chat small" not in names and names["chat auto"][0].attributes["llm_router.saved_cost_usd"] > 0


def test_log_prompts_puts_the_answer_on_the_span(
    write_policy: Callable[..., Path], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    r = Router(write_policy(POLICY + "telemetry: {log_prompts: true}\n"), tracer_provider=provider)
    try:
        tp.SCRIPTS["a"] = ["text:visible answer"]
        r.route_and_execute("visible question")
    finally:
        r.close()
    (root,) = _by_name(exporter.get_finished_spans())["chat auto"]
    assert root.attributes["gen_ai.output.messages"] == "visible answer"
    assert root.attributes["gen_ai.input.messages"] == "user: visible question"


def test_tracing_off_creates_no_span(write_policy: Callable[..., Path]) -> None:
    r = Router(write_policy(POLICY))
    try:
        assert not r.tracing.on and r.start_trace().trace_id is None
        tp.SCRIPTS["a"] = ["text:x"]
        assert r.route_and_execute("q").generated_response == "x"
    finally:
        r.close()


def test_gateway_continues_traceparent_and_logs_the_trace_id(
    write_policy: Callable[..., Path],
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    openai = pytest.importorskip("openai")
    pytest.importorskip("starlette")
    from _cache_helpers import Server
    from llm_router.gateway import create_app

    key = "sk-trace"
    policy = POLICY + f'gateway: {{keys: [{{id: tracer, key_sha256: "{hashlib.sha256(key.encode()).hexdigest()}"}}]}}\n'
    router = Router(write_policy(policy), tracer_provider=provider)
    server = Server(create_app(router, ledger_path=tmp_path / "l.sqlite3")).start()
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)
        tp.SCRIPTS["a"] = ["text:Traced| stream"]
        with caplog.at_level(logging.INFO, logger="llm_router.requests"):
            client.chat.completions.create(
                model="auto",
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
            )
            stream = client.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": "stream"}], stream=True
            )
            assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Traced stream"
    finally:
        server.stop()
    roots = [s for s in exporter.get_finished_spans() if s.name == "chat auto"]
    assert len(roots) == 2
    continued = next(s for s in roots if s.parent is not None)
    assert f"{continued.context.trace_id:032x}" == trace_id and f"{continued.parent.span_id:016x}" == parent_id
    assert continued.attributes["http.response.status_code"] == 200
    assert continued.attributes["llm_router.key_id"] == "tracer"
    streamed = next(s for s in roots if s.parent is None)
    attempts = [s for s in exporter.get_finished_spans() if s.name == "chat small"]
    assert any(a.parent.span_id == streamed.context.span_id for a in attempts)  # the stream's attempt
    lines = [r.request for r in caplog.records if r.name == "llm_router.requests"]
    assert lines[0]["trace_id"] == trace_id


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.received.append((self.path, self.headers.get("content-type", ""), body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_otlp_http_export_to_a_local_receiver(
    write_policy: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    from llm_router.tracing import sdk_provider
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Receiver.received.clear()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "router-under-test")
    provider = sdk_provider()
    try:
        r = Router(write_policy(POLICY), tracer_provider=provider)
        tp.SCRIPTS["a"] = ["text:exported"]
        r.route_and_execute("export me")
        r.close()
        assert provider.force_flush(10_000)
    finally:
        provider.shutdown()
        server.shutdown()
    assert _Receiver.received, "the OTLP exporter sent nothing"
    path, ctype, body = _Receiver.received[0]
    assert path == "/v1/traces" and ctype == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(body)
    resource = request.resource_spans[0]
    service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
    names = {s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans}
    assert service == "router-under-test"
    assert {"chat auto", "chat small", "llm_router.classify", "llm_router.cache"} <= names


def test_library_stream_is_one_trace_and_an_abandoned_attempt_ends_cancelled(
    router: Router, exporter: InMemorySpanExporter
) -> None:
    tp.SCRIPTS["a"] = ["text:one| two| three", "text:four| five"]
    assert "".join(c.text for c in router.stream("stream all")) == "one two three"
    names = _by_name(exporter.get_finished_spans())
    (root,) = names["chat auto"]
    assert names["chat small"][0].parent.span_id == root.context.span_id
    assert root.attributes["gen_ai.usage.output_tokens"] == 3 and root.status.is_ok
    exporter.clear()
    gen = router.stream("stream part")
    next(gen)
    gen.close()  # the consumer leaves after the first chunk
    names = _by_name(exporter.get_finished_spans())
    assert names["chat small"][0].attributes["error.type"] == "cancelled"
    assert names["chat auto"][0].attributes["error.type"] == "cancelled"


def test_decision_spans_off_keeps_the_phase_durations_on_the_request_span(
    write_policy: Callable[..., Path], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    r = Router(write_policy(POLICY + "telemetry: {decision_spans: false}\n"), tracer_provider=provider)
    try:
        tp.SCRIPTS["a"] = ["text:x"]
        r.route_and_execute("q")
    finally:
        r.close()
    names = _by_name(exporter.get_finished_spans())
    assert "llm_router.classify" not in names and "llm_router.score" not in names
    attrs = names["chat auto"][0].attributes
    assert attrs["llm_router.classify_ms"] >= 0 and attrs["llm_router.score_ms"] >= 0
    assert "chat small" in names  # attempts are still spans
