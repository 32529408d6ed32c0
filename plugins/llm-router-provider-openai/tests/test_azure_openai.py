from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fakes import FakeAzureOpenAI
from llm_router.components import Provider
from llm_router.errors import ContentFilteredError, RateLimitError
from llm_router.testing import ProviderConformance, collect, make_provider, request_for
from llm_router_openai import AzureOpenAIProvider

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def fake_azure() -> Iterator[FakeAzureOpenAI]:
    with FakeAzureOpenAI() as fake:
        yield fake


@pytest.fixture
def upstream(fake_azure: FakeAzureOpenAI) -> FakeAzureOpenAI:
    fake_azure.reset()
    return fake_azure


@pytest.fixture
def model_id() -> str:
    return "gpt-4o"


class TestAzureOpenAIConformance(ProviderConformance):
    """The provider contract over the SDK's ``AsyncAzureOpenAI`` with each of its HTTP clients."""

    key_env = "AZURE_OPENAI_API_KEY"

    @pytest.fixture(params=["aiohttp", "httpx"])
    def http_client(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    def provider_class(self) -> type[Provider]:
        return AzureOpenAIProvider

    @pytest.fixture
    def provider_params(self, upstream: FakeAzureOpenAI, api_key: str, http_client: str) -> dict[str, Any]:
        return {"endpoint": upstream.base_url, "api_key": api_key, "http_client": http_client}


@pytest.fixture
async def azure(upstream: FakeAzureOpenAI, api_key: str) -> AsyncIterator[AzureOpenAIProvider]:
    params = {
        "endpoint": upstream.base_url,
        "api_key": api_key,
        "api_version": "2024-10-21",
        "deployments": {"gpt-4o": "prod-gpt4o-eu"},
    }
    p = make_provider(AzureOpenAIProvider, params, name="azure")
    assert isinstance(p, AzureOpenAIProvider)
    yield p
    await p.aclose()


async def test_deployment_url_api_version_and_key_header(
    azure: AzureOpenAIProvider, upstream: FakeAzureOpenAI, api_key: str
) -> None:
    await azure.complete(request_for("gpt-4o"))
    sent = upstream.last
    assert sent.path == "/openai/deployments/prod-gpt4o-eu/chat/completions"
    assert sent.headers["api-key"] == api_key
    assert "authorization" not in sent.headers
    vectors = await azure.embed(["a"], "gpt-4o")
    assert len(vectors) == 1
    assert upstream.last.path == "/openai/deployments/prod-gpt4o-eu/embeddings"


async def test_entra_id_token_instead_of_a_key(upstream: FakeAzureOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    p = make_provider(AzureOpenAIProvider, {"endpoint": upstream.base_url, "azure_ad_token": "entra-token-123"})
    try:
        assert p.unavailable_reason() is None
        await p.complete(request_for("gpt-4o"))
    finally:
        await p.aclose()
    assert upstream.last.headers["authorization"] == "Bearer entra-token-123"
    assert "entra-token-123" not in repr(p.config)


async def test_prompt_rejected_by_the_content_filter(azure: AzureOpenAIProvider, upstream: FakeAzureOpenAI) -> None:
    upstream.queue_error("content_filter")
    with pytest.raises(ContentFilteredError) as info:
        await azure.complete(request_for("gpt-4o"))
    assert info.value.status_code == 400
    assert not info.value.retryable
    assert "content management policy" in str(info.value)
    upstream.queue_error("content_filter")
    with pytest.raises(ContentFilteredError):
        await collect(azure.stream(request_for("gpt-4o")))


async def test_answer_cut_by_the_content_filter(azure: AzureOpenAIProvider, upstream: FakeAzureOpenAI) -> None:
    upstream.queue_filtered()
    response = await azure.complete(request_for("gpt-4o"))
    assert response.finish_reason == "content_filter"
    assert response.raw is not None
    assert response.raw["choices"][0]["content_filter_results"]["violence"]["filtered"] is True
    upstream.queue_filtered()
    chunks = await collect(azure.stream(request_for("gpt-4o")))
    assert "".join(c.text for c in chunks) == "I can't"
    assert any(c.finish_reason == "content_filter" for c in chunks)


async def test_stream_skips_the_prompt_filter_chunk(azure: AzureOpenAIProvider, upstream: FakeAzureOpenAI) -> None:
    upstream.queue_text("alpha beta", usage=(5, 2))
    chunks = await collect(azure.stream(request_for("gpt-4o")))
    assert [c.text for c in chunks if c.text] == ["alpha", " beta"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.output_tokens == 2


async def test_rate_limit_reads_azure_retry_headers(azure: AzureOpenAIProvider, upstream: FakeAzureOpenAI) -> None:
    upstream.queue_error("rate_limit", retry_after=12)
    with pytest.raises(RateLimitError) as info:
        await azure.complete(request_for("gpt-4o"))
    assert info.value.retry_after_s == pytest.approx(12)
    assert info.value.request_id


def test_unavailable_without_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    reason = make_provider(AzureOpenAIProvider, {"api_key": "k"}, name="azure").unavailable_reason()
    assert reason is not None
    assert "AZURE_OPENAI_ENDPOINT" in reason
