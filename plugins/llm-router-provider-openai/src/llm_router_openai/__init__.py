"""llm-router providers ``openai``, ``openai_compatible`` and ``azure_openai`` on the official OpenAI SDK."""

from .azure import AzureOpenAIProvider
from .provider import OpenAICompatibleProvider, OpenAIProvider

__all__ = ["AzureOpenAIProvider", "OpenAICompatibleProvider", "OpenAIProvider"]
