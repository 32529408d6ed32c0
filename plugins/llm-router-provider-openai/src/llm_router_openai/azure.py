"""Azure OpenAI (``type: azure_openai``) through the SDK's ``openai.AsyncAzureOpenAI``.

The same chat completions wire format as OpenAI, sent to ``{endpoint}/openai/deployments/{deployment}/...``
with an ``api-version`` query parameter, authenticated by an ``api-key`` header (``AZURE_OPENAI_API_KEY``) or
by a Microsoft Entra ID token (``azure_ad_token``, or ``entra_id: true`` for azure-identity's
``DefaultAzureCredential``). The router's model name is the deployment name unless ``deployments`` maps it.

Errors are mapped as for OpenAI; Azure's content filter (HTTP 400, ``code: content_filter`` with
``innererror.content_filter_result``) becomes :class:`~llm_router.errors.ContentFilteredError`, and an answer the
filter cut short keeps ``finish_reason: content_filter``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from llm_router.errors import ProviderError
from llm_router.types import CompletionRequest
from pydantic import BaseModel, Field, SecretStr

from .provider import OpenAIConfig, OpenAIProvider

if TYPE_CHECKING:
    import openai

__all__ = ["AzureOpenAIConfig", "AzureOpenAIProvider"]

DEFAULT_API_VERSION = "2024-10-21"
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"


class AzureOpenAIConfig(OpenAIConfig):
    """Parameters of an ``azure_openai`` provider entry."""

    endpoint: str | None = Field(
        None, description="the resource endpoint, https://NAME.openai.azure.com (default: $AZURE_OPENAI_ENDPOINT)"
    )
    api_version: str = Field(
        DEFAULT_API_VERSION, description="the api-version query parameter (default: the GA version 2024-10-21)"
    )
    deployments: dict[str, str] = Field(
        default_factory=dict, description="model name → deployment name (default: the deployment is the model name)"
    )
    azure_ad_token: SecretStr | None = Field(
        None, description="a Microsoft Entra ID access token (write ${VAR}); replaces the key"
    )
    entra_id: bool = Field(
        False,
        description="authenticate with azure-identity's DefaultAzureCredential (pip install azure-identity) instead "
        "of a key",
    )
    http_client: Literal["aiohttp", "httpx"] = Field(  # type: ignore[assignment]
        "aiohttp", description="the SDK's HTTP client: aiohttp (default) or httpx"
    )


class AzureOpenAIProvider(OpenAIProvider):
    """Azure OpenAI deployments (chat completions, embeddings) through ``AsyncAzureOpenAI``."""

    name: ClassVar[str] = "azure_openai"
    Config: ClassVar[type[BaseModel]] = AzureOpenAIConfig
    default_key_env: ClassVar[str | None] = "AZURE_OPENAI_API_KEY"
    config: AzureOpenAIConfig

    def _endpoint(self) -> str | None:
        return self.config.endpoint or self.config.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT") or None

    def _token_auth(self) -> bool:
        return self.config.entra_id or self.config.azure_ad_token is not None

    def unavailable_reason(self) -> str | None:
        if self._endpoint() is None:
            return f"set AZURE_OPENAI_ENDPOINT (or providers.{self.context.name}.endpoint in the policy)"
        return None if self._token_auth() else super().unavailable_reason()

    def key_hint(self) -> str:
        hint = super().key_hint()
        return f"{hint}, or azure_ad_token / entra_id: true for Microsoft Entra ID"

    def _make_client(self, key: str | None) -> openai.AsyncAzureOpenAI:
        import openai

        config = self.config
        http_client: Any = None
        if config.http_client == "aiohttp":
            http_client = openai.DefaultAioHttpClient()
        auth: dict[str, Any] = {"api_key": key}
        if config.azure_ad_token is not None:
            auth = {"azure_ad_token": config.azure_ad_token.get_secret_value()}
        elif config.entra_id:
            auth = {"azure_ad_token_provider": self._entra_token_provider()}
        return openai.AsyncAzureOpenAI(
            **auth,
            azure_endpoint=self._endpoint() or "",
            api_version=config.api_version,
            organization=config.organization,
            timeout=config.timeout_s,
            max_retries=0,
            default_headers=config.headers or None,
            http_client=http_client,
        )

    def _entra_token_provider(self) -> Any:
        try:
            from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider
        except ImportError:
            raise ProviderError(
                "entra_id: true needs `pip install azure-identity`", provider=self.context.name
            ) from None
        return get_bearer_token_provider(DefaultAzureCredential(), ENTRA_SCOPE)

    def _params(self, request: CompletionRequest) -> dict[str, Any]:
        params = super()._params(request)
        params["model"] = self.config.deployments.get(request.model, request.model)
        return params

    async def embed(self, texts: list[str], model: str) -> list[list[float]]:
        return await super().embed(texts, self.config.deployments.get(model, model))
