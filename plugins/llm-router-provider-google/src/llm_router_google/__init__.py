"""llm-router provider ``google`` on the official google-genai SDK (Gemini API; Vertex AI)."""

from .provider import GoogleConfig, GoogleProvider

__all__ = ["GoogleConfig", "GoogleProvider"]
