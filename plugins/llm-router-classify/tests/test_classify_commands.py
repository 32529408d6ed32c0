"""The train / eval / calibrate commands, through the real CLI app and the register_commands hook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from llm_router.cli import build_app
from typer.testing import CliRunner

DATA = Path(__file__).parent / "data"
TRAIN, TEST, PRODUCT = DATA / "support-train.jsonl", DATA / "support-test.jsonl", DATA / "product-dev.jsonl"
runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    """This module's own command line, with the commands the plugin adds through its register_commands hook."""
    return build_app()


def invoke(app: typer.Typer, *args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_train_writes_an_artifact_the_learned_stage_loads(app: typer.Typer, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    out = invoke(app, "train", "classifier", "--data", str(TRAIN), "--dev", str(TEST), "--out", str(tmp_path / "sup"))
    assert out["labels"] == ["billing", "bug_report", "feature_request"]
    assert out["n_train"] == 18
    assert (tmp_path / "sup.json").exists()
    assert (tmp_path / "sup.npz").exists()
    header = json.loads((tmp_path / "sup.json").read_text())
    assert header["meta"]["data"][0]["file"] == "support-train.jsonl"
    assert header["temperature"] == out["temperature"]
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "taxonomy:\n  replace: true\n  tasks: {billing: {}, bug_report: {}, feature_request: {}}\n"
        "classify:\n  - learned: {artifact: sup}\n"
    )
    result = invoke(app, "eval", "classify", "--data", str(TEST), "--policy", str(policy))
    assert result["accuracy"] >= 7 / 9
    assert result["decided_by"] == {"learned": 1.0}


def test_eval_with_a_few_examples_per_label_for_a_custom_label_set(app: typer.Typer) -> None:
    pytest.importorskip("sklearn")
    result = invoke(app, "eval", "classify", "--train", str(TRAIN), "--data", str(TEST))
    assert result["n"] == 9
    assert result["accuracy"] >= 7 / 9
    assert set(result["per_label"]) == {"billing", "bug_report", "feature_request"}
    assert result["confusion"]["labels"] == ["billing", "bug_report", "feature_request"]
    assert result["latency_ms"]["p99"] >= result["latency_ms"]["p50"] > 0


def test_eval_of_the_builtin_model_reports_stages_and_human_output(app: typer.Typer) -> None:
    result = invoke(app, "eval", "classify", "--data", str(PRODUCT))
    assert result["accuracy"] >= 11 / 13
    assert 0 <= result["macro_f1"] <= 1
    text = runner.invoke(app, ["eval", "classify", "--data", str(PRODUCT)])
    assert text.exit_code == 0
    assert "confusion matrix" in text.stdout
    assert "macro-F1" in text.stdout


def test_eval_offline_leaves_out_the_llm_stage(app: typer.Typer) -> None:
    pytest.importorskip("llm_router_openai")
    policy = Path(__file__).parents[3] / "examples" / "policies" / "hybrid_classify.yaml"
    result = invoke(app, "eval", "classify", "--data", str(PRODUCT), "--policy", str(policy), "--offline")
    assert set(result["decided_by"]) <= {"rules", "learned", "rules (below threshold)", "learned (below threshold)"}


def test_calibrate_prints_a_policy_snippet(app: typer.Typer) -> None:
    result = invoke(app, "calibrate", "classifier", "--data", str(PRODUCT), "--target-llm-share", "0.3")
    assert [s["stage"] for s in result["stages"]] == ["rules", "learned"]
    assert result["stages"][0]["threshold"] == 0.9
    assert result["left_to_last_stage"] <= 0.3 + 1e-9
    assert result["policy"].startswith('classify:\n  - rules: {"threshold": 0.9}\n  - learned: {"threshold": ')
    assert "llm" in result["policy"]
    acc = invoke(app, "calibrate", "classifier", "--data", str(PRODUCT), "--target-accuracy", "1.0")
    assert acc["stages"][0]["accuracy"] in (None, 1.0)


def test_bad_input_is_exit_code_2(app: typer.Typer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n')
    result = runner.invoke(app, ["eval", "classify", "--data", str(bad)])
    assert result.exit_code == 2
    assert "bad.jsonl:1" in result.output
    both = runner.invoke(
        app,
        ["calibrate", "classifier", "--data", str(PRODUCT), "--target-accuracy", "0.9", "--target-llm-share", "0.2"],
    )
    assert both.exit_code == 2
