"""Hostile or broken policy input: every case is a PolicyError naming file:line:column, and exit 2 on the CLI.

NUL bytes, bytes that are not UTF-8, nesting deep enough to exhaust Python's recursion, YAML tags that build
other objects, and alias bombs ("billion laughs") are refused with a clear message, never a traceback; a
policy that uses a few anchors, aliases and merge keys the ordinary way still loads.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from llm_router.cli import build_app
from llm_router.errors import PolicyError, PolicyIssue
from llm_router.policy import MAX_ALIAS_NODES, MAX_DEPTH, load_policy, parse_policy
from typer.testing import CliRunner


@pytest.fixture(autouse=True)
def _no_third_party_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_ROUTER_DISABLE_PLUGIN_AUTOLOAD", "1")


def billion_laughs(levels: int = 7) -> str:
    """``a0`` is 9 strings; each ``a<i>`` is 9 aliases of ``a<i-1>``: ``a7`` stands for 9**8 values."""
    lines = ["version: 1", "a0: &a0 [" + ", ".join(['"lol"'] * 9) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def deep_params(levels: int) -> str:
    """A component parameter nested ``levels`` lists deep: the innermost list is at depth 4 + levels
    (the policy mapping, ``score``, its item, the item's parameters)."""
    return "score:\n  - quality: {deep: " + "[" * levels + "]" * levels + "}\n"


# Each case: file content, then (line, column) of the problem and a piece of its message.
BAD_FILES: dict[str, tuple[bytes, tuple[int, int], str]] = {
    "nul": (b"version: 1\nfallback: {retries: 1\x00}\n", (2, 22), "contains a NUL byte (U+0000)"),
    "control": (b"version: 1\n\x1b[31m: 1\n", (2, 1), "control character U+001B"),
    "not-utf8": (b"version: 1\nroutes:\n  - name: caf\xe9\n", (3, 14), "not valid UTF-8: byte 0xe9"),
    "deep": (b"x: " + b"[" * 10_000 + b"]" * 10_000 + b"\n", (1, 3 + MAX_DEPTH), f"deeper than {MAX_DEPTH} levels"),
    "tag": (b"version: 1\nfallback: {retries: !foo 2}\n", (2, 21), "unsupported YAML tag '!foo'"),
    "bomb": (billion_laughs().encode(), (6, 10), f"aliases stand for more than {MAX_ALIAS_NODES:,} values"),
}


def only_issue(path: Path) -> PolicyIssue:
    with pytest.raises(PolicyError) as info:
        load_policy(path, env={})
    assert len(info.value.issues) == 1, info.value
    return info.value.issues[0]


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_input_is_a_policy_error_with_its_position(case: str, tmp_path: Path) -> None:
    content, (line, column), message = BAD_FILES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(content)
    issue = only_issue(path)
    assert (issue.file, issue.line, issue.column) == (str(path), line, column)
    assert message in issue.message


@pytest.mark.parametrize("command", [["policy", "validate"], ["route", "hello", "-p"]])
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_cli_exits_2_with_the_position(case: str, command: list[str], tmp_path: Path) -> None:
    content, (line, column), message = BAD_FILES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(content)
    result = CliRunner().invoke(build_app(), [*command, str(path)])
    assert result.exit_code == 2, (result.output, result.exception)
    assert f"{path}:{line}:{column}:" in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_alias_bomb_is_refused_before_anything_is_expanded(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs(), encoding="utf-8")
    tracemalloc.start()
    try:
        issue = only_issue(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the alias that crosses the limit: the first *a3 in a4 (a3 stands for 9 + 9**2 + 9**3 + 9**4 values + 1)
    assert (issue.line, issue.column, issue.field) == (6, 10, "a4[0]")
    assert "*a3 alone stands for 7,381" in issue.message
    assert peak < 5_000_000  # bytes; expanding a7 takes gigabytes


def test_aliases_are_counted_as_what_they_stand_for_up_to_the_limit() -> None:
    # an anchored list of 99 numbers is 100 values; MAX_ALIAS_NODES / 100 aliases of it are allowed
    allowed = MAX_ALIAS_NODES // 100
    anchor = "[" + ", ".join(["1"] * 99) + "]"

    def policy(aliases: int) -> str:
        return f"score:\n  - quality: {{a: &a {anchor}, b: [{', '.join(['*a'] * aliases)}]}}\n"

    parsed, _ = parse_policy(policy(allowed), "p.yaml", {})
    assert len(parsed.score[0].params["b"]) == allowed
    assert parsed.score[0].params["b"][-1] == [1] * 99
    with pytest.raises(PolicyError) as info:
        parse_policy(policy(allowed + 1), "p.yaml", {})
    (issue,) = info.value.issues
    column = len("  - quality: {a: &a , b: [") + len(anchor) + 1 + len("*a, ") * allowed
    assert (issue.line, issue.column, issue.field) == (2, column, f"score[0].quality.b[{allowed}]")


def test_nesting_up_to_the_limit_loads() -> None:
    policy, _ = parse_policy(deep_params(MAX_DEPTH - 4), "p.yaml", {})
    value = policy.score[0].params["deep"]
    for _ in range(MAX_DEPTH - 5):
        (value,) = value
    assert value == []
    with pytest.raises(PolicyError, match=f"deeper than {MAX_DEPTH} levels"):
        parse_policy(deep_params(MAX_DEPTH - 3), "p.yaml", {})


def test_nesting_through_aliases_counts() -> None:
    # each level nests the previous one 20 lists deeper: no single node is deep, the expanded data is
    levels = [f"d0: &d0 {'[' * 20}1{']' * 20}"]
    levels += [f"d{i}: &d{i} {'[' * 20}*d{i - 1}{']' * 20}" for i in range(1, 5)]
    with pytest.raises(PolicyError) as info:
        parse_policy("\n".join(levels) + "\n", "p.yaml", {})
    (issue,) = info.value.issues
    # d2 is 61 levels deep (60 lists and a number); *d2 sits at level 22 of d3 (the policy, then 20 lists)
    assert (issue.line, issue.column) == (4, 29)
    assert f"alias *d2 nests the policy deeper than {MAX_DEPTH} levels" in issue.message


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy("version: 1\nx: &a [1, *a]\n", "p.yaml", {})
    assert [str(i) for i in info.value.issues] == [
        "p.yaml:2:11: x[1]: alias *a is inside the node it names (a recursive structure)"
    ]


def test_a_few_anchors_aliases_and_merge_keys_keep_working(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text(
        "version: 1\n"
        "providers:\n"
        "  work: &work {type: openai, api_key: '${WORK_KEY}', timeout: 30}\n"
        "  batch:\n"
        "    <<: *work\n"
        "    timeout: 300\n"
        "  mixed: {<<: [{timeout: 5}, *work], region: eu}\n"
        "routes:\n"
        "  - when: {task: code}\n"
        "    models: &strong [openai/gpt-4.1, openai/o3]\n"
        "    preferences: &quality {quality: 0.9, cost: 0.1}\n"
        "  - when: {task: math}\n"
        "    models: *strong\n"
        "    preferences: *quality\n",
        encoding="utf-8",
    )
    policy, source = load_policy(path, env={"WORK_KEY": "sk-1"})
    params = {name: spec.params() for name, spec in policy.providers.items()}
    assert params["work"] == {"api_key": "sk-1", "timeout": 30}
    assert params["batch"] == {"api_key": "sk-1", "timeout": 300}  # the mapping's own key wins
    assert params["mixed"] == {"api_key": "sk-1", "timeout": 5, "region": "eu"}  # the first listed wins
    assert policy.providers["batch"].type == "openai"
    assert policy.routes[1].models == ["openai/gpt-4.1", "openai/o3"]
    assert policy.routes[1].preferences == policy.routes[0].preferences
    assert source.positions[("providers", "batch", "timeout")] == (6, 5)
    assert source.positions[("providers", "batch", "type")] == (3, 16)  # merged: where the anchor says it


def test_merged_keys_are_checked_like_any_other(tmp_path: Path) -> None:
    text = "version: 1\nfallback:\n  <<: &f {retries: many}\n  backoff_ms: 1\n"
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "p.yaml", {})
    (issue,) = info.value.issues
    assert (issue.line, issue.column, issue.field) == (3, 11, "fallback.retries")
    with pytest.raises(PolicyError, match="merges a mapping or a list of mappings"):
        parse_policy("fallback: {<<: 3}\n", "p.yaml", {})
    twice = "fallback: {<<: &f {retries: 1}, retries: 2, retries: 3}\n"
    with pytest.raises(PolicyError, match=r"duplicate key 'retries' \(first defined on line 1\)"):
        parse_policy(twice, "p.yaml", {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fallback: !foo {retries: 1}\n", "unsupported YAML tag '!foo'"),
        ("version: !!python/object/apply:os.system [echo]\n", "unsupported YAML tag '!!python/object/apply:os.system'"),
        ("models: !!set {a, b}\n", "unsupported YAML tag '!!set'"),
        ("gateway: {ledger: !!binary aGVsbG8=}\n", "unsupported YAML tag '!!binary'"),
        ("fallback: {retries: " + "1" * 5000 + "}\n", "cannot read '1111"),
        ("fallback: {retries: !!float many}\n", "cannot read 'many' as !!float"),
        ("fallback: {? [a, b] : 1}\n", "keys must be strings, got a list"),
    ],
)
def test_values_yaml_cannot_make_plain_are_refused(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "p.yaml", {})
    (issue,) = info.value.issues
    assert issue.line == 1 and issue.column is not None
    assert message in issue.message


def test_standard_tags_and_a_plain_merge_sign_value_still_work() -> None:
    policy, _ = parse_policy("version: !!int 1\nroutes:\n  - name: <<\n    models: !!seq ['*']\n", "p.yaml", {})
    assert policy.routes[0].name == "<<"
    assert policy.routes[0].models == ["*"]
