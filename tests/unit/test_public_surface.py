"""Plugins import only llm-router's declared public surface (docs/plugins.md, "What a plugin may import").

The surface: the names in ``llm_router.__all__``, and the names in the ``__all__`` of the documented sub-modules
below. Every ``.py`` file under ``plugins/*/src`` and ``examples/*/src`` is parsed (not imported) and each of its
imports of ``llm_router`` is checked, ``TYPE_CHECKING`` blocks included; so is each ``llm_router.NAME`` read off
the package. The plugins' own tests may use more, and are not checked.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "llm_router"
SUBMODULES = ("commands", "errors", "testing", "types")
"""The documented sub-modules; a plugin may import them and the names in their ``__all__``."""

SOURCES = sorted(p for pattern in ("plugins/*/src/**/*.py", "examples/*/src/**/*.py") for p in ROOT.glob(pattern))


def surface() -> dict[str, frozenset[str]]:
    """Each importable module of the surface, with the names a plugin may take from it."""
    out = {PACKAGE: frozenset(importlib.import_module(PACKAGE).__all__) | frozenset(SUBMODULES)}
    for name in SUBMODULES:
        out[f"{PACKAGE}.{name}"] = frozenset(importlib.import_module(f"{PACKAGE}.{name}").__all__)
    return out


def violations(tree: ast.AST, allowed: dict[str, frozenset[str]]) -> Iterator[tuple[int, str]]:
    """(line, what) for each use of ``llm_router`` outside ``allowed`` in the module ``tree``."""
    package_aliases = set()  # names bound to the package itself by `import llm_router [as x]`
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name != PACKAGE and not alias.name.startswith(PACKAGE + "."):
                    continue
                if alias.name not in allowed:
                    yield node.lineno, f"import {alias.name} (not a documented module)"
                elif alias.name == PACKAGE:
                    package_aliases.add(alias.asname or PACKAGE)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            if node.module != PACKAGE and not node.module.startswith(PACKAGE + "."):
                continue
            names = allowed.get(node.module)
            if names is None:
                yield node.lineno, f"from {node.module} import ... (not a documented module)"
                continue
            for alias in node.names:
                if alias.name not in names:
                    yield node.lineno, f"from {node.module} import {alias.name} (not in its __all__)"
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in package_aliases
            and node.attr not in allowed[PACKAGE]
        ):
            yield node.lineno, f"{node.value.id}.{node.attr} (not in llm_router.__all__)"


def test_there_are_plugin_sources_to_check() -> None:
    assert len({p.relative_to(ROOT).parts[1] for p in SOURCES}) >= 6  # five plugins and the example


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugin_imports_only_the_public_surface(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = [f"{path.relative_to(ROOT)}:{line}: {what}" for line, what in violations(tree, surface())]
    assert not found, "imports outside llm-router's public surface:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("from llm_router.components import KeyedProvider", "not a documented module"),
        ("from llm_router import _HOME", "not in its __all__"),
        ("from llm_router.types import as_messages", "not in its __all__"),
        ("import llm_router.plugins", "not a documented module"),
        ("import llm_router as lr\nlr.plugins.PluginHost()", "not in llm_router.__all__"),
        ("if TYPE_CHECKING:\n    from llm_router.taxonomy import TaskSpec", "not a documented module"),
    ],
)
def test_the_check_catches(source: str, bad: str) -> None:
    found = [what for _, what in violations(ast.parse(source), surface())]
    assert found, source
    assert bad in found[0]


@pytest.mark.parametrize(
    "source",
    [
        "import llm_router\nllm_router.hookimpl",
        "from llm_router import KeyedProvider, errors",
        "from llm_router.errors import RateLimitError, scrub",
        "from llm_router.types import ToolCall",
        "from llm_router.commands import CommandGroups",
        "from llm_router_classify.model import Model",
        "from .model import Model",
    ],
)
def test_the_check_allows(source: str) -> None:
    assert list(violations(ast.parse(source), surface())) == []
