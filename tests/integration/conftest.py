"""Integration tests need the test plugin distributions installed (`nox -s tests` installs them)."""

from __future__ import annotations

import importlib.metadata as md

import pytest

REQUIRED = (
    "llm-router-test-plugin",
    "llm-router-broken-plugin",
    "llm-router-duplicate-plugin",
    "llm-router-faulty-plugin",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = []
    for dist in REQUIRED:
        try:
            md.distribution(dist)
        except md.PackageNotFoundError:
            missing.append(dist)
    if missing:
        raise pytest.UsageError(
            f"integration tests need the test plugin distributions {', '.join(missing)} installed: "
            "run them through `nox -s tests` (or pip install tests/plugins/*)"
        )


@pytest.fixture(autouse=True)
def _reset_test_plugin() -> None:
    from llm_router_test_plugin import plugin

    plugin.SCRIPTS.clear()
    plugin.CALLS.clear()
    plugin.EVENTS.clear()
