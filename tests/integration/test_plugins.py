"""Plugin discovery through real installed distributions, failure isolation, strict mode, blocking."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import llm_router
import pytest
from llm_router import Router
from llm_router.cli import build_app
from llm_router.commands import CommandGroups
from llm_router.errors import DuplicateComponentError, PluginError, PolicyError
from llm_router.plugins import PluginHost
from typer.testing import CliRunner


def record(host: PluginHost, name: str) -> Any:
    return next(r for r in host.records if r.name == name)


def test_installed_plugin_is_discovered_with_distribution_and_version() -> None:
    host = PluginHost()
    rec = record(host, "testplugin")
    assert (rec.status, rec.distribution, rec.version, rec.essential) == (
        "loaded",
        "llm-router-test-plugin",
        "1.2.3",
        False,
    )
    assert {"provider:scripted", "scorer:freshness", "classifier:kernel"} <= set(rec.components)
    assert host.registry.get("scorer", "freshness") is not None


def test_builtin_components_come_from_the_core_distribution() -> None:
    host = PluginHost()
    builtins = [r for r in host.records if r.essential]
    assert {r.name for r in builtins} == {"classifiers", "scorers", "constraints", "postprocessors"}
    assert all(r.distribution == "llm-router" and r.status == "loaded" for r in builtins)


def test_broken_plugin_is_isolated_and_recorded(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "llm_router.plugins"):
        router = Router(autoload=True)
    rec = next(r for r in router.plugin_report() if r.name == "broken")
    assert rec.status == "failed"
    assert rec.distribution == "llm-router-broken-plugin"
    assert "ModuleNotFoundError" in (rec.error or "") and "llm_router_dependency_that_does_not_exist" in (
        rec.error or ""
    )
    assert any("broken" in m for m in caplog.messages)
    assert router.route("hello").selected  # the rest keeps working


def test_strict_mode_raises_on_the_broken_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_ROUTER_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"plugin 'broken' \(distribution llm-router-broken-plugin 0.0.1\)"):
        Router()


def test_block_list_skips_the_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_ROUTER_STRICT_PLUGINS", "1")
    monkeypatch.setenv("LLM_ROUTER_BLOCK_PLUGINS", "broken, duplicate, other")
    router = Router()
    assert next(r for r in router.plugin_report() if r.name == "broken").status == "blocked"


def test_essential_plugins_cannot_be_blocked_or_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_ROUTER_BLOCK_PLUGINS", "scorers,classifiers")
    monkeypatch.setenv("LLM_ROUTER_DISABLE_PLUGIN_AUTOLOAD", "1")
    router = Router()
    statuses = {r.name: r.status for r in router.plugin_report()}
    assert statuses["scorers"] == statuses["classifiers"] == "loaded"
    assert statuses["testplugin"] == "disabled" and statuses["broken"] == "disabled"
    assert router.route("Write a Python function").classification.task == "code"


def test_policy_needing_a_component_of_a_disabled_plugin_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, write_policy: Callable[[str], Path]
) -> None:
    path = write_policy("score: [quality, freshness]\npreferences: {quality: 1, freshness: 1}\n")
    assert Router(path).route("hello").weights == {"quality": 0.5, "freshness": 0.5}
    monkeypatch.setenv("LLM_ROUTER_BLOCK_PLUGINS", "testplugin")
    with pytest.raises(PolicyError) as info:
        Router(path)
    text = str(info.value)
    assert f"{path}:1:18: score[1]: unknown scorer 'freshness'" in text
    assert "plugins that failed to load: broken (llm-router-broken-plugin)" in text
    assert "not loaded (blocked or autoload off): testplugin" in text


def test_third_party_classifier_in_cascade(write_policy: Callable[[str], Path]) -> None:
    path = write_policy("classify:\n  - kernel: {threshold: 0.9}\n  - rules\n")
    router = Router(path)
    c = router.route("my kernel panics on boot").classification
    assert (c.task, c.method, c.confidence) == ("code", "kernel", 0.99)
    other = router.route("Write a poem about the sea").classification
    assert other.method == "rules"
    assert [s.classifier for s in other.stages] == ["kernel", "rules"]
    assert other.stages[0].task is None and not other.stages[0].accepted


class DupScorer(llm_router.Scorer):
    name = "quality"

    def score(self, candidates: Any, ctx: Any) -> list[float]:
        return [0.0 for _ in candidates]


class DupOnlyClassifier(llm_router.Classifier):
    name = "dup_only"


class DupPlugin:
    """Registers ``quality`` (taken by the core) after a classifier of its own, and listens to decisions."""

    def __init__(self) -> None:
        self.decisions: list[Any] = []

    @llm_router.hookimpl
    def register_classifiers(self, register: Callable[..., None]) -> None:
        register(DupOnlyClassifier)

    @llm_router.hookimpl
    def register_scorers(self, register: Callable[..., None]) -> None:
        register(DupScorer)

    @llm_router.hookimpl
    def on_decision(self, decision: Any, request: Any) -> None:
        self.decisions.append(decision)


def test_duplicate_component_fails_the_later_plugin_only() -> None:
    plugin = DupPlugin()
    router = Router(plugins=[plugin])
    rec = next(r for r in router.plugin_report() if r.name == "DupPlugin")
    assert rec.status == "failed" and rec.components == []
    error = rec.error or ""
    assert "scorer 'quality' is already registered by plugin 'scorers'" in error
    assert "plugin 'DupPlugin'" in error and "QualityScorer" in error and "DupScorer" in error
    host = router.plugins
    assert host.component("scorer", "quality").__name__ == "QualityScorer"  # the core's
    assert host.registry.get("classifier", "dup_only") is None  # all or nothing
    assert max(c.breakdown["quality"] for c in router.route("hello").ranking) > 0  # DupScorer gives 0
    assert plugin.decisions == []  # a failed plugin hears no events


def test_duplicate_component_raises_in_strict_mode() -> None:
    with pytest.raises(DuplicateComponentError) as info:
        Router(plugins=[DupPlugin()], strict=True, block=["broken", "duplicate"])
    text = str(info.value)
    assert "plugin 'DupPlugin' failed while registering components" in text
    assert "scorer 'quality' is already registered by plugin 'scorers'" in text


class TwiceScorer(llm_router.Scorer):
    name = "twice"


class TwiceAgainScorer(llm_router.Scorer):
    name = "twice"


class SelfDuplicate:
    @llm_router.hookimpl
    def register_scorers(self, register: Callable[..., None]) -> None:
        register(TwiceScorer)
        register(TwiceAgainScorer)
        register(TwiceScorer, name="once")


def test_a_plugin_registering_one_name_twice_fails_whole() -> None:
    host = PluginHost([SelfDuplicate()], block=["broken", "duplicate"])
    rec = record(host, "SelfDuplicate")
    assert rec.status == "failed"
    assert "registers two classes as scorer 'twice'" in (rec.error or "")
    assert host.registry.get("scorer", "twice") is None and host.registry.get("scorer", "once") is None


class HalfBroken:
    @llm_router.hookimpl
    def register_classifiers(self, register: Callable[..., None]) -> None:
        register(DupOnlyClassifier)

    @llm_router.hookimpl
    def register_scorers(self, register: Callable[..., None]) -> None:
        raise RuntimeError("scorers unavailable")


def test_a_raising_registration_hook_registers_none_of_the_plugins_components() -> None:
    host = PluginHost([HalfBroken()], block=["broken", "duplicate"])
    rec = record(host, "HalfBroken")
    assert rec.status == "failed" and "calling register_scorers: RuntimeError: scorers unavailable" in (rec.error or "")
    assert host.registry.get("classifier", "dup_only") is None


def test_installed_duplicate_plugin_is_failed_and_the_core_scorer_kept() -> None:
    router = Router()
    rec = next(r for r in router.plugin_report() if r.name == "duplicate")
    assert (rec.status, rec.distribution, rec.components) == ("failed", "llm-router-duplicate-plugin", [])
    assert router.plugins.component("scorer", "quality").__module__ == "llm_router.builtin.scorers"
    assert router.plugins.registry.get("constraint", "impostor_free") is None
    without = Router(block=["duplicate"])
    prompt = "Write a Python function to calculate fibonacci numbers"
    assert router.route(prompt).ranking == without.route(prompt).ranking


def test_cli_plugins_names_the_duplicate_plugin_and_both_sides() -> None:
    import json

    result = CliRunner().invoke(build_app(), ["plugins", "--all", "--json"])
    assert result.exit_code == 0, result.output
    dup = next(p for p in json.loads(result.stdout)["plugins"] if p["name"] == "duplicate")
    assert dup["status"] == "failed" and dup["components"] == []
    assert dup["error"].startswith("registering components: DuplicateComponentError: scorer 'quality'")
    assert "plugin 'scorers' (distribution llm-router " in dup["error"]
    assert "plugin 'duplicate' (distribution llm-router-duplicate-plugin 0.0.1: " in dup["error"]


def test_installed_duplicate_plugin_raises_in_strict_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_ROUTER_STRICT_PLUGINS", "1")
    monkeypatch.setenv("LLM_ROUTER_BLOCK_PLUGINS", "broken")
    with pytest.raises(DuplicateComponentError, match=r"plugin 'duplicate' \(distribution llm-router-duplicate-plugin"):
        Router()


def test_faulty_plugin_registers_its_components() -> None:
    rec = record(PluginHost(), "faulty")
    assert (rec.status, rec.distribution) == ("loaded", "llm-router-faulty-plugin")
    assert sorted(rec.components) == ["constraint:faulty_check", "provider:faulty_models", "scorer:faulty_score"]


class Misspelled:
    @llm_router.hookimpl
    def register_scorer(self, register: Callable[..., None]) -> None:  # missing "s"
        register(DupScorer)


def test_misspelled_hook_is_caught(caplog: pytest.LogCaptureFixture) -> None:
    router = Router(plugins=[Misspelled()])
    rec = next(r for r in router.plugin_report() if r.name == "Misspelled")
    assert rec.status == "failed"
    assert "unknown hook 'register_scorer'" in (rec.error or "")
    assert "did you mean 'register_scorers'?" in (rec.error or "")
    with pytest.raises(PluginError, match="register_scorer"):
        Router(plugins=[Misspelled()], strict=True, block=["broken"])


class NotAComponent:
    @llm_router.hookimpl
    def register_scorers(self, register: Callable[..., None]) -> None:
        register(dict)


def test_registering_a_non_component_fails_the_plugin_only() -> None:
    router = Router(plugins=[NotAComponent()])
    rec = next(r for r in router.plugin_report() if r.name == "NotAComponent")
    assert rec.status == "failed" and "not a subclass of llm_router.Scorer" in (rec.error or "")
    assert router.route("hi").selected


class RaisingListener:
    @llm_router.hookimpl
    def on_decision(self, decision: Any, request: Any) -> None:
        raise RuntimeError("listener bug")


def test_raising_event_hook_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    router = Router(plugins=[RaisingListener()])
    with caplog.at_level(logging.ERROR, "llm_router.plugins"):
        assert router.route("hi").selected
    assert any("'RaisingListener' raised in on_decision" in m for m in caplog.messages)
    strict = Router(plugins=[RaisingListener()], block=["broken", "duplicate"], strict=True)
    with pytest.raises(PluginError, match="listener bug"):
        strict.route("hi")


def test_cli_plugins_all_lists_loaded_failed_and_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.setenv("LLM_ROUTER_BLOCK_PLUGINS", "testplugin")
    result = CliRunner().invoke(build_app(), ["plugins", "--all", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["testplugin"]["status"] == "blocked"
    assert by_name["broken"]["status"] == "failed" and by_name["broken"]["distribution"] == "llm-router-broken-plugin"
    assert by_name["scorers"]["essential"] is True and by_name["scorers"]["version"]


class CommandsPlugin:
    @llm_router.hookimpl
    def register_commands(self, cli: CommandGroups) -> None:
        @cli.train.command("widget")
        def widget() -> None:
            """Train a widget."""
            print("widget trained")

    @llm_router.hookimpl
    def register_scorers(self, register: Callable[..., None]) -> None:
        return None


class BrokenCommandsPlugin:
    @llm_router.hookimpl
    def register_commands(self, cli: CommandGroups) -> None:
        raise RuntimeError("no commands today")


def test_plugins_add_cli_commands_and_a_failing_one_is_isolated() -> None:
    import typer
    from llm_router.commands import CommandGroups

    host = PluginHost([CommandsPlugin(), BrokenCommandsPlugin()], block=["broken"])
    groups = CommandGroups(root=typer.Typer(), train=typer.Typer(), eval=typer.Typer(), calibrate=typer.Typer())
    host.add_commands(groups)
    assert "widget" in [c.name for c in groups.train.registered_commands]  # in the group it was handed
    assert "widget" not in [c.name for c in (*groups.eval.registered_commands, *groups.root.registered_commands)]
    rec = record(host, "BrokenCommandsPlugin")
    assert rec.status == "failed" and "no commands today" in (rec.error or "")


def test_build_app_makes_a_new_command_line_each_time_with_the_plugins_commands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import llm_router.plugins

    real = llm_router.plugins.PluginHost
    monkeypatch.setattr(llm_router.plugins, "PluginHost", lambda: real([CommandsPlugin()], autoload=False))
    first, second, bare = build_app(), build_app(), build_app(plugins=False)
    assert len({id(first), id(second), id(bare)}) == 3

    def groups(app: Any) -> dict[str, Any]:
        return {g.name: g.typer_instance for g in app.registered_groups}

    # eval got no command: not shown; calibrate has the core's `calibrate cache`
    assert set(groups(first)) == {"policy", "catalogue", "cache", "ab", "train", "calibrate"}
    assert groups(first)["train"] is not groups(second)["train"]
    assert set(groups(bare)) == {"policy", "catalogue", "cache", "ab"}
    result = CliRunner().invoke(first, ["train", "widget"])
    assert result.exit_code == 0, result.output
    assert "widget trained" in result.stdout
    assert CliRunner().invoke(bare, ["train", "widget"]).exit_code == 2  # no such command without plugins
    core = {"route", "run", "models", "plugins", "serve", "usage"}
    assert {c.name for c in bare.registered_commands} == core
