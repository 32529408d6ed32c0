"""The command line: output, --json stability, exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from llm_router.cli import build_app
from typer.testing import CliRunner

runner = CliRunner()
PROMPT = "Write a Python function to calculate fibonacci numbers"


@pytest.fixture(autouse=True)
def _no_third_party_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_ROUTER_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture
def app() -> typer.Typer:
    """A command line of this test's own (plugin autoload is off: the core's commands only)."""
    return build_app()


def test_route_prints_a_table(app: typer.Typer) -> None:
    result = runner.invoke(app, ["route", PROMPT])
    assert result.exit_code == 0, result.output
    assert "task code" in result.stdout
    assert "selected" in result.stdout and "ranking" in result.stdout


def test_route_json_is_stable(app: typer.Typer) -> None:
    result = runner.invoke(
        app,
        [
            "route",
            PROMPT,
            "--json",
            "--prefer",
            "cost=1",
            "--prefer",
            "quality=0",
            "--prefer",
            "latency=0",
            "--max-latency-ms",
            "20000",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data) == [
        "version",
        "request_id",
        "selected",
        "classification",
        "route",
        "weights",
        "input_tokens",
        "expected_output_tokens",
        "routing_time_ms",
        "ranking",
        "rejected",
    ]
    assert data["version"] == 1
    assert data["weights"] == {"cost": 1.0}
    assert data["selected"] == data["ranking"][0]["model"]
    assert set(data["ranking"][0]) == {"model", "score", "breakdown", "estimated_cost_usd", "estimated_latency_ms"}
    assert {"model_id", "constraint", "reason"} == set(data["rejected"][0])
    assert data["classification"]["task"] == "code"


def test_route_reads_stdin(app: typer.Typer) -> None:
    result = runner.invoke(app, ["route", "-", "--json"], input="Translate 'hello' into Spanish")
    assert json.loads(result.stdout)["classification"]["task"] == "translation"


def test_bad_prefer_is_exit_2(app: typer.Typer) -> None:
    result = runner.invoke(app, ["route", PROMPT, "--prefer", "cost"])
    assert result.exit_code == 2
    assert "NAME=WEIGHT" in result.stderr


def test_no_candidates_is_exit_3_and_lists_reasons(app: typer.Typer) -> None:
    result = runner.invoke(app, ["route", PROMPT, "--max-cost-per-1k", "0"])
    assert result.exit_code == 3
    assert "every candidate was rejected" in result.stderr
    assert "max_cost_per_1k_tokens" in result.stderr


def test_invalid_policy_is_exit_2_with_position(app: typer.Typer, write_policy: Callable[[str], Path]) -> None:
    path = write_policy("version: 1\nfallback:\n  retries: many\n")
    result = runner.invoke(app, ["route", PROMPT, "--policy", str(path)])
    assert result.exit_code == 2
    assert f"{path}:3:3: fallback.retries" in result.stderr


def test_policy_validate(app: typer.Typer, write_policy: Callable[[str], Path]) -> None:
    good = write_policy("routes:\n  - when: {task: code}\n    models: ['anthropic/*']\n")
    ok = runner.invoke(app, ["policy", "validate", str(good)])
    assert ok.exit_code == 0 and "valid" in ok.stdout
    bad = write_policy("classify: [rulez]\n", name="bad.yaml")
    res = runner.invoke(app, ["policy", "validate", str(bad), "--json"])
    assert res.exit_code == 2
    problem = json.loads(res.stdout)["problems"][0]
    assert (problem["line"], problem["column"], problem["field"]) == (1, 12, "classify[0]")


def test_policy_schema_and_show(app: typer.Typer) -> None:
    schema = json.loads(runner.invoke(app, ["policy", "schema"]).stdout)
    assert schema["title"] == "llm-router routing policy"
    assert "rules" in json.dumps(schema["properties"]["classify"])
    shown = runner.invoke(app, ["policy", "show"]).stdout
    assert "providers:" in shown and "routes:" in shown


def test_models_json(app: typer.Typer) -> None:
    data = json.loads(runner.invoke(app, ["models", "--json"]).stdout)
    assert data["version"] == 1 and len(data["models"]) >= 20
    assert {"id", "price", "context_window", "capabilities", "quality"} <= set(data["models"][0])


def test_run_without_provider_plugins_says_what_to_install(app: typer.Typer) -> None:
    result = runner.invoke(app, ["run", "hello"])
    assert result.exit_code == 3
    assert "pip install llm-router-provider-" in result.stderr
