"""`llm-router cache stats|clear` against a real Redis back-end, and `llm-router calibrate cache` (its data
formats, its threshold choice and its errors)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from llm_router import Router
from llm_router.cache.calibrate import calibrate, load_pairs, pick_threshold, rates
from llm_router.cli import build_app
from test_semantic_cache import trigram_embed
from typer.testing import CliRunner

POLICY = """
providers:
  a: {type: scripted, models: [small], price_in: 1, price_out: 2}
preferences: {cost: 1}
cache: {exact: true, backend: redis, url: '%s', namespace: t-cli}
"""


def test_stats_and_clear_on_the_shared_backend(write_policy: Callable[..., Path], redis_url: str) -> None:
    path = write_policy(POLICY % redis_url)
    router = Router(path)
    try:
        router.route_and_execute("one")
        router.route_and_execute("two")
        router.route_and_execute("two")
    finally:
        router.close()
    runner = CliRunner()
    stats = runner.invoke(build_app(plugins=False), ["cache", "stats", "--policy", str(path), "--json"])
    assert stats.exit_code == 0, stats.output
    data = json.loads(stats.stdout)
    assert (data["backend"], data["entries"], data["hits"], data["misses"]) == ("redis", 2, 1, 2)
    assert data["url"] == redis_url
    cleared = runner.invoke(build_app(plugins=False), ["cache", "clear", "--policy", str(path)])
    assert cleared.exit_code == 0 and "removed 2 cached answers" in cleared.stdout
    again = json.loads(runner.invoke(build_app(plugins=False), ["cache", "stats", "-p", str(path), "--json"]).stdout)
    assert again["entries"] == 0


def test_redis_password_is_not_printed(write_policy: Callable[..., Path], redis_url: str) -> None:
    from llm_router.cache.backends import _redact

    assert _redact("redis://:s3cret@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert _redact("redis://user:s3cret@h/0") == "redis://user:***@h/0"


def test_stats_without_a_cache_section_exits_2(write_policy: Callable[..., Path]) -> None:
    path = write_policy("providers: {a: {type: scripted, models: [small]}}\n")
    result = CliRunner().invoke(build_app(plugins=False), ["cache", "stats", "--policy", str(path)])
    assert result.exit_code == 2 and "no response cache" in result.output


PAIRS = [
    ("How do I reset my password?", "How can I reset my password?", 1),
    ("What is the capital of France?", "what's the capital of France?", 1),
    ("Where is my order?", "Where is my order right now?", 1),
    ("How do I cancel my subscription?", "How can I cancel my subscription?", 1),
    ("How do I reset my password?", "What is the weather in Paris tomorrow?", 0),
    ("Where is my order?", "Write a haiku about autumn leaves", 0),
    ("What is the capital of France?", "Explain quantum entanglement simply", 0),
    ("How do I cancel my subscription?", "Translate 'good morning' into German", 0),
] * 3


def test_calibrate_separates_paraphrases_from_the_rest() -> None:
    found = calibrate(PAIRS, trigram_embed, 0.0)
    assert found.calibration[1] == 0.0  # no false hit on the calibration half
    assert found.holdout[0] == 1.0 and found.holdout[1] == 0.0
    assert 0 < found.threshold <= 1 and found.calibration_pairs + found.holdout_pairs == len(PAIRS)


def test_threshold_meets_the_target_false_hit_rate() -> None:
    sims = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    labels = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    t = pick_threshold(sims, labels, 0.25)  # 2 of 9 non-paraphrases may hit
    assert rates(sims, labels, t)[1] <= 0.25 and rates(sims, labels, t - 0.01)[1] > 0.25


def test_data_formats_and_errors(tmp_path: Path) -> None:
    mrpc = tmp_path / "mrpc.tsv"
    mrpc.write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tA cat sat.\tThe cat sat.\n")
    assert load_pairs(mrpc) == [("A cat sat.", "The cat sat.", 1)]
    paws = tmp_path / "paws.tsv"
    paws.write_text("id\tsentence1\tsentence2\tlabel\n1\tx y\ty x\t0\n")
    assert load_pairs(paws) == [("x y", "y x", 0)]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text1": "a", "text2": "b", "label": 1}\n{"text1": "a", "label": 1}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        load_pairs(bad)
    label = tmp_path / "label.jsonl"
    label.write_text('{"text1": "a", "text2": "b", "label": 7}\n')
    with pytest.raises(ValueError, match=r"label.jsonl:1: label must be 0 or 1"):
        load_pairs(label)


def test_calibrate_command_says_what_to_install(tmp_path: Path) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps({"text1": a, "text2": b, "label": y}) for a, b, y in PAIRS))
    result = CliRunner().invoke(build_app(), ["calibrate", "cache", "--data", str(data), "--embedder", "nope"])
    assert result.exit_code == 2
    assert "no plugin provides the embedder 'nope'" in result.output and "llm-router-classify[e5]" in result.output
    missing = CliRunner().invoke(build_app(), ["calibrate", "cache", "--data", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2 and "no such file" in missing.output
