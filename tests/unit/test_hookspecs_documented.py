"""Every hook spec is documented where it is declared and has its own section in docs/hooks.md."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from llm_router import hookspecs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "hooks.md"


def hook_specs() -> list[str]:
    return [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, hookspecs.PROJECT_NAME + "_spec")
    ]


def test_there_are_the_eleven_hooks() -> None:
    assert sorted(hook_specs()) == sorted(
        [
            "register_providers",
            "register_classifiers",
            "register_scorers",
            "register_constraints",
            "register_postprocessors",
            "register_commands",
            "register_embedders",
            "on_decision",
            "on_result",
            "on_error",
            "on_feedback",
        ]
    )


def test_every_hook_has_a_docstring_with_its_parameters() -> None:
    for name in hook_specs():
        fn = getattr(hookspecs, name)
        doc = inspect.getdoc(fn) or ""
        assert len(doc) > 80, name
        for param in inspect.signature(fn).parameters:
            assert f":param {param}:" in doc, f"{name} does not document {param}"


def test_every_hook_has_a_section_in_docs() -> None:
    headings = set(re.findall(r"^## `?(\w+)`?\s*$", DOCS.read_text(encoding="utf-8"), flags=re.MULTILINE))
    missing = [name for name in hook_specs() if name not in headings]
    assert not missing, f"docs/hooks.md lacks a '## <hook>' section for: {', '.join(missing)}"
