"""``eval online``: a routing file replayed as bandit feedback, on the small synthetic data of conftest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from llm_router.cli import build_app
from typer.testing import CliRunner

from conftest import make_rows, write

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    return build_app()


@pytest.fixture(scope="module")
def stream_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("online")
    return write(d / "stream.jsonl", make_rows(450, 21))


def run(app: typer.Typer, tmp: Path, *args: str) -> dict[str, Any]:
    out = tmp / "report.json"
    result = runner.invoke(app, ["eval", "online", "--out", str(out), "--points", "9", "--seed", "1", *args])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def test_learning_from_bandit_feedback_beats_the_static_prior(
    app: typer.Typer, stream_file: Path, tmp_path: Path
) -> None:
    rep = run(app, tmp_path, "--data", str(stream_file), "--explore", "0.1")
    s, f = rep["stream"], rep["frozen"]
    assert s["n"] == 360
    assert f["n"] == 90
    # with equal priors and no cost weight the static router always picks the cheapest model (right on chat
    # only); the learner finds the big model for math and code
    assert s["online"]["mean_quality"] > s["static_priors"]["mean_quality"] + 0.2
    assert s["exploration_cost"] < 0
    assert 0 <= s["online"]["regret"] < s["static_priors"]["regret"]
    assert s["oracle"]["mean_quality"] >= s["online"]["mean_quality"]
    assert f["online"]["AIQ"] > f["static_priors"]["AIQ"] + 0.1
    assert "AIQ" in f["offline_full_information"]
    curve = s["online"]["quality_curve"]
    assert curve["step"][-1] == 360
    assert len(curve["mean"]) == len(curve["step"])


def test_pacing_a_replayed_day(app: typer.Typer, stream_file: Path, tmp_path: Path) -> None:
    free = run(app, tmp_path, "--data", str(stream_file), "--no-offline")
    spent = free["stream"]["online"]["mean_cost"] * free["stream"]["n"]
    budget = spent / 2
    rep = run(app, tmp_path, "--data", str(stream_file), "--no-offline", "--pace", str(budget))
    pace = rep["pace"]
    assert pace["budget_usd_per_day"] == pytest.approx(budget)
    assert pace["spent_usd"] == pytest.approx(budget, rel=0.1)
    assert len(pace["spend"]) == len(pace["target"]) == len(pace["t"])
    assert max(pace["weight"]) > min(pace["weight"])  # the cost weight moved during the day


def test_start_from_an_artifact(app: typer.Typer, stream_file: Path, artifact: Path, tmp_path: Path) -> None:
    rep = run(app, tmp_path, "--data", str(stream_file), "--no-offline", "--start-from", str(artifact))
    assert rep["settings"]["artifact"] == str(artifact.resolve())
    # the artifact already knows the data: the static router starting from it is far above equal priors
    assert rep["stream"]["static_priors"]["mean_quality"] > 0.75


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algorithm", "egreedy"], "--algorithm"),
        (["--holdout", "1.5"], "--holdout"),
        (["--explore", "2"], "--explore"),
        (["--pace", "0"], "--pace"),
        # at cost weight 1 the learner has no weight, is not consulted and would be fed feedback it never saw
        (["--cost-weight", "1"], "--cost-weight must be in [0, 1)"),
    ],
)
def test_bad_options(app: typer.Typer, stream_file: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["eval", "online", "--data", str(stream_file), "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2
    assert message in result.output
