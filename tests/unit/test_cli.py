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
        "skipped",
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


# ------------------------------------------------------------------------------------------------
# bad input: exit 2 with a message naming the problem, before anything is routed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--port", "99999"], "'--port'"),
        (["serve", "--port", "-1"], "'--port'"),
        (["serve", "--workers", "0"], "'--workers'"),
        (["route", PROMPT, "--top", "-1"], "'--top'"),
        (["route", PROMPT, "--top", "0"], "'--top'"),
        (["run", PROMPT, "--max-tokens", "0"], "'--max-tokens'"),
    ],
)
def test_out_of_range_options_are_exit_2(app: typer.Typer, args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Invalid value" in result.stderr


@pytest.mark.parametrize(
    ("prefer", "message"),
    [
        ("cost=inf", "--prefer 'cost=inf': the weight must be a finite number >= 0"),
        ("cost=nan", "--prefer 'cost=nan': the weight must be a finite number >= 0"),
        ("cost=-inf", "--prefer 'cost=-inf': the weight must be a finite number >= 0"),
        ("=1", "--prefer takes NAME=WEIGHT"),
        ("[/x]=1e999", "--prefer '[/x]=1e999': the weight"),  # shown as typed, not read as Rich markup
    ],
)
def test_non_finite_weights_are_exit_2(app: typer.Typer, prefer: str, message: str) -> None:
    result = runner.invoke(app, ["route", PROMPT, "--prefer", prefer])
    assert result.exit_code == 2, result.output
    assert message in result.stderr


@pytest.mark.parametrize("option", ["--max-latency-ms", "--max-cost-per-1k"])
def test_non_finite_limits_are_exit_2(app: typer.Typer, option: str) -> None:
    result = runner.invoke(app, ["route", PROMPT, option, "inf"])
    assert result.exit_code == 2, result.output
    assert f"{option} must be a finite number, got inf" in result.stderr


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["route", ""], None, "PROMPT is empty"),
        (["route", " \n\t "], None, "PROMPT is only whitespace"),
        (["run", "   "], None, "PROMPT is only whitespace"),
        (["route", "-"], "", "the prompt on stdin is empty"),
        (["route", "-"], "  \n", "the prompt on stdin is only whitespace"),
    ],
)
def test_blank_prompts_are_exit_2(app: typer.Typer, args: list[str], stdin: str | None, message: str) -> None:
    result = runner.invoke(app, args, input=stdin)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_invalid_utf8_is_exit_2(app: typer.Typer) -> None:
    piped = runner.invoke(app, ["route", "-"], input=b"Translate \xff\xfe this")
    assert piped.exit_code == 2, piped.output
    assert "the prompt on stdin is not UTF-8: byte 0xff at offset 10" in piped.stderr
    # a command-line argument's bytes that are not UTF-8 reach Python as lone surrogates (0xff -> U+DCFF)
    argv = runner.invoke(app, ["route", "ab\udcffc"])
    assert argv.exit_code == 2, argv.output
    assert "PROMPT is not UTF-8: byte 0xff at character 2" in argv.stderr
    system = runner.invoke(app, ["run", "hello", "--system", "\udcc3"])
    assert system.exit_code == 2 and "--system is not UTF-8: byte 0xc3 at character 0" in system.stderr
    assert "Traceback" not in piped.output + argv.output + system.output


def test_serve_help_names_the_install_commands(app: typer.Typer) -> None:
    text = " ".join(runner.invoke(app, ["serve", "--help"]).stdout.split())  # Rich wraps the help text
    assert "pip install './core[gateway-fast]'" in text
    assert "pip install 'llm-router[gateway]'" in text
