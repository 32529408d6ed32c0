"""The routing policy: validation with positions, environment variables, component forms, schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from llm_router import Router
from llm_router.errors import PolicyError
from llm_router.policy import ComponentSpec, parse_policy, policy_json_schema


def issues(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "p.yaml", env or {})
    return [str(i) for i in info.value.issues]


def test_minimal_policy_gets_defaults() -> None:
    policy, _ = parse_policy("version: 1\n", "p.yaml", {})
    assert [c.name for c in policy.classify] == ["rules"]
    assert [c.name for c in policy.score] == ["quality", "cost", "latency"]
    assert policy.fallback.retries == 2


def test_yaml_syntax_error_names_line_and_column() -> None:
    found = issues("version: 1\nroutes:\n  - when: {task: code\n")
    assert len(found) == 1
    assert found[0].startswith("p.yaml:4:1:") or found[0].startswith("p.yaml:3:")
    assert "YAML syntax error" in found[0]


def test_unknown_field_names_line_column_and_path() -> None:
    found = issues("version: 1\nfallback:\n  retries: 1\n  retires: 2\n")
    assert found == ["p.yaml:4:3: fallback.retires: unknown field 'retires'"]


def test_wrong_type_names_field_and_value() -> None:
    found = issues("version: 1\nfallback:\n  retries: lots\n")
    assert len(found) == 1
    assert found[0].startswith("p.yaml:3:3: fallback.retries:")
    assert "'lots'" in found[0]


def test_every_problem_is_reported_at_once() -> None:
    found = issues("version: 1\nfallback: {retries: -1, bogus: 1}\nconstraints: {max_latency_ms: 0}\n")
    assert len(found) == 3
    assert any("fallback.bogus" in f for f in found)
    assert any("constraints.max_latency_ms" in f for f in found)


def test_nested_list_path() -> None:
    found = issues("version: 1\nroutes:\n  - models: '*'\n  - when: {task: code, colour: red}\n")
    assert found == ["p.yaml:4:24: routes[1].when.colour: unknown field 'colour'"]


def test_env_expansion_and_default() -> None:
    policy, _ = parse_policy(
        "providers:\n  a: {type: x, api_key: '${KEY}', base_url: '${URL:-http://h/v1}'}\n", "p.yaml", {"KEY": "s3"}
    )
    assert policy.providers["a"].params() == {"api_key": "s3", "base_url": "http://h/v1"}


def test_missing_env_var_names_itself_and_where() -> None:
    found = issues("providers:\n  a:\n    api_key: ${MY_SECRET_KEY}\n")
    assert found == [
        "p.yaml:3:14: providers.a.api_key: environment variable MY_SECRET_KEY is not set "
        "(set it, or write ${MY_SECRET_KEY:-default})"
    ]


def test_duplicate_key_is_an_error() -> None:
    found = issues("version: 1\npreferences: {cost: 1}\npreferences: {cost: 2}\n")
    assert "duplicate key 'preferences' (first defined on line 2)" in found[0]
    assert found[0].startswith("p.yaml:3:1:")


def test_on_key_is_not_a_boolean() -> None:
    policy, _ = parse_policy("fallback: {on: [timeout]}\n", "p.yaml", {})
    assert policy.fallback.on == ["timeout"]


def test_top_level_must_be_mapping() -> None:
    assert issues("- a\n- b\n") == ["p.yaml:1:1: a policy is a mapping, got list"]


@pytest.mark.parametrize(
    ("raw", "name", "params"),
    [
        ("rules", "rules", {}),
        ({"rules": {"threshold": 0.8}}, "rules", {"threshold": 0.8}),
        ({"rules": None}, "rules", {}),
    ],
)
def test_component_short_forms(raw: object, name: str, params: dict[str, object]) -> None:
    spec = ComponentSpec.model_validate(raw)
    assert (spec.name, spec.params) == (name, params)


def test_component_with_two_keys_is_rejected() -> None:
    found = issues("classify:\n  - {rules: {}, other: {}}\n")
    assert found[0].startswith("p.yaml:2:5: classify[0]:")


def test_preferences_accept_weight_suffix() -> None:
    policy, _ = parse_policy("preferences: {cost_weight: 0.5, quality_weight: 0.5}\n", "p.yaml", {})
    assert policy.preferences.weights == {"cost": 0.5, "quality": 0.5}


def test_negative_preference_is_located() -> None:
    found = issues("preferences:\n  cost: -1\n")
    assert found[0].startswith("p.yaml:2:3: preferences.cost:")


# --- errors found when the router builds the policy's components -----------------------------------


def router_issues(write_policy: Callable[[str], Path], text: str) -> list[str]:
    path = write_policy(text)
    with pytest.raises(PolicyError) as info:
        Router(path)
    return [str(i).replace(str(path), "p.yaml") for i in info.value.issues]


def test_unknown_classifier_names_place_and_alternatives(write_policy: Callable[[str], Path]) -> None:
    found = router_issues(write_policy, "classify:\n  - rulez: {threshold: 0.5}\n")
    assert len(found) == 1
    assert found[0].startswith("p.yaml:2:5: classify[0]: unknown classifier 'rulez'")
    assert "did you mean 'rules'?" in found[0]


def test_bad_component_parameter_is_located(write_policy: Callable[[str], Path]) -> None:
    found = router_issues(write_policy, "classify:\n  - rules:\n      head_chars: 5\n")
    assert found[0].startswith("p.yaml:3:7: classify[0].rules.head_chars:")


def test_unknown_component_parameter_is_located(write_policy: Callable[[str], Path]) -> None:
    found = router_issues(write_policy, "score:\n  - quality\n  - cost: {min_ratio: 3, colour: 1}\n")
    assert found == ["p.yaml:3:26: score[1].cost.colour: unknown field 'colour'"]


def test_threshold_out_of_range(write_policy: Callable[[str], Path]) -> None:
    found = router_issues(write_policy, "classify:\n  - rules: {threshold: 1.5}\n")
    assert found[0].startswith("p.yaml:2:13: classify[0].rules.threshold: threshold must be a number in [0, 1]")


def test_unknown_model_suggests_close_ids(write_policy: Callable[[str], Path]) -> None:
    found = router_issues(write_policy, "routes:\n  - when: {task: code}\n    models: [openai/gpt-4.2]\n")
    assert found[0].startswith("p.yaml:3:14: routes[0].models[0]: unknown model 'openai/gpt-4.2'; did you mean")
    assert "openai/gpt-4.1" in found[0]


def test_unknown_task_in_route(write_policy: Callable[[str], Path]) -> None:
    found = router_issues(write_policy, "routes:\n  - when: {task: coding}\n")
    assert found[0].startswith("p.yaml:2:12: routes[0].when.task: unknown task 'coding'")


def test_preference_for_missing_scorer(write_policy: Callable[[str], Path]) -> None:
    found = router_issues(write_policy, "preferences: {qualty: 1}\n")
    assert found[0].startswith("p.yaml:1:15: preferences.qualty: no scorer named 'qualty'")


def test_new_model_needs_its_fields(write_policy: Callable[[str], Path]) -> None:
    found = router_issues(write_policy, "models:\n  - id: local/tiny\n    context_window: 4096\n")
    assert any("models[0].price: a new model needs 'price'" in f for f in found)
    assert any("max_output_tokens" in f for f in found)


def test_missing_policy_file() -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        Router("/nonexistent/policy.yaml")


def test_json_schema_includes_component_parameters() -> None:
    from llm_router.builtin.classifiers import RulesConfig

    schema = policy_json_schema({"classifier": {"rules": RulesConfig}})
    json.dumps(schema)
    items = schema["properties"]["classify"]["items"]["anyOf"]
    assert items[0] == {"type": "string", "enum": ["rules"]}
    assert "head_chars" in json.dumps(items[1])
    assert schema["properties"]["fallback"]
