"""llm-router provider ``anthropic`` on the official Anthropic SDK (Messages API)."""

from .provider import AnthropicProvider

__all__ = ["AnthropicProvider"]
