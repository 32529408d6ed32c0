"""The command line's extension API: what a plugin's ``register_commands`` hook receives.

A plugin adds commands to ``llm-router`` through the groups it is handed, never through module globals of
:mod:`llm_router.cli` (every call of :func:`llm_router.cli.build_app` makes a fresh command line, so tests
and embedders get their own)::

    import llm_router

    @llm_router.hookimpl
    def register_commands(cli):
        @cli.train.command("widget")
        def train_widget(data: str) -> None:
            \"\"\"Train a widget from DATA.\"\"\"

Importing this module imports Typer; a plugin imports it (if at all) inside its hook, so that routing
never pays for the command line's libraries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer

__all__ = ["CommandGroups"]


@dataclass(frozen=True, slots=True)
class CommandGroups:
    """The ``llm-router`` command line's groups that plugins extend.

    :ivar root: the top-level application (``llm-router NAME``).
    :ivar train: ``llm-router train …`` (train a component from data).
    :ivar eval: ``llm-router eval …`` (evaluate routing or classification on labelled data).
    :ivar calibrate: ``llm-router calibrate …`` (pick thresholds and operating points from data).

    A group appears in ``--help`` once a plugin has added a command to it. ``command`` and ``add_typer``
    are the root's, so a hook written for the root ``typer.Typer`` (``@cli.command()``) keeps working.
    """

    root: typer.Typer
    train: typer.Typer
    eval: typer.Typer
    calibrate: typer.Typer

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """``@cli.command()``: a top-level command (``typer.Typer.command``)."""
        return self.root.command(*args, **kwargs)

    def add_typer(self, group: typer.Typer, **kwargs: Any) -> None:
        """``cli.add_typer(group, name="…")``: a top-level group of commands (``typer.Typer.add_typer``)."""
        self.root.add_typer(group, **kwargs)
