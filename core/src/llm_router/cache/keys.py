"""Cache keys: the parts of a request that determine its answer, normalised and hashed.

The exact key covers the messages, the pinned model (or none: ``auto``), the routing inputs that change the
choice (preferences, constraints, the metadata the policy's routes match on), the generation parameters, tools,
tool choice and response format, and the partition (the gateway key under ``scope: key``). It leaves out what
does not change the answer: the request id, streaming, timeouts and the cache options themselves.

The semantic *context* key is the same with the last user turn's text left out: a semantic hit needs the same
context (system prompt, earlier turns, tools, response format, routing inputs) and a similar last user turn.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from ..types import Message, RouteRequest

__all__ = ["context_key", "exact_key", "semantic_text"]

try:
    import orjson

    def _dumps(data: Any) -> bytes:
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)

except ImportError:  # pragma: no cover - the gateway-fast extra brings orjson

    def _dumps(data: Any) -> bytes:
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


_LAST = "\x00last-user-turn\x00"


def _message(m: Message, content: Any) -> tuple[Any, ...]:
    return (m.role, content, m.name, m.tool_calls, m.tool_call_id)


def _last_user(messages: tuple[Message, ...]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            return i
    return len(messages) - 1


def _parts(request: RouteRequest, messages: list[tuple[Any, ...]], route_metadata: Iterable[str]) -> bytes:
    constraints = request.constraints
    cons = None
    if constraints is not None:
        cons = {
            k: sorted(v) if isinstance(v, frozenset) else v
            for k, v in constraints.__dict__.items()
            if v is not None and v != frozenset()
        }
    metadata = request.metadata
    meta = {k: metadata[k] for k in route_metadata if k in metadata} if metadata else None
    cache = request.cache
    return _dumps(
        (
            1,
            cache.partition if cache is not None else None,
            request.model,
            messages,
            request.preferences.weights if request.preferences is not None else None,
            cons,
            meta,
            request.max_tokens if request.max_tokens is not None else request.default_max_tokens,
            request.temperature,
            request.stop,
            request.response_format,
            request.tools,
            request.tool_choice,
        )
    )


def exact_key(request: RouteRequest, route_metadata: Iterable[str] = ()) -> str:
    """The exact cache key of ``request`` (hex)."""
    messages = [_message(m, m.content) for m in request.messages]
    return hashlib.blake2b(_parts(request, messages, route_metadata), digest_size=20).hexdigest()


def context_key(request: RouteRequest, route_metadata: Iterable[str] = ()) -> str:
    """The semantic cache's context: the exact key's parts with the last user turn's text left out."""
    last = _last_user(request.messages)
    messages = [_message(m, _LAST if i == last else m.content) for i, m in enumerate(request.messages)]
    return hashlib.blake2b(_parts(request, messages, route_metadata), digest_size=20).hexdigest()


def semantic_text(request: RouteRequest, max_chars: int) -> str | None:
    """The text a semantic lookup embeds: the last user turn (``None`` when it has no text: an image alone)."""
    text = request.messages[_last_user(request.messages)].text().strip()
    return text[:max_chars] if text else None
