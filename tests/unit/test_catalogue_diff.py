"""`llm-router catalogue diff FILE`: what a newer data file or genai-prices data would change."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
import yaml
from llm_router.catalogue import builtin_models
from llm_router.catalogue_diff import diff_file
from llm_router.cli import build_app
from typer.testing import CliRunner


def _builtin_data() -> dict:  # type: ignore[type-arg]
    text = resources.files("llm_router").joinpath("data/catalogue.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)  # type: ignore[no-any-return]


def test_the_builtin_file_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.yaml"
    path.write_text(resources.files("llm_router").joinpath("data/catalogue.yaml").read_text(encoding="utf-8"))
    assert diff_file(path).empty


def test_a_newer_catalogue_file(tmp_path: Path) -> None:
    data = _builtin_data()
    models = data["models"]
    gone = models.pop(0)["id"]
    models[0]["context_window"] = 123_456
    models[0]["lifecycle"] = {"retires_on": "2027-01-01", "successor": "x/y", "source": "test"}
    new = dict(models[0], id="openai/gpt-9", model="gpt-9")
    new.pop("lifecycle")
    models.append(new)
    path = tmp_path / "newer.yaml"
    path.write_text(yaml.safe_dump(data))
    changes = diff_file(path)
    assert changes.removed == [gone]
    assert changes.added == ["openai/gpt-9"]
    fields = {(c.model_id, c.field): (c.old, c.new) for c in changes.changed}
    assert fields == {
        (models[0]["id"], "context_window"): (builtin_models()[1].context_window, 123_456),
        (models[0]["id"], "retires_on"): (None, "2027-01-01"),
        (models[0]["id"], "successor"): (None, "x/y"),
    }


GENAI_PRICES = [
    {
        "id": "openai",
        "name": "OpenAI",
        "api_pattern": "https://api\\.openai\\.com",
        "models": [
            {"id": "gpt-4o", "match": {"or": [{"equals": "gpt-4o"}]}, "prices": {"input_mtok": 2, "output_mtok": 8}}
        ],
    }
]


def test_a_newer_genai_prices_file(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps(GENAI_PRICES))
    changes = diff_file(path)
    gpt4o = next(m for m in builtin_models() if m.id == "openai/gpt-4o")
    assert {(c.model_id, c.field, c.new) for c in changes.changed} == {
        ("openai/gpt-4o", "price.input_per_mtok", 2.0),
        ("openai/gpt-4o", "price.output_per_mtok", 8.0),
    } - {("openai/gpt-4o", f"price.{k}", getattr(gpt4o.price, k)) for k in ("input_per_mtok", "output_per_mtok")}
    assert "openai/gpt-4o" not in changes.unpriced
    assert "anthropic/claude-haiku-4-5" in changes.unpriced
    assert not changes.added and not changes.removed


def test_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_ROUTER_DISABLE_PLUGIN_AUTOLOAD", "1")
    path = tmp_path / "data.json"
    path.write_text(json.dumps(GENAI_PRICES))
    result = CliRunner().invoke(build_app(), ["catalogue", "diff", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"version", "added", "removed", "changed", "unpriced"}
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = CliRunner().invoke(build_app(), ["catalogue", "diff", str(bad)])
    assert result.exit_code == 2
    assert "not a genai-prices data file" in result.stderr
