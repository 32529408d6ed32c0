"""Offline token counting for cost estimates and context-window checks.

Text is counted with OpenAI's BPE encoding ``o200k_base`` (other encodings on request) through the
``bpe-openai`` package, which ships the BPE tables, so nothing is downloaded. For OpenAI's current models
this is the exact count of the text; each message adds the chat format's overhead (3 tokens, plus 3 to
prime the reply, as OpenAI documents). For other vendors' models the count is an estimate: their tokenizers
differ and cannot be run offline to measure by how much, which is why the context-window constraint keeps a
safety margin for them (5 % by default).

Encodings load once per process (about 0.4 s; the Router loads the default one when it starts).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol

from .types import Message

__all__ = ["DEFAULT_ENCODING", "count_message_tokens", "count_text_tokens", "get_encoding"]

DEFAULT_ENCODING = "o200k_base"

PER_MESSAGE = 3
REPLY_PRIMING = 3
IMAGE_TOKENS = 765  # OpenAI's cost of one 512x512 tile plus base, a middle estimate for an image part
_lock = threading.Lock()


class _Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


@lru_cache(maxsize=8)
def get_encoding(name: str) -> _Encoding:
    """The BPE encoding ``name`` (``o200k_base``, ``cl100k_base``, …)."""
    import bpe_openai

    with _lock:
        encoding: Any = bpe_openai.get_encoding(name)
    return encoding  # type: ignore[no-any-return]


CHUNK_CHARS = 200_000


def _count(enc: _Encoding, text: str) -> int:
    """Tokens in ``text``; very long text is counted in whitespace-aligned chunks (the BPE library refuses
    inputs over a million characters, and chunking at whitespace changes the count by at most a token a
    chunk)."""
    if len(text) <= CHUNK_CHARS:
        return len(enc.encode_ordinary(text)) if text else 0
    total, start = 0, 0
    while start < len(text):
        end = min(len(text), start + CHUNK_CHARS)
        if end < len(text):
            cut = text.rfind(" ", start + CHUNK_CHARS // 2, end)
            end = cut if cut > start else end
        total += len(enc.encode_ordinary(text[start:end]))
        start = end
    return total


def count_text_tokens(text: str, encoding: str = "o200k_base") -> int:
    return _count(get_encoding(encoding), text)


def count_message_tokens(messages: Sequence[Message], encoding: str = DEFAULT_ENCODING) -> int:
    """Tokens the messages take as a chat prompt, including the chat format's overhead."""
    enc = get_encoding(encoding)
    total = REPLY_PRIMING
    for message in messages:
        total += PER_MESSAGE
        content = message.content
        if isinstance(content, str):
            total += _count(enc, content)
        elif content:
            for part in content:
                if part.get("type") == "text":
                    total += _count(enc, str(part.get("text", "")))
                else:
                    total += IMAGE_TOKENS
        if message.name:
            total += 1
        if message.tool_calls:
            total += _count(enc, str(message.tool_calls))
    return total
