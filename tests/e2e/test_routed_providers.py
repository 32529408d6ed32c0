"""End to end: the Router and the CLI against the fake upstreams, through the real SDKs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes import FakeAnthropic, FakeCohere, FakeOpenAI
from llm_router import Router
from llm_router.errors import ServerError

pytest.importorskip("llm_router_openai")
pytest.importorskip("llm_router_anthropic")
pytest.importorskip("llm_router_cohere")

pytestmark = pytest.mark.anyio
KEY = "sk-e2e-secret-key-0000"


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, Any]]:
    with FakeOpenAI() as o, FakeAnthropic() as a, FakeCohere() as c, FakeOpenAI() as local:
        yield {"openai": o, "anthropic": a, "cohere": c, "local": local}


@pytest.fixture
def policy(fakes: dict[str, Any]) -> dict[str, Any]:
    for fake in fakes.values():
        fake.reset()
    return {
        "providers": {
            "openai": {"type": "openai", "base_url": fakes["openai"].base_url, "api_key": KEY},
            "anthropic": {"type": "anthropic", "base_url": fakes["anthropic"].base_url, "api_key": KEY},
            "cohere": {"type": "cohere", "base_url": fakes["cohere"].base_url, "api_key": KEY},
            "local": {
                "type": "openai_compatible",
                "base_url": fakes["local"].base_url,
                "models": [
                    {
                        "model": "gemma-3-270m",
                        "context_window": 32768,
                        "price": {"input_per_mtok": 0.5, "output_per_mtok": 1.0},
                    }
                ],
            },
        },
        "classify": [{"rules": {"threshold": 0.0}}],
        "routes": [
            {
                "models": [
                    "anthropic/claude-haiku-4-5",
                    "openai/gpt-4o-mini",
                    "cohere/command-r",
                    "local/gemma-3-270m",
                ]
            }
        ],
        "fallback": {"retries": 0, "backoff_ms": 1, "max_models": 4},
    }


def _order(policy: dict[str, Any], *ids: str) -> dict[str, Any]:
    return {**policy, "routes": [{"models": list(ids)}]}


@pytest.mark.parametrize(
    ("model_id", "fake"),
    [
        ("openai/gpt-4o-mini", "openai"),
        ("anthropic/claude-haiku-4-5", "anthropic"),
        ("cohere/command-r", "cohere"),
        ("local/gemma-3-270m", "local"),
    ],
)
async def test_route_and_execute_each_provider(
    policy: dict[str, Any], fakes: dict[str, Any], model_id: str, fake: str
) -> None:
    async with Router(_order(policy, model_id)) as router:
        fakes[fake].queue_text("routed answer", usage=(100, 20))
        result = await router.aroute_and_execute("Hello there", max_tokens=50)
        assert result.selected_model.id == model_id
        assert result.response.text == "routed answer"
        assert (result.usage.input_tokens, result.usage.output_tokens) == (100, 20)
        model = router.catalogue.get(model_id)
        assert model is not None
        assert result.cost == pytest.approx((100 * model.price.input_per_mtok + 20 * model.price.output_per_mtok) / 1e6)
        assert len(fakes[fake].requests) == 1

        fakes[fake].queue_text("streamed routed answer", usage=(40, 8))
        routed = await router.astream("Hello again", max_tokens=50)
        text = "".join([chunk.text async for chunk in routed])
        assert text == "streamed routed answer"
        assert routed.result is not None
        assert routed.result.usage.output_tokens == 8
        assert routed.result.cost == pytest.approx(
            (40 * model.price.input_per_mtok + 8 * model.price.output_per_mtok) / 1e6
        )


async def test_fallback_from_a_failing_provider(policy: dict[str, Any], fakes: dict[str, Any]) -> None:
    async with Router(_order(policy, "anthropic/claude-haiku-4-5", "openai/gpt-4o-mini")) as router:
        fakes["anthropic"].queue_error("server")
        fakes["openai"].queue_text("from the fallback")
        result = await router.aroute_and_execute("Hello")
        assert result.response.text == "from the fallback"
        assert result.selected_model.id == "openai/gpt-4o-mini"
        assert [a.outcome for a in result.attempts] == ["error", "ok"]
        assert result.attempts[0].error_kind == "server_error"


async def test_streaming_fallback_before_any_text(policy: dict[str, Any], fakes: dict[str, Any]) -> None:
    async with Router(_order(policy, "anthropic/claude-haiku-4-5", "cohere/command-r")) as router:
        fakes["anthropic"].queue_error("overloaded")
        fakes["cohere"].queue_text("streamed by cohere")
        routed = await router.astream("Hello")
        assert "".join([c.text async for c in routed]) == "streamed by cohere"
        assert routed.result is not None
        assert routed.result.selected_model.id == "cohere/command-r"


async def test_the_real_error_when_every_candidate_fails(policy: dict[str, Any], fakes: dict[str, Any]) -> None:
    async with Router(_order(policy, "anthropic/claude-haiku-4-5", "openai/gpt-4o-mini")) as router:
        fakes["anthropic"].queue_error("overloaded")
        fakes["openai"].queue_error("server")
        with pytest.raises(ServerError) as info:
            await router.aroute_and_execute("Hello")
        assert info.value.provider == "openai"
        assert info.value.status_code == 500
        assert KEY not in str(info.value)


async def test_providers_without_keys_are_skipped_with_the_reason(
    policy: dict[str, Any], fakes: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    del policy["providers"]["anthropic"]["api_key"]
    async with Router(_order(policy, "anthropic/claude-haiku-4-5", "openai/gpt-4o-mini")) as router:
        result = await router.aroute_and_execute("Hello")
        assert result.selected_model.id == "openai/gpt-4o-mini"
        assert not fakes["anthropic"].requests
        reasons = {r.model_id: r.reason for r in result.decision.rejected}
        assert "ANTHROPIC_API_KEY" in reasons["anthropic/claude-haiku-4-5"]


def _cli(policy: dict[str, Any], tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return subprocess.run(
        [sys.executable, "-c", "from llm_router.cli import main; main()", "run", "-p", str(path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_run_and_stream(policy: dict[str, Any], fakes: dict[str, Any], tmp_path: Path) -> None:
    fakes["cohere"].queue_text("cli answer", usage=(10, 3))
    done = _cli(_order(policy, "cohere/command-r"), tmp_path, "--json", "Hello")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert "cli answer" in json.dumps(out)
    fakes["anthropic"].queue_text("cli streamed answer")
    done = _cli(_order(policy, "anthropic/claude-haiku-4-5"), tmp_path, "--stream", "Hello")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "cli streamed answer"


def test_cli_reports_the_provider_error(policy: dict[str, Any], fakes: dict[str, Any], tmp_path: Path) -> None:
    fakes["anthropic"].queue_error("auth")
    done = _cli(_order(policy, "anthropic/claude-haiku-4-5"), tmp_path, "Hello")
    assert done.returncode == 1
    assert "authentication" in done.stderr
    assert "ANTHROPIC_API_KEY" in done.stderr
    assert KEY not in done.stderr + done.stdout
