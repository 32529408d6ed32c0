from __future__ import annotations

import json
from pathlib import Path

import pytest
from llm_router.cli import app
from typer.testing import CliRunner

runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def _commands() -> None:
    from llm_router.cli import _add_plugin_commands

    if not any(g.name == "train" for g in app.registered_groups):  # the plugin's hook adds `train router` & co.
        _add_plugin_commands()


def test_train_router(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "r.npz"
    hold = tmp_path / "hold.jsonl"
    res = runner.invoke(
        app,
        [
            "train",
            "router",
            "--data",
            str(data_dir / "synth-train.jsonl"),
            "--out",
            str(out),
            "--method",
            "knn_tfidf",
            "--holdout",
            "0.2",
            "--holdout-out",
            str(hold),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["train_rows"] == 120
    assert summary["holdout_rows"] == 30
    assert out.exists()
    assert len(hold.read_text().splitlines()) == 30


def test_train_router_bad_method(tmp_path: Path, data_dir: Path) -> None:
    res = runner.invoke(
        app,
        [
            "train",
            "router",
            "--data",
            str(data_dir / "synth-train.jsonl"),
            "--out",
            str(tmp_path / "x.npz"),
            "--method",
            "nope",
        ],
    )
    assert res.exit_code == 2


def test_eval_route_multi(tmp_path: Path, data_dir: Path, artifact: Path) -> None:
    pred = tmp_path / "pred.jsonl"
    res = runner.invoke(
        app,
        [
            "eval",
            "route",
            "--data",
            str(data_dir / "synth-test.jsonl"),
            "--model",
            str(artifact),
            "--train",
            str(data_dir / "synth-train.jsonl"),
            "--out",
            str(pred),
            "--points",
            "9",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert set(rep["single_models"]) == {"big", "small", "mid"}
    for key in ("router", "knn_tfidf", "oracle", "single_models_hull"):
        assert 0 <= rep[key]["AIQ"] <= 1
    assert rep["router"]["AIQ"] > rep["single_models_hull"]["AIQ"]
    lines = [json.loads(line) for line in pred.read_text().splitlines()]
    n_points = len(rep["router"]["points"])
    assert len(lines) == 60 * n_points
    assert set(lines[0]) == {"id", "operating_point", "model"}


def test_eval_route_pair_and_calibrate(tmp_path: Path, data_dir: Path) -> None:
    res = runner.invoke(
        app,
        [
            "eval",
            "route",
            "--data",
            str(data_dir / "pair-test.jsonl"),
            "--train",
            str(data_dir / "pair-train.jsonl"),
            "--out",
            str(tmp_path / "p.jsonl"),
            "--points",
            "9",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["pair"] == {"strong": "big", "weak": "small"}
    assert rep["random"]["APGR"] == pytest.approx(0.5)
    assert rep["router"]["APGR"] > 0.6
    assert rep["router"]["CPT50"] < 0.5
    model = tmp_path / "pair.npz"
    assert (
        runner.invoke(
            app, ["train", "router", "--data", str(data_dir / "pair-train.jsonl"), "--out", str(model), "--json"]
        ).exit_code
        == 0
    )
    cal = runner.invoke(
        app,
        [
            "calibrate",
            "router",
            "--data",
            str(data_dir / "pair-test.jsonl"),
            "--model",
            str(model),
            "--target-strong-share",
            "0.4",
            "--json",
        ],
    )
    assert cal.exit_code == 0, cal.output
    got = json.loads(cal.stdout)
    assert abs(got["strong_share"] - 0.4) < 0.05
    assert "learned_quality" in got["policy_snippet"]


def test_calibrate_budget(data_dir: Path, artifact: Path) -> None:
    res = runner.invoke(
        app,
        [
            "calibrate",
            "router",
            "--data",
            str(data_dir / "synth-test.jsonl"),
            "--model",
            str(artifact),
            "--budget-per-1k",
            "0.5",
            "--points",
            "9",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got["cost_per_1k"] <= 0.5
    too_low = runner.invoke(
        app,
        [
            "calibrate",
            "router",
            "--data",
            str(data_dir / "synth-test.jsonl"),
            "--model",
            str(artifact),
            "--budget-per-1k",
            "0.00001",
            "--points",
            "5",
        ],
    )
    assert too_low.exit_code == 2
    both = runner.invoke(
        app, ["calibrate", "router", "--data", str(data_dir / "synth-test.jsonl"), "--model", str(artifact)]
    )
    assert both.exit_code == 2


def test_eval_unknown_models_fall_back(tmp_path: Path, data_dir: Path) -> None:
    model = tmp_path / "pair.npz"
    assert (
        runner.invoke(
            app,
            [
                "train",
                "router",
                "--data",
                str(data_dir / "pair-train.jsonl"),
                "--out",
                str(model),
                "--method",
                "knn_tfidf",
                "--json",
            ],
        ).exit_code
        == 0
    )
    res = runner.invoke(
        app,
        [
            "eval",
            "route",
            "--data",
            str(data_dir / "synth-test.jsonl"),
            "--model",
            str(model),
            "--out",
            str(tmp_path / "p.jsonl"),
            "--points",
            "5",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output


def test_eval_route_with_own_policy(tmp_path: Path, data_dir: Path, artifact: Path) -> None:
    import yaml

    pol = {
        "version": 1,
        "models": [
            {
                "id": f"lab/{m}",
                "price": {"input_per_mtok": p, "output_per_mtok": p},
                "context_window": 100_000,
                "max_output_tokens": 4096,
            }
            for m, p in (("big", 10.0), ("small", 0.5), ("mid", 2.0))
        ],
        "score": [{"learned_quality": {"artifact": str(artifact)}}, "cost"],
        "preferences": {"learned_quality": 1.0, "cost": 0.0},
        "routes": [{"models": ["lab/*"]}],
    }
    file = tmp_path / "policy.yaml"
    file.write_text(yaml.safe_dump(pol))
    res = runner.invoke(
        app,
        [
            "eval",
            "route",
            "--data",
            str(data_dir / "synth-test.jsonl"),
            "--policy",
            str(file),
            "--out",
            str(tmp_path / "p.jsonl"),
            "--points",
            "5",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["router"]["AIQ"] > 0.5
    assert "knn_tfidf" not in rep  # no --train: no baseline
