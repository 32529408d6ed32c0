"""The ``llm_router`` entry point: registers the provider types ``openai``, ``openai_compatible`` and
``azure_openai``."""

from __future__ import annotations

from collections.abc import Callable

from llm_router import Provider, hookimpl

from .azure import AzureOpenAIProvider
from .provider import OpenAICompatibleProvider, OpenAIProvider


@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(OpenAIProvider)
    register(OpenAICompatibleProvider)
    register(AzureOpenAIProvider)
