"""llm-router provider ``cohere`` on the official Cohere SDK (v2 chat, embed)."""

from .provider import CohereProvider

__all__ = ["CohereProvider"]
