"""The rule classifier: labels, calibrated confidence, long and multi-turn input."""

from __future__ import annotations

import pytest
from llm_router import Router
from llm_router.builtin.classifiers import Calibration


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(autoload=False)


@pytest.mark.parametrize(
    ("prompt", "task"),
    [
        ("Write a Python function to calculate fibonacci numbers", "code"),
        ("def add(a, b):\n    return a + b\nWhy does this raise a TypeError?", "code"),
        ("What is 17 * 23 + 5?", "math"),
        ("Solve the equation 3x + 5 = 20 for x", "math"),
        ("Write a poem about the sea", "creative_writing"),
        ("Summarize the following text in two sentences: Paris is the capital of France.", "summarization"),
        ("Translate 'where is the station' into German", "translation"),
        ("Give me 10 ideas for a birthday party", "brainstorming"),
        ("Classify each of the following as a fruit or a vegetable: apple, carrot", "classification"),
        ("hello!", "chat"),
        ("Who was the first president of the United States?", "open_qa"),
    ],
)
def test_labels(router: Router, prompt: str, task: str) -> None:
    assert router.route(prompt).classification.task == task


def test_no_signal_falls_back_to_default_task_with_low_confidence(router: Router) -> None:
    c = router.route("zxqv blorp").classification
    assert c.task == "chat"
    assert c.confidence < 0.5


def test_confidence_is_calibrated_and_monotone() -> None:
    cal = Calibration.builtin()
    values = [cal(x / 20) for x in range(21)]
    assert values == sorted(values)
    assert all(0 <= v <= 1 for v in values)


def test_long_prompt_is_cut_not_slowed(router: Router) -> None:
    prompt = "Summarize this text: " + ("lorem ipsum dolor sit amet " * 50_000)
    c = router.route(prompt).classification
    assert c.task == "summarization"
    assert c.stages[0].classifier == "rules"


def test_stages_are_recorded(router: Router) -> None:
    c = router.route("Write a poem about rain").classification
    assert len(c.stages) == 1
    stage = c.stages[0]
    assert stage.classifier == "rules" and stage.accepted and stage.time_ms >= 0
