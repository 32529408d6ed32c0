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


def test_top_two_is_the_head_of_the_full_ranking() -> None:
    """The classifier picks its winner and runner-up without sorting every task: the same answer as the head of
    the sorted ranking (highest score, ties to the smaller task name), ties and single tasks included."""
    import random

    from llm_router.builtin.classifiers import _top_two

    rng = random.Random(7)
    tasks = ["chat", "code", "math", "open_qa", "summarization", "translation", "b", "a"]
    for _ in range(2000):
        names = rng.sample(tasks, rng.randint(1, 8))
        scores = {n: rng.choice([0.0, 0.5, 1.0, 1.5, 2.0, 3.5]) for n in names}
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        expected = (ranked[0][0], ranked[0][1], ranked[1][1] if len(ranked) > 1 else 0.0)
        assert _top_two(scores) == expected, scores
