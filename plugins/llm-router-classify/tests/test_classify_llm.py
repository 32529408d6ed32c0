"""The llm classifier against the fake OpenAI upstream, through the router's provider layer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fakes import FakeOpenAI
from llm_router import Router

pytest.importorskip("llm_router_openai")
pytestmark = pytest.mark.anyio

PROMPT = "Could you help me with this: my grandmother's recipe needs adapting for a crowd."


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as f:
        yield f


@pytest.fixture
def router(fake: FakeOpenAI) -> Iterator[Router]:
    fake.reset()
    policy: dict[str, Any] = {
        "providers": {"openai": {"type": "openai", "base_url": fake.base_url, "api_key": "sk-test-0000"}},
        "classify": [
            {"rules": {"threshold": 1.0}},
            {"learned": {"threshold": 1.0}},
            {"llm": {"model": "openai/gpt-4o-mini", "timeout_s": 0.5, "max_tokens": 30}},
        ],
    }
    with Router(policy) as r:
        # the provider imports its SDK on first use: import it now, not inside the stage's 0.5 s timeout
        r.providers["openai"].warm_up()
        yield r


async def test_a_valid_answer_decides(router: Router, fake: FakeOpenAI) -> None:
    fake.queue_text('{"label": "brainstorming", "confidence": 0.93}')
    c = (await router.aroute(PROMPT)).classification
    assert (c.task, c.method, c.confidence) == ("brainstorming", "llm", pytest.approx(0.93))
    assert [s.classifier for s in c.stages] == ["rules", "learned", "llm"]
    sent = fake.last.json
    assert sent["model"] == "gpt-4o-mini"
    assert sent["max_tokens"] == 30
    assert sent["temperature"] == 0
    assert sent["response_format"] == {"type": "json_object"}
    system = sent["messages"][0]["content"]
    assert "- summarization: condense a given text" in system
    assert '"label"' in system
    assert sent["messages"][1]["content"] == PROMPT


async def test_a_fenced_answer_with_odd_case_is_accepted(router: Router, fake: FakeOpenAI) -> None:
    fake.queue_text('```json\n{"label": "Open_QA", "confidence": 1}\n```')
    c = (await router.aroute(PROMPT)).classification
    assert (c.task, c.method) == ("open_qa", "llm")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("I think it is brainstorming.", "invalid JSON"),
        ('{"label": "cooking", "confidence": 0.9}', "unknown label 'cooking'"),
        ('{"label": "math", "confidence": 7}', "confidence must be"),
        ('["math"]', "lacks a string 'label'"),
    ],
)
async def test_a_bad_answer_keeps_the_best_earlier_guess(
    router: Router, fake: FakeOpenAI, answer: str, reason: str
) -> None:
    fake.queue_text(answer)
    c = (await router.aroute(PROMPT)).classification
    learned = c.stages[1]
    assert c.method in ("learned (below threshold)", "rules (below threshold)")
    assert c.task == max((s for s in c.stages[:2] if s.task), key=lambda s: s.confidence).task
    assert learned.task is not None
    llm = c.stages[2]
    assert llm.task is None
    assert not llm.accepted
    assert reason in (llm.error or "")


async def test_a_timeout_keeps_the_best_earlier_guess(router: Router, fake: FakeOpenAI) -> None:
    fake.queue_stall(3.0)
    c = (await router.aroute(PROMPT)).classification
    assert c.method.endswith("(below threshold)")
    assert "timeout after 0.5 s" in (c.stages[2].error or "")
    assert c.stages[2].time_ms < 2500


async def test_a_provider_error_keeps_the_best_earlier_guess(router: Router, fake: FakeOpenAI) -> None:
    fake.queue_error("server")
    c = (await router.aroute(PROMPT)).classification
    assert c.method.endswith("(below threshold)")
    assert "openai/gpt-4o-mini failed" in (c.stages[2].error or "")


def test_the_sync_router_runs_the_async_stage(router: Router, fake: FakeOpenAI) -> None:
    fake.queue_text(json.dumps({"label": "chat", "confidence": 0.8}))
    c = router.route("hey there").classification
    assert c.task == "chat"
