"""The example provider passes the conformance kit. A third party would write its own fake upstream that
satisfies the kit's scripting protocol; this example borrows the repository's OpenAI fake."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakes import FakeOpenAI
from llm_router.components import Provider
from llm_router.testing import ProviderConformance
from llm_router_example import TinyChatProvider


@pytest.fixture(scope="module")
def fake_upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def upstream(fake_upstream: FakeOpenAI) -> FakeOpenAI:
    fake_upstream.reset()
    return fake_upstream


@pytest.fixture
def model_id() -> str:
    return "tiny-1"


class TestTinyChatConformance(ProviderConformance):
    key_env = "TINYCHAT_API_KEY"

    @pytest.fixture
    def provider_class(self) -> type[Provider]:
        return TinyChatProvider
