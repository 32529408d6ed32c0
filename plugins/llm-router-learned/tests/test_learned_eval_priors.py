"""``eval route --priors / --fallback / --strong --weak / --task``: evaluating models the artifact does not know."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from llm_router.cli import app
from llm_router.taxonomy import DEFAULT_TASKS
from llm_router_learned.data import load_rows, mean_scores
from llm_router_learned.evaluation import Sweep, generated_policy
from typer.testing import CliRunner

from conftest import make_rows, write

runner = CliRunner()
RENAME = {"big": "strongx", "small": "weakx"}


@pytest.fixture(scope="module", autouse=True)
def _commands() -> None:
    from llm_router.cli import _add_plugin_commands

    if not any(g.name == "train" for g in app.registered_groups):  # the plugin's hook adds `train router` & co.
        _add_plugin_commands()


@pytest.fixture(scope="module")
def renamed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A strong/weak pair under names the session artifact (big, small, mid) does not know: ``ren-test``
    to evaluate, ``ren-priors`` (other rows) for the priors."""
    d = tmp_path_factory.mktemp("renamed")

    def rename(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for r in rows:
            r["scores"] = {RENAME[m]: q for m, q in r["scores"].items()}
            r["costs"] = {RENAME[m]: c for m, c in r["costs"].items()}
        return rows

    write(d / "ren-test.jsonl", rename(make_rows(90, 11, ("big", "small"))))
    write(d / "ren-priors.jsonl", rename(make_rows(150, 12, ("big", "small"))))
    (d / "ren.models.json").write_text(
        json.dumps(
            {
                "models": {
                    "strongx": {"input_per_mtok": 10, "output_per_mtok": 30},
                    "weakx": {"input_per_mtok": 0.5, "output_per_mtok": 0.5},
                },
                "strong": "strongx",
                "weak": "weakx",
            }
        ),
        encoding="utf-8",
    )
    return d


def _eval(*args: str) -> Any:
    return runner.invoke(app, ["eval", "route", "--points", "9", "--json", *args])


def _said(res: Any) -> str:
    """The command's messages with the console's line wrapping undone."""
    return " ".join(str(res.output).split())


def test_generated_policy_writes_priors_for_every_task(artifact: Path) -> None:
    prices = {m: {"input_per_mtok": 1.0, "output_per_mtok": 1.0} for m in ("big", "newx", "newy")}
    pol = generated_policy(artifact, ["big", "newx", "newy"], prices, {"newx": 0.7, "big": 0.5}, "difficulty")
    by_id = {m["id"]: m for m in pol["models"]}
    assert by_id["data/newx"]["quality"] == {t: 0.7 for t in DEFAULT_TASKS}
    assert by_id["data/big"]["quality"] == {t: 0.5 for t in DEFAULT_TASKS}
    assert "quality" not in by_id["data/newy"]  # no prior given: the catalogue has none
    assert pol["score"][0]["learned_quality"]["fallback"] == "difficulty"
    assert pol["score"][0]["learned_quality"]["models"] == {"big": "data/big"}
    assert "fallback" not in generated_policy(artifact, ["big"], prices)["score"][0]["learned_quality"]


def test_sweep_router_uses_the_priors(renamed: Path, artifact: Path) -> None:
    rows = load_rows([renamed / "ren-test.jsonl"])
    priors = mean_scores(load_rows([renamed / "ren-priors.jsonl"]))
    sweep = Sweep.build(rows, ["strongx", "weakx"], artifact, None, priors=priors, fallback="prior")
    assert sweep.unknown == ["strongx", "weakx"]
    for name in ("strongx", "weakx"):
        info = sweep.router.catalogue.get(f"data/{name}")
        assert info is not None
        for task in ("math", "chat", "code"):
            assert info.quality_for(task) == pytest.approx(priors[name])
    assert priors["strongx"] > priors["weakx"]


def test_eval_priors_refuses_the_data_file(renamed: Path, artifact: Path, tmp_path: Path) -> None:
    data = renamed / "ren-test.jsonl"
    out = str(tmp_path / "p.jsonl")
    same = _eval("--data", str(data), "--model", str(artifact), "--out", out, "--priors", str(data))
    assert same.exit_code == 2
    assert "is the --data file" in _said(same)
    # a copy of the evaluated rows under another name is refused too
    copy = write(tmp_path / "copy.jsonl", load_rows([data])[:10])
    shared = _eval("--data", str(data), "--model", str(artifact), "--out", out, "--priors", str(copy))
    assert shared.exit_code == 2
    assert "shares 10 rows" in _said(shared)


def test_eval_difficulty_fallback_routes_unknown_pair(renamed: Path, artifact: Path, tmp_path: Path) -> None:
    """The artifact knows neither model of the pair. With priors alone every prompt gets the same gap (a
    random router, APGR 0.5); with ``difficulty`` the predicted-hard prompts (math, code) go to the strong one."""
    base = ["--data", str(renamed / "ren-test.jsonl"), "--model", str(artifact), "--out", str(tmp_path / "p.jsonl")]
    priors = ["--priors", str(renamed / "ren-priors.jsonl")]
    reps = {}
    for fallback in ("prior", "mean", "difficulty"):
        res = _eval(*base, *priors, "--fallback", fallback)
        assert res.exit_code == 0, res.output
        reps[fallback] = json.loads(res.stdout)
    rep = reps["difficulty"]
    assert rep["pair"] == {"strong": "strongx", "weak": "weakx"}
    assert rep["fallback"] == "difficulty"
    assert rep["unknown_models"] == ["strongx", "weakx"]
    want = mean_scores(load_rows([renamed / "ren-priors.jsonl"]))
    assert rep["priors"]["quality"] == pytest.approx(want, abs=1e-6)
    assert rep["router"]["APGR"] > 0.65
    assert reps["prior"]["router"]["APGR"] == pytest.approx(0.5, abs=0.02)
    assert reps["mean"]["router"]["APGR"] == pytest.approx(0.5, abs=0.02)
    # without priors the unknown models get no catalogue prior: a warning, and no signal between them
    res = _eval(*base, "--fallback", "difficulty")
    assert res.exit_code == 0, res.output
    assert "no catalogue prior" in " ".join(res.stderr.split())


def test_eval_pair_and_task_restriction(data_dir: Path, artifact: Path, tmp_path: Path) -> None:
    res = _eval(
        "--data",
        str(data_dir / "synth-test.jsonl"),
        "--model",
        str(artifact),
        "--out",
        str(tmp_path / "p.jsonl"),
        "--strong",
        "big",
        "--weak",
        "small",
        "--task",
        "math",
        "--task",
        "code",
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["pair"] == {"strong": "big", "weak": "small"}
    assert rep["n"] == 40  # 60 rows, a third each of math, chat and code
    assert rep["models"] == ["big", "small"]
    assert rep["unknown_models"] == []
    bad = _eval("--data", str(data_dir / "synth-test.jsonl"), "--model", str(artifact), "--out", "x", "--strong", "big")
    assert bad.exit_code == 2
    nope = _eval(
        "--data", str(data_dir / "synth-test.jsonl"), "--model", str(artifact), "--out", "x", "--strong", "big",
        "--weak", "nope",
    )  # fmt: skip
    assert nope.exit_code == 2
    assert "'nope' is not a model" in _said(nope)


def test_eval_fallback_option_checks(data_dir: Path, artifact: Path, tmp_path: Path) -> None:
    args = ["--data", str(data_dir / "synth-test.jsonl"), "--model", str(artifact), "--out", str(tmp_path / "p")]
    assert _eval(*args, "--fallback", "nope").exit_code == 2
    pol = tmp_path / "policy.yaml"
    pol.write_text("version: 1\n")
    with_policy = _eval(*args, "--policy", str(pol), "--fallback", "difficulty")
    assert with_policy.exit_code == 2
    assert "set them in the policy" in _said(with_policy)


def test_calibrate_with_priors_and_difficulty_for_an_unknown_pair(renamed: Path, artifact: Path) -> None:
    base = ["calibrate", "router", "--data", str(renamed / "ren-test.jsonl"), "--model", str(artifact)]
    args = ["--priors", str(renamed / "ren-priors.jsonl"), "--fallback", "difficulty", "--target-strong-share", "0.3"]
    res = runner.invoke(app, [*base, *args, "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert abs(got["strong_share"] - 0.3) < 0.06
    assert "fallback: difficulty" in got["policy_snippet"]
    assert got["unknown_models"] == ["strongx", "weakx"]
    assert got["priors"] == pytest.approx(mean_scores(load_rows([renamed / "ren-priors.jsonl"])), abs=1e-6)
    same = runner.invoke(app, [*base, "--priors", str(renamed / "ren-test.jsonl"), "--target-strong-share", "0.3"])
    assert same.exit_code == 2
    assert "is the --data file" in _said(same)
    bad = runner.invoke(app, [*base, "--fallback", "nope", "--target-strong-share", "0.3"])
    assert bad.exit_code == 2
