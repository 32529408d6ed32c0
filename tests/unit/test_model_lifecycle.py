"""Model lifecycles: catalogue fields, `llm-router models` marks, policy warnings and the lifecycle constraint."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from llm_router import Router
from llm_router.catalogue import builtin_models
from llm_router.cli import build_app
from llm_router.errors import NoCandidatesError
from llm_router.model_lifecycle import mark, status
from llm_router.types import ModelInfo, ModelPrice
from typer.testing import CliRunner

D = datetime.date


def _model(**lifecycle: object) -> ModelInfo:
    return ModelInfo(
        id="p/m",
        provider="p",
        model="m",
        price=ModelPrice(input_per_mtok=1, output_per_mtok=1, source="test"),
        context_window=1000,
        max_output_tokens=100,
        **lifecycle,  # type: ignore[arg-type]
    )


def test_status_and_mark_follow_the_dates() -> None:
    m = _model(deprecated_on=D(2026, 1, 1), retires_on=D(2026, 6, 1), successor="p/n")
    assert status(m, D(2025, 12, 31)) == "active"
    assert mark(m, D(2025, 12, 31)) == "retires 2026-06-01"
    assert status(m, D(2026, 1, 1)) == "deprecated"
    assert mark(m, D(2026, 3, 1)) == "deprecated 2026-01-01, retires 2026-06-01; successor p/n"
    assert status(m, D(2026, 6, 1)) == "retired"
    assert mark(m, D(2026, 6, 2)) == "retired 2026-06-01; successor p/n"
    assert mark(_model(), D(2030, 1, 1)) == ""


def test_builtin_catalogue_carries_lifecycle_with_sources() -> None:
    dated = [m for m in builtin_models() if m.retires_on or m.deprecated_on]
    assert len(dated) >= 5
    assert all(m.lifecycle_source for m in dated)
    sonnet = next(m for m in builtin_models() if m.id == "anthropic/claude-sonnet-4-5")
    assert sonnet.retires_on == D(2026, 11, 30)
    assert sonnet.successor == "anthropic/claude-sonnet-4-6"


POLICY = """\
providers: {}
models:
  - id: local/old
    provider: local
    model: old
    price: {input_per_mtok: 0.1, output_per_mtok: 0.1}
    context_window: 10000
    max_output_tokens: 1000
    deprecated_on: 2026-01-01
    retires_on: 2026-02-01
    successor: local/new
  - id: local/new
    provider: local
    model: new
    price: {input_per_mtok: 5, output_per_mtok: 5}
    context_window: 10000
    max_output_tokens: 1000
classify:
  - rules: {threshold: 0.0}
constrain:
  - lifecycle: {today: %s%s}
routes:
  - models: [local/old, local/new]
"""


def _router(write_policy: Callable[[str], Path], today: str, pinned: str = "") -> Router:
    return Router(write_policy(POLICY % (today, f", pinned: [{pinned}]" if pinned else "")))


def test_retired_model_is_excluded_with_the_reason(write_policy: Callable[[str], Path]) -> None:
    router = _router(write_policy, "2026-03-01")
    try:
        decision = router.route("hello", preferences={"cost": 1})
        assert decision.selected.id == "local/new"
        rejection = next(r for r in decision.rejected if r.model_id == "local/old")
        assert rejection.constraint == "lifecycle"
        assert rejection.reason == "retired on 2026-02-01; use local/new instead"
    finally:
        router.close()


def test_before_retirement_and_pinned_models_stay(write_policy: Callable[[str], Path]) -> None:
    for router in (_router(write_policy, "2026-01-15"), _router(write_policy, "2026-03-01", pinned="local/old")):
        try:
            assert router.route("hello", preferences={"cost": 1}).selected.id == "local/old"
        finally:
            router.close()


def test_request_naming_a_retired_model_pins_it(write_policy: Callable[[str], Path]) -> None:
    router = _router(write_policy, "2026-03-01")
    try:
        assert router.route("hello", model="local/old").selected.id == "local/old"
    finally:
        router.close()


def test_only_retired_models_left_says_why(write_policy: Callable[[str], Path]) -> None:
    path = write_policy((POLICY % ("2026-03-01", "")).replace("models: [local/old, local/new]", "models: [local/old]"))
    router = Router(path)
    try:
        with pytest.raises(NoCandidatesError) as info:
            router.route("hello")
        assert "retired on 2026-02-01" in str(info.value)
    finally:
        router.close()


def test_policy_naming_a_deprecated_model_warns_with_the_successor(write_policy: Callable[[str], Path]) -> None:
    path = write_policy(
        """\
        classify:
          - rules: {threshold: 0.0}
        routes:
          - when: {task: code}
            models: [anthropic/claude-sonnet-4-5, openai/gpt-5]
          - models: "*"
        """
    )
    router = Router(path)
    try:
        sonnet = router.catalogue.get("anthropic/claude-sonnet-4-5")
        assert sonnet is not None
        if status(sonnet) == "active":  # pragma: no cover - only before 2026-10-01
            pytest.skip("claude-sonnet-4-5 is not deprecated yet")
        warning = next(w for w in router.warnings if "claude-sonnet-4-5" in w)
        assert f"{path}:5:" in warning
        assert "anthropic/claude-sonnet-4-6" in warning
        assert not any("openai/gpt-5 " in w for w in router.warnings)
        assert not any("routes[1]" in w for w in router.warnings), "'*' names no model in particular"
    finally:
        router.close()


def test_models_command_marks_lifecycle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_ROUTER_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("COLUMNS", "300")
    result = CliRunner().invoke(build_app(), ["models"])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.stdout.splitlines() if "anthropic/claude-sonnet-4-0" in ln)
    assert "retired 2026-06-15" in line


def test_policy_validate_prints_each_lifecycle_warning_once(write_policy: Callable[[str], Path]) -> None:
    """The warning is logged when the router starts and printed by the command: a real process shows both
    streams, so the command drops the log record it is about to print itself."""
    path = write_policy(
        (POLICY % ("2026-01-15", ""))
        .replace("deprecated_on: 2026-01-01", "deprecated_on: 2020-01-01")
        .replace("retires_on: 2026-02-01", "retires_on: 2099-02-01")
    )
    exe = Path(sys.executable).with_name("llm-router")
    env = {**os.environ, "LLM_ROUTER_DISABLE_PLUGIN_AUTOLOAD": "1", "COLUMNS": "300"}
    done = subprocess.run(
        [str(exe), "policy", "validate", str(path)], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    message = "model local/old is deprecated since 2020-01-01 (retires 2099-02-01); use local/new instead"
    assert (done.stdout + done.stderr).count(message) == 1, done.stderr
    assert f"warning: {path}:" in done.stderr


def test_retiring_within_days_leaves_out_a_model_about_to_retire(write_policy: Callable[[str], Path]) -> None:
    policy = (POLICY % ("2026-01-28", "")).replace(
        "{today: 2026-01-28}", "{today: 2026-01-28, retiring_within_days: 7}"
    )
    router = Router(write_policy(policy))
    try:
        decision = router.route("hello", preferences={"cost": 1})
        assert decision.selected.id == "local/new"
        rejection = next(r for r in decision.rejected if r.model_id == "local/old")
        assert rejection.reason == "retires on 2026-02-01, within 7 days (retiring_within_days); use local/new instead"
        assert router.route("hello", model="local/old").selected.id == "local/old", "a request naming it keeps it"
    finally:
        router.close()
    router = _router(write_policy, "2026-01-28")  # no margin: still routable until the day itself
    try:
        assert router.route("hello", preferences={"cost": 1}).selected.id == "local/old"
    finally:
        router.close()


def test_default_policy_avoids_models_retiring_within_a_week() -> None:
    """The built-in policy lists the default constraints (kept in step with the code's list) and routes to no
    model that is retired or retires within seven days; each such model's successor is in the catalogue."""
    from llm_router.policy import DEFAULT_CONSTRAINTS

    router = Router()
    try:
        assert [s.name for s in router.policy.constrain] == list(DEFAULT_CONSTRAINTS)
        on = datetime.datetime.now(datetime.UTC).date()
        decision = router.route("write a python function that sorts a list")
        rejected = {r.model_id for r in decision.rejected if r.constraint == "lifecycle"}
        for model in router.catalogue:
            soon = model.retires_on is not None and model.retires_on <= on + datetime.timedelta(days=7)
            assert (model.id in rejected) == soon, model.id
            if model.successor:
                assert model.successor in router.catalogue, f"{model.id}: successor {model.successor} not routable"
    finally:
        router.close()


def test_every_builtin_figure_cites_a_listed_source() -> None:
    """Each model's quality, latency, specs and lifecycle source is a key of the file's `sources:`, and each
    source says where (url), what (title) and when (retrieved)."""
    from importlib import resources

    import yaml
    from llm_router.catalogue import builtin_sources

    sources = builtin_sources()
    assert all({"url", "title", "retrieved"} <= set(entry) for entry in sources.values())
    text = resources.files("llm_router").joinpath("data/catalogue.yaml").read_text(encoding="utf-8")
    for entry in yaml.safe_load(text)["models"]:
        cited = [entry.get(k) for k in ("quality_source", "latency_source", "specs_source")]
        cited.append((entry.get("lifecycle") or {}).get("source"))
        missing = [key for key in cited if key is not None and key not in sources]
        assert not missing, f"{entry['id']}: {missing}"
        assert entry.get("quality_source") and entry.get("latency_source") and entry.get("specs_source"), entry["id"]
