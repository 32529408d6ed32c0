"""Live latency learns the right thing: a whole answer only bounds time to first token (and, given enough
tokens, output speed from below); a stream measures both; priors give way as samples accumulate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fakes import FakeOpenAI
from llm_router import Router
from llm_router.state import PRIOR_WEIGHT, MemoryState, blend

pytest.importorskip("llm_router_openai")

PROMPT = "Write a Python function that reverses a string"
MODEL = "local/tiny"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def _policy(fake: FakeOpenAI) -> dict[str, Any]:
    return {
        "providers": {
            "local": {
                "type": "openai_compatible",
                "base_url": fake.base_url,
                "models": [
                    {"model": "tiny", "context_window": 32768, "price": {"input_per_mtok": 0, "output_per_mtok": 0}}
                ],
            }
        },
        # a fast local model: its priors say ~1,000 tokens/s after 200 ms
        "models": [{"id": MODEL, "ttft_ms": 200, "tokens_per_second": 1000}],
        "classify": [{"rules": {"threshold": 0.0}}],
        "constraints": {"max_latency_ms": 2000},
        "fallback": {"retries": 0},
    }


def test_the_seed_flow_keeps_routing_after_a_short_fast_answer(upstream: FakeOpenAI) -> None:
    """The documented flow: route_and_execute against a fast local server, again and again, under a 2 s
    latency limit. A 9-token answer in a few ms must not be read as the model's output speed."""
    upstream.reset()
    state = MemoryState()
    with Router(_policy(upstream), state=state) as router:
        before = router.route(PROMPT).top.estimated_latency_ms
        assert before < 2000
        for _ in range(5):
            upstream.queue_text("def reverse(s): return s[::-1]", usage=(20, 9))
            result = router.route_and_execute(PROMPT)
            assert result.selected_model.id == MODEL
        live = state.latency_table()[MODEL]
        assert live.tps_samples == 0  # 9 tokens say nothing about speed
        assert live.ttft_samples >= 1 and live.ttft_ms is not None and live.ttft_ms < 200  # an upper bound
        after = router.route(PROMPT).top.estimated_latency_ms
        assert after <= before


def test_a_stream_measures_ttft_and_speed(upstream: FakeOpenAI) -> None:
    upstream.reset()
    state = MemoryState()
    with Router(_policy(upstream), state=state) as router:
        words = " ".join(f"w{i}" for i in range(40))
        upstream.queue_text(words, usage=(20, 40), chunk_delay_s=0.002)
        chunks = list(router.stream(PROMPT))
        assert "".join(c.text for c in chunks) == words
        live = state.latency_table()[MODEL]
        assert live.ttft_samples == 1 and live.tps_samples == 1
        assert live.tokens_per_second is not None and live.tokens_per_second > 0


def test_priors_give_way_as_samples_accumulate() -> None:
    assert blend(1000.0, 100.0, 0) == 1000.0
    one = blend(1000.0, 100.0, 1)
    ten = blend(1000.0, 100.0, 10)
    assert one == pytest.approx((PRIOR_WEIGHT * 1000 + 100) / (PRIOR_WEIGHT + 1))
    assert 100 < ten < one < 1000  # more samples, closer to the measurement, never all the way from one call
    state = MemoryState(alpha=0.2)
    for sample in (10.0, 20.0, 30.0):
        state.record_success("m", sample, None)
    live = state.latency_table()["m"]
    assert live.ttft_samples == 3 and live.ttft_ms == pytest.approx(20.0)  # a plain mean while samples are few
    assert live.tps_samples == 0 and live.tokens_per_second is None
