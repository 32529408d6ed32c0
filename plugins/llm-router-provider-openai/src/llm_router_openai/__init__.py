"""llm-router providers ``openai`` and ``openai_compatible`` on the official OpenAI SDK."""

from .provider import OpenAICompatibleProvider, OpenAIProvider

__all__ = ["OpenAICompatibleProvider", "OpenAIProvider"]
