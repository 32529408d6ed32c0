"""The ``llm_router`` entry point: registers the provider type ``cohere``."""

from __future__ import annotations

from collections.abc import Callable

from llm_router import Provider, hookimpl

from .provider import CohereProvider


@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(CohereProvider)
