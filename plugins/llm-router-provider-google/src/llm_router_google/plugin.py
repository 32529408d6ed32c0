"""The ``llm_router`` entry point: registers the provider type ``google``."""

from __future__ import annotations

from collections.abc import Callable

from llm_router import Provider, hookimpl

from .provider import GoogleProvider


@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(GoogleProvider)
