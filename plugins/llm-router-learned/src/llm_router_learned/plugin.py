"""Hook implementations: the ``learned_quality`` and ``online_quality`` scorers and the ``train router`` /
``eval route`` / ``eval online`` / ``calibrate router`` commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import llm_router
from llm_router import Scorer

from .online import OnlineQualityScorer
from .scorer import LearnedQualityScorer

if TYPE_CHECKING:
    from llm_router.commands import CommandGroups


@llm_router.hookimpl
def register_scorers(register: Callable[[type[Scorer]], None]) -> None:
    register(LearnedQualityScorer)
    register(OnlineQualityScorer)


@llm_router.hookimpl
def register_commands(cli: CommandGroups) -> None:
    from . import cli as commands

    commands.add_commands(cli)
