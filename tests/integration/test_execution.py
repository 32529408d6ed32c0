"""Execution through a provider plugin installed as a distribution (the test plugin's scripted provider):
fallback, retries, timeouts, post-processing, streaming, events, costs, and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from llm_router import NoCandidatesError, Router
from llm_router.cli import build_app
from llm_router.errors import AuthenticationError, RateLimitError, ServerError
from llm_router_test_plugin import plugin as tp
from typer.testing import CliRunner

POLICY = """
providers:
  a: {type: scripted, models: [small, large], price_in: 1, price_out: 2}
  b: {type: scripted, models: [only], price_in: 5, price_out: 5}
preferences: {cost: 1}
fallback: {retries: 1, backoff_ms: 1, max_backoff_ms: 5, max_models: 3, timeout_s: 0.5}
"""


@pytest.fixture
def router(write_policy: Callable[[str], Path]) -> Router:
    r = Router(write_policy(POLICY))
    yield r
    r.close()


def test_ranking_uses_provider_models(router: Router) -> None:
    assert [c.model.id for c in router.route("hello").ranking] == ["a/small", "a/large", "b/only"]


def test_success_reports_model_usage_cost_and_events(router: Router) -> None:
    tp.SCRIPTS["a"] = ["text:hello there"]
    result = router.route_and_execute("hello", max_tokens=50, temperature=0.2)
    assert result.generated_response == "hello there"
    assert (result.selected_model.provider, result.selected_model.model) == ("a", "small")
    assert result.usage.input_tokens == 10 and result.usage.output_tokens == 2
    assert result.cost == pytest.approx((10 * 1 + 2 * 2) / 1e6)
    assert result.estimated_cost > 0 and result.routing_time_ms > 0 and 0 <= result.confidence <= 1
    assert [a.outcome for a in result.attempts] == ["ok"]
    sent = tp.CALLS[0][1]
    assert (sent.model, sent.max_tokens, sent.temperature) == ("small", 50, 0.2)
    hooks = [h for h, _ in tp.EVENTS]
    assert hooks == ["on_decision", "on_result"]


def test_retry_on_rate_limit_then_success(router: Router) -> None:
    tp.SCRIPTS["a"] = ["error:rate_limit", "text:ok"]
    result = router.route_and_execute("hello")
    assert [(a.model_id, a.outcome, a.error_kind, a.retry) for a in result.attempts] == [
        ("a/small", "error", "rate_limit", 0),
        ("a/small", "ok", None, 1),
    ]
    assert result.fallbacks == 0


def test_fallback_to_next_candidate_after_retries(router: Router) -> None:
    tp.SCRIPTS["a"] = ["error:server_error", "error:server_error", "text:from large"]
    result = router.route_and_execute("hello")
    assert result.selected_model.id == "a/large"
    assert [a.model_id for a in result.attempts] == ["a/small", "a/small", "a/large"]
    assert result.fallbacks == 1


def test_non_retryable_error_moves_on_without_retry(router: Router) -> None:
    tp.SCRIPTS["a"] = ["error:authentication"]
    tp.SCRIPTS["b"] = ["text:from b"]
    result = router.route_and_execute("hello")
    assert result.selected_model.id == "b/only"
    assert [(a.model_id, a.error_kind) for a in result.attempts] == [
        ("a/small", "authentication"),
        ("a/large", "authentication"),
        ("b/only", None),
    ]


def test_all_candidates_fail_raises_the_providers_error(router: Router) -> None:
    tp.SCRIPTS["a"] = ["error:server_error"]
    tp.SCRIPTS["b"] = ["error:rate_limit"]
    with pytest.raises(RateLimitError) as info:
        router.route_and_execute("hello")
    err = info.value
    assert err.provider == "b" and err.model == "only" and err.request_id == "req_test"
    assert len(err.attempts) == 6  # type: ignore[attr-defined]
    assert [h for h, _ in tp.EVENTS][-1] == "on_error"


def test_timeout_is_a_retryable_error(router: Router) -> None:
    tp.SCRIPTS["a"] = ["stall:5", "text:fast"]
    result = router.route_and_execute("hello")
    assert result.attempts[0].error_kind == "timeout"
    assert result.generated_response == "fast"


def test_plugin_bug_is_contained(router: Router) -> None:
    tp.SCRIPTS["a"] = ["crash:"]
    tp.SCRIPTS["b"] = ["text:b answered"]
    result = router.route_and_execute("hello")
    assert result.generated_response == "b answered"
    assert "provider plugin raised RuntimeError" in (result.attempts[0].error or "")
    assert [a.model_id for a in result.attempts] == ["a/small", "a/large", "b/only"]


def test_missing_key_rejects_with_the_variable_name(
    write_policy: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCRIPTED_KEY", raising=False)
    path = write_policy(
        POLICY.replace("price_in: 5, price_out: 5}", "price_in: 5, price_out: 5, api_key_env: SCRIPTED_KEY}")
    )
    router = Router(path)
    tp.SCRIPTS["a"] = ["error:server_error"]
    with pytest.raises(ServerError):
        router.route_and_execute("hello")
    decision = router.route("hello")  # decisions alone do not need keys
    assert decision.ranking[-1].model.id == "b/only"
    tp.SCRIPTS["a"] = ["text:a"]
    result = router.route_and_execute("hello")
    assert result.selected_model.id == "a/small"
    with pytest.raises(NoCandidatesError) as info:
        router.route_and_execute("hello", constraints={"allowed_providers": ["b"]})
    assert "set SCRIPTED_KEY" in str(info.value)


def test_json_schema_postprocessor_falls_back_on_invalid_json(write_policy: Callable[[str], Path]) -> None:
    router = Router(write_policy(POLICY + "postprocess:\n  - json_schema: {}\n"))
    tp.SCRIPTS["a"] = ["text:not json", 'text:{"n": "x"}']
    tp.SCRIPTS["b"] = ['text:{"n": 3}']
    fmt = {
        "type": "json_schema",
        "json_schema": {
            "name": "n",
            "schema": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
        },
    }
    result = router.route_and_execute("give me json", response_format=fmt)
    assert result.generated_response == '{"n": 3}'
    assert [a.error_kind for a in result.attempts] == ["postprocess", "postprocess", None]
    assert "invalid JSON" in (result.attempts[0].error or "")
    assert "does not match the schema at n" in (result.attempts[1].error or "")


def test_redact_postprocessor(write_policy: Callable[[str], Path]) -> None:
    router = Router(write_policy(POLICY + "postprocess: [redact]\n"))
    tp.SCRIPTS["a"] = ["text:mail bob@example.com now"]
    assert router.route_and_execute("hi").generated_response == "mail [REDACTED] now"


def test_feedback_is_broadcast(router: Router) -> None:
    fb = router.feedback({"request_id": "r1", "rating": 0.9})
    assert [("on_feedback", fb)] == tp.EVENTS


def test_async_execute_and_stream(router: Router) -> None:
    async def main() -> None:
        tp.SCRIPTS["a"] = ["text:async"]
        result = await router.aroute_and_execute("hello")
        assert result.generated_response == "async"
        tp.SCRIPTS["a"] = ["error:server_error", "error:server_error", "stream:Hel|lo| world"]
        stream = await router.astream("hello")
        pieces = [chunk.text async for chunk in stream]
        assert "".join(pieces) == "Hello world"
        assert stream.result is not None
        assert stream.result.selected_model.id == "a/large"
        assert stream.result.usage.output_tokens == 3
        assert stream.result.cost == pytest.approx((10 * 2 + 3 * 4) / 1e6)

    anyio.run(main)


def test_stream_failure_after_text_is_raised_not_retried(router: Router) -> None:
    async def main() -> None:
        tp.SCRIPTS["a"] = ["streamfail:par|tial", "stream:never"]
        stream = await router.astream("hello")
        got = []
        with pytest.raises(ServerError, match="stream broke"):
            async for chunk in stream:
                got.append(chunk.text)
        assert got == ["par", "tial"]

    anyio.run(main)


def test_sync_stream(router: Router) -> None:
    tp.SCRIPTS["a"] = ["stream:a|b"]
    gen = router.stream("hello")
    chunks = []
    while True:
        try:
            chunks.append(next(gen).text)
        except StopIteration as stop:
            result = stop.value
            break
    assert "".join(chunks) == "ab" and result.selected_model.id == "a/small"


def test_cli_run(write_policy: Callable[[str], Path]) -> None:
    path = write_policy(POLICY)
    tp.SCRIPTS["a"] = ["text:cli answer"]
    runner, cli = CliRunner(), build_app()
    result = runner.invoke(cli, ["run", "hello", "--policy", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["text"] == "cli answer" and data["model"] == "a/small" and data["version"] == 1
    tp.SCRIPTS["a"] = ["error:authentication"]
    tp.SCRIPTS["b"] = ["error:authentication"]
    failed = runner.invoke(cli, ["run", "hello", "--policy", str(path)])
    assert failed.exit_code == 1
    assert "every candidate failed" in failed.stderr and "authentication" in failed.stderr


def test_auth_error_class_is_not_retryable() -> None:
    assert not AuthenticationError.retryable and RateLimitError.retryable


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["run", "-"], b"hello \xc3\x28", "the prompt on stdin is not UTF-8: byte 0xc3 at offset 6"),
        (["run", "   "], None, "PROMPT is only whitespace"),
        (["run", "hello", "--prefer", "cost=inf"], None, "must be a finite number"),
    ],
)
def test_cli_run_refuses_bad_input_before_any_call(
    write_policy: Callable[[str], Path], args: list[str], stdin: bytes | None, message: str
) -> None:
    path = write_policy(POLICY)
    result = CliRunner().invoke(build_app(), [*args, "--policy", str(path)], input=stdin)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert tp.CALLS == []  # no candidate was tried
