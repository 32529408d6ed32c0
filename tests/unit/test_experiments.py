"""A/B experiments: sticky hash split, what a variant changes, the variant in the decision, policy errors;
``ab report`` on a synthetic ledger with a known effect."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from llm_router import PolicyError, Router
from llm_router.abtest import ab_report, ledger_rows
from llm_router.cli import build_app
from llm_router.experiments import bucket
from llm_router.gateway.ledger import Ledger, LedgerRow, record_feedback
from typer.testing import CliRunner

pytest.importorskip("llm_router_test_plugin")


def policy(**variants: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "providers": {"a": {"type": "scripted", "models": ["small", "large"], "price_in": 1, "price_out": 2}},
        "models": [{"id": "a/small", "quality": {"general": 0.6}}, {"id": "a/large", "quality": {"general": 0.9}}],
        "score": ["quality", "cost"],
        "preferences": {"quality": 0.9, "cost": 0.1},
        "experiments": [
            {"name": "thrift", "variants": variants or {"control": {}, "cheap": {"preferences": {"cost": 5}}}}
        ],
    }


def test_assignment_is_sticky_and_follows_the_shares() -> None:
    router = Router(policy(control={"share": 3}, cheap={"share": 1, "preferences": {"cost": 5}}))
    seen: dict[str, set[str | None]] = {}
    for user in range(400):
        for _ in range(2):
            d = router.route("hello there", metadata={"user": f"u{user}"})
            seen.setdefault(f"u{user}", set()).add(d.variant)
    assert all(len(v) == 1 for v in seen.values())  # sticky
    cheap = sum(v == {"thrift=cheap"} for v in seen.values())
    assert 60 <= cheap <= 140  # a quarter of 400, give or take the hash's noise
    assert bucket("thrift", "u1") == bucket("thrift", "u1") != bucket("other", "u1")


def test_a_variant_changes_the_decision_and_is_recorded() -> None:
    router = Router(policy())
    by_variant: dict[str, Any] = {}
    for user in range(40):
        d = router.route("hello there", metadata={"user": f"u{user}"})
        by_variant.setdefault(d.variant, d)
    control, cheap = by_variant["thrift=control"], by_variant["thrift=cheap"]
    assert control.selected.id == "a/large" and cheap.selected.id == "a/small"
    assert cheap.weights["cost"] > control.weights["cost"]
    assert cheap.to_json()["variant"] == "thrift=cheap"


def test_split_by_key_and_variant_routes() -> None:
    pol = policy(control={}, small_only={"routes": [{"models": ["a/small"]}]})
    pol["experiments"][0]["split_by"] = "key"
    router = Router(pol)
    d1 = router.route("hello there", metadata={"key_id": "alice", "user": "x"})
    d2 = router.route("hello there", metadata={"key_id": "alice", "user": "y"})
    assert d1.variant == d2.variant
    variants = {router.route("hi there", metadata={"key_id": f"k{i}"}).variant for i in range(30)}
    assert variants == {"thrift=control", "thrift=small_only"}
    for i in range(30):
        d = router.route("hi there", metadata={"key_id": f"k{i}"})
        if d.variant == "thrift=small_only":
            assert [c.id for c in d.ranking] == ["a/small"] and d.route == "variant routes[0]"


def test_a_variant_can_replace_the_classifier_cascade() -> None:
    router = Router(policy(control={}, kernel_first={"classify": ["kernel", "rules"]}))
    by_variant: dict[str, Any] = {}
    for user in range(40):
        d = router.route("What is the kernel of this linear map?", metadata={"user": f"u{user}"})
        by_variant.setdefault(d.variant, d)
        again = router.route("What is the kernel of this linear map?", metadata={"user": f"u{user}"})
        assert again.classification.method == d.classification.method  # the variant's cascade, every time
    control, kernel = by_variant["thrift=control"], by_variant["thrift=kernel_first"]
    assert kernel.classification.method == "kernel" and kernel.classification.task == "code"
    assert control.classification.method == "rules" and control.classification.task != "code"
    assert [s.name for s in router.stages] == ["rules"]  # the policy's own cascade is unchanged


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ({"only": {}}, "variants"),
        ({"a": {}, "b": {"preferences": {"speed": 1}}}, "experiments[0].variants.b.preferences.speed: no scorer"),
        ({"a": {}, "b": {"routes": [{"models": ["a/nope"]}]}}, "unknown model 'a/nope'"),
        ({"a": {}, "b": {"share": 0}}, "share"),
        ({"a": {}, "b": {"classify": ["rulez"]}}, "did you mean 'rules'"),
        ({"a": {}, "b": {"classify": []}}, "experiments[0].variants.b.classify: at least one classifier is needed"),
    ],
)
def test_bad_experiments_are_policy_errors(variants: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(message)):
        Router(policy(**variants))


# ------------------------------------------------------------------------------------------------
# ab report on a synthetic ledger


def synthetic_ledger(path: Path, n: int, seed: int = 7) -> Path:
    """control: cost ~ N(0.010, 0.003), rating ~ Bernoulli(0.80); thrifty: cost ~ N(0.007, 0.003), rating ~
    Bernoulli(0.70); both: errors 5 %, latency ~ lognormal (the same). Known effects: thrifty is cheaper, control
    rates better; no effect on errors or latency."""
    rng = random.Random(seed)
    ledger = Ledger(path)
    ledger.start()
    truth = {"control": (0.010, 0.80), "thrifty": (0.007, 0.70)}
    for i in range(2 * n):
        variant = "control" if i % 2 == 0 else "thrifty"
        cost, p = truth[variant]
        rid = f"r{i}"
        ledger.record(
            LedgerRow(
                request_id=rid,
                ts=1_700_000_000.0 + i,
                key_id="k",
                endpoint="chat",
                task="chat",
                model="a/small",
                input_tokens=10,
                output_tokens=10,
                estimated_cost_usd=cost,
                cost_usd=max(0.0, rng.gauss(cost, 0.003)),
                latency_ms=rng.lognormvariate(6, 0.5),
                outcome="error" if rng.random() < 0.05 else "ok",
                status=200,
                fallbacks=0,
                stream=False,
                variant=f"pricing={variant}",
            )
        )
    ledger.close()
    for i in range(2 * n):
        p = truth["control" if i % 2 == 0 else "thrifty"][1]
        if i % 3 != 2:  # two requests in three are rated
            record_feedback(path, f"r{i}", float(rng.random() < p), None)
    return path


def test_report_finds_the_known_effects_and_not_the_absent_ones(tmp_path: Path) -> None:
    rep = ab_report(ledger_rows(synthetic_ledger(tmp_path / "ledger.sqlite3", 1500)), control="control")
    assert rep["experiment"] == "pricing" and list(rep["variants"]) == ["control", "thrifty"]
    control, thrifty = rep["variants"]["control"], rep["variants"]["thrifty"]
    assert control["requests"] == thrifty["requests"] == 1500
    lo, hi = control["cost_per_request"]["ci95"]
    assert lo < 0.010 < hi
    lo, hi = thrifty["rating"]["ci95"]
    assert lo < 0.70 < hi
    verdicts = {v["measure"]: v for v in rep["verdicts"]["thrifty"]}
    assert verdicts["cost_per_request"]["verdict"] == "thrifty is better"
    assert verdicts["rating"]["verdict"] == "control is better"
    assert verdicts["error_rate"]["verdict"] == "not yet significant"
    assert verdicts["error_rate"]["more_requests_needed_per_variant"] is not None
    assert verdicts["latency_p50_ms"]["verdict"] == "not yet significant"


def test_a_small_sample_is_not_yet_significant_and_says_how_many_more(tmp_path: Path) -> None:
    rep = ab_report(ledger_rows(synthetic_ledger(tmp_path / "ledger.sqlite3", 40, seed=3)), control="control")
    rating = next(v for v in rep["verdicts"]["thrifty"] if v["measure"] == "rating")
    assert rating["verdict"] == "not yet significant"
    assert rating["more_requests_needed_per_variant"] > 40


def test_ab_report_command(tmp_path: Path) -> None:
    path = synthetic_ledger(tmp_path / "ledger.sqlite3", 300)
    runner = CliRunner()
    out = runner.invoke(build_app(plugins=False), ["ab", "report", "--ledger", str(path), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["experiment"] == "pricing" and data["variants"]["thrifty"]["requests"] == 300
    table = runner.invoke(build_app(plugins=False), ["ab", "report", "--ledger", str(path)])
    assert "thrifty vs control, cost_per_request: thrifty is better" in table.output
    missing = runner.invoke(build_app(plugins=False), ["ab", "report", "--ledger", str(tmp_path / "no.sqlite3")])
    assert missing.exit_code == 2 and "no ledger" in missing.output
    wrong = runner.invoke(build_app(plugins=False), ["ab", "report", "--ledger", str(path), "--experiment", "x"])
    assert wrong.exit_code == 2 and "pricing" in wrong.output
