"""Faithful fake upstreams: local HTTP servers speaking the OpenAI, Anthropic, Cohere and Gemini wire formats
(and Azure OpenAI's variant of OpenAI's).

Each satisfies the upstream scripting protocol of :mod:`llm_router.testing` (``queue_text``, ``queue_error``,
``queue_stall``, ``requests``, ``open_streams``, ``base_url``). The real SDKs talk to them via ``base_url``.
"""

from .anthropic_api import FakeAnthropic
from .azure_openai_api import FakeAzureOpenAI
from .base import FakeUpstream, Recorded, Script
from .cohere_api import FakeCohere
from .gemini_api import FakeGemini
from .openai_api import FakeOpenAI

__all__ = [
    "FakeAnthropic",
    "FakeAzureOpenAI",
    "FakeCohere",
    "FakeGemini",
    "FakeOpenAI",
    "FakeUpstream",
    "Recorded",
    "Script",
]
