"""Shared fixtures: policy files on disk, and a clean slate for the test plugin's scripts and events."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write_policy(tmp_path: Path) -> Callable[[str], Path]:
    """Write dedented YAML to a policy file and return its path."""

    def write(text: str, name: str = "policy.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture(autouse=True)
def _clean_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "LLM_ROUTER_STRICT_PLUGINS",
        "LLM_ROUTER_BLOCK_PLUGINS",
        "LLM_ROUTER_DISABLE_PLUGIN_AUTOLOAD",
        "LLM_ROUTER_POLICY",
    ):
        monkeypatch.delenv(var, raising=False)
