"""Without llm-router-provider-google, the built-in google/* models go to Google's OpenAI-compatible endpoint
(the default policy's `if_not_installed`). Runs where the google plugin is absent (`nox -s
plugin-llm-router-provider-openai`); skipped in the whole suite, where it is installed."""

from __future__ import annotations

import importlib.util

import pytest
from llm_router import Router


@pytest.mark.skipif(importlib.util.find_spec("llm_router_google") is not None, reason="the google plugin is installed")
def test_builtin_google_models_use_the_openai_compatible_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "g-test-key")
    with Router() as router:
        provider = router.providers["google"]
        assert type(provider).name == "openai_compatible"
        assert provider.config.base_url == "https://generativelanguage.googleapis.com/v1beta/openai/"  # type: ignore[attr-defined]
        assert router.provider_status("google") is None
        decision = router.route("Summarize this article", constraints={"allowed_providers": ["google"]})
        assert decision.selected.id.startswith("google/")
