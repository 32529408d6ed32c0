"""Offline token counting for cost estimates and context-window checks.

Text is counted with OpenAI's BPE encoding ``o200k_base`` (other encodings on request) through the
``bpe-openai`` package, which ships the BPE tables, so nothing is downloaded. For OpenAI's current models
this is the exact count of the text; each message adds the chat format's overhead (3 tokens, plus 3 to
prime the reply, as OpenAI documents). For other vendors' models the count is an estimate: their tokenizers
differ and cannot be run offline to measure by how much, which is why the context-window constraint keeps a
safety margin for them (5 % by default).

Start-up cost. Counting is done by bpe-openai's compiled tokenizer (its ``_bindings`` extension module, the
object its ``Encoding.encode_ordinary`` calls), which carries its tables pre-built: making the ``o200k_base``
tokenizer takes about 0.06 s, once per process. Importing the ``bpe_openai`` *package* instead costs about
0.6 s more, because on import it decodes three gzipped, base64 vocabularies in Python (o200k_base, cl100k_base
and voyage3_base, ~450,000 lines) to fill a table of special tokens, and ``get_encoding`` then copies one of
them again; none of that is used to count. So the extension module is loaded on its own, without running the
package's ``__init__``; when it cannot be (a bpe-openai release without it), the package's public API is used,
with the same counts and the old cost. ``tests/unit/test_tokens.py`` checks both give the same counts.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
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
_BINDINGS = "bpe_openai._bindings"
_lock = threading.Lock()


class _Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...

    def count(self, text: str) -> int: ...


def _sanitized(text: str) -> str:
    """``text`` with lone surrogates replaced (what bpe-openai's ``Encoding`` does before encoding)."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class _CompiledEncoding:
    """An encoding on bpe-openai's compiled tokenizer (``PyTokenizer``: ``encode``, ``count``)."""

    __slots__ = ("_backend", "name")

    def __init__(self, name: str, backend: Any) -> None:
        self.name = name
        self._backend = backend

    def encode_ordinary(self, text: str) -> list[int]:
        try:
            return list(self._backend.encode(text))
        except UnicodeEncodeError:
            return list(self._backend.encode(_sanitized(text)))

    def count(self, text: str) -> int:
        try:
            return int(self._backend.count(text))
        except UnicodeEncodeError:
            return int(self._backend.count(_sanitized(text)))

    def __repr__(self) -> str:
        return f"<encoding {self.name!r} (bpe-openai, compiled)>"


class _PackageEncoding:
    """An encoding through bpe-openai's public API (the fallback)."""

    __slots__ = ("_encoding", "name")

    def __init__(self, name: str, encoding: Any) -> None:
        self.name = name
        self._encoding = encoding

    def encode_ordinary(self, text: str) -> list[int]:
        return list(self._encoding.encode_ordinary(text))

    def count(self, text: str) -> int:
        return len(self._encoding.encode_ordinary(text))


def _compiled_module() -> Any | None:
    """bpe-openai's extension module, loaded without importing the ``bpe_openai`` package (see the module's
    docstring); ``None`` when this release of bpe-openai has none that can count."""
    module = sys.modules.get(_BINDINGS)
    if module is None:
        package = importlib.util.find_spec("bpe_openai")
        locations = package.submodule_search_locations if package is not None else None
        spec = importlib.machinery.PathFinder.find_spec(_BINDINGS, list(locations)) if locations else None
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        sys.modules[_BINDINGS] = module  # the package, if imported later, finds it here and does not load it again
        try:
            spec.loader.exec_module(module)
        except Exception:
            del sys.modules[_BINDINGS]
            return None
    has_api = all(hasattr(module, name) for name in ("tokenizer_for_encoding", "supported_encodings"))
    return module if has_api else None


@lru_cache(maxsize=8)
def get_encoding(name: str) -> _Encoding:
    """The BPE encoding ``name`` (``o200k_base``, ``cl100k_base``, …)."""
    with _lock:
        compiled = _compiled_module()
        if compiled is not None and name in compiled.supported_encodings():
            return _CompiledEncoding(name, compiled.tokenizer_for_encoding(name))
        import bpe_openai

        return _PackageEncoding(name, bpe_openai.get_encoding(name))


CHUNK_CHARS = 200_000


def _count(enc: _Encoding, text: str) -> int:
    """Tokens in ``text``; very long text is counted in whitespace-aligned chunks (the BPE library refuses
    inputs over a million characters, and chunking at whitespace changes the count by at most a token a
    chunk)."""
    if len(text) <= CHUNK_CHARS:
        return enc.count(text) if text else 0
    total, start = 0, 0
    while start < len(text):
        end = min(len(text), start + CHUNK_CHARS)
        if end < len(text):
            cut = text.rfind(" ", start + CHUNK_CHARS // 2, end)
            end = cut if cut > start else end
        total += enc.count(text[start:end])
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
