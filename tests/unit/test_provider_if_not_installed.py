"""A provider entry's ``if_not_installed``: the entry used instead when its own type is not installed."""

from __future__ import annotations

from llm_router import Router


def _policy(type_name: str) -> dict[str, object]:
    return {
        "providers": {
            "gem": {
                "type": type_name,
                "package": "llm-router-provider-nothing",
                "if_not_installed": {
                    "type": "openai_compatible",
                    "package": "llm-router-provider-openai",
                    "base_url": "http://127.0.0.1:9/v1",
                },
            }
        },
        "classify": [{"rules": {"threshold": 0.0}}],
    }


def test_missing_type_uses_the_alternative() -> None:
    router = Router(_policy("no_such_provider_type"))
    try:
        assert type(router.providers["gem"]).name == "openai_compatible"
        assert router.provider_status("gem") is None
    finally:
        router.close()


def test_installed_type_wins() -> None:
    router = Router(_policy("openai"))
    try:
        assert type(router.providers["gem"]).name == "openai"
    finally:
        router.close()


def test_missing_alternative_names_its_package() -> None:
    policy = _policy("no_such_provider_type")
    policy["providers"]["gem"]["if_not_installed"]["type"] = "also_missing"  # type: ignore[index]
    router = Router(policy)
    try:
        reason = router.provider_status("gem")
        assert reason is not None
        assert "also_missing" in reason and "llm-router-provider-openai" in reason
    finally:
        router.close()


def test_builtin_google_models_use_the_google_plugin_when_installed() -> None:
    router = Router()
    try:
        assert type(router.providers["google"]).name == "google"
    finally:
        router.close()
