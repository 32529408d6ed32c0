"""`llm-router policy schema`: every installed provider type's parameters, with their defaults."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from llm_router.cli import build_app
from llm_router.policy import default_policy_text
from typer.testing import CliRunner

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"


@pytest.fixture(scope="module")
def schema() -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(build_app(plugins=False), ["policy", "schema"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_each_provider_type_with_its_parameters_and_defaults(schema: dict) -> None:  # type: ignore[type-arg]
    providers = schema["properties"]["providers"]["properties"]
    assert {"openai", "openai_compatible", "azure_openai", "anthropic", "cohere", "google"} <= set(providers)
    providers = {name: entry["anyOf"][0] for name, entry in providers.items()}
    google = providers["google"]["properties"]
    assert google["timeout_s"]["default"] == 60.0
    assert google["vertexai"]["default"] is False
    assert "thinking_budget" in google
    assert providers["openai_compatible"]["properties"]["http_client"]["default"] == "direct"
    assert providers["openai"]["properties"]["http_client"]["default"] == "aiohttp"
    assert providers["azure_openai"]["properties"]["api_version"]["default"] == "2024-10-21"
    entry = schema["properties"]["providers"]["additionalProperties"]
    assert len(entry["anyOf"]) == len(providers)


def test_the_shipped_policies_providers_validate(schema: dict) -> None:  # type: ignore[type-arg]
    policies = [yaml.safe_load(default_policy_text())] + [
        yaml.safe_load(p.read_text()) for p in EXAMPLES.glob("*.yaml")
    ]
    checked = 0
    for policy in policies:
        if policy.get("providers"):
            jsonschema.validate({"providers": policy["providers"]}, schema)
            checked += 1
    assert checked >= 2


@pytest.mark.parametrize(
    "providers",
    [
        {"openai": {"api_kye": "x"}},  # a misspelt parameter
        {"google": {"timeout_s": "soon"}},  # a wrong type
        {"gem": {"type": "google", "http_client": "direct"}},  # not one of the type's values
    ],
)
def test_bad_provider_entries_are_refused(schema: dict, providers: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"providers": providers}, schema)
