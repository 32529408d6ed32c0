"""The response cache as the executor uses it: look a request up, replay a hit, store an answer.

A lookup says what happened (``hit``, ``semantic``, ``miss`` or ``bypass``); a hit is answered as a
:class:`~llm_router.RoutingResult` of the same shape as a fresh one, at cost 0 with ``saved_cost`` the
cached answer's cost. Only answers are stored, never errors. A back-end that fails (Redis away) never fails a
request: the lookup reports ``bypass`` and the operator's log says why (at most once a minute).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

import anyio

from ..types import (
    CacheOptions,
    CompletionResponse,
    ModelRef,
    RouteRequest,
    RoutingDecision,
    RoutingResult,
    StreamChunk,
    ToolCall,
    Usage,
    construct,
)
from .backends import CacheBackend, make_backend
from .config import CachePolicy
from .keys import context_key, exact_key, semantic_text
from .semantic import Embed, EmbedderFactory, SemanticIndex, resolve_embedder

__all__ = ["CachedAnswer", "Lookup", "ResponseCache"]

log = logging.getLogger("llm_router.cache")

try:
    import orjson

    def _dumps(data: Any) -> bytes:
        return orjson.dumps(data)

    def _loads(data: bytes) -> Any:
        return orjson.loads(data)

except ImportError:  # pragma: no cover

    def _dumps(data: Any) -> bytes:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()

    def _loads(data: bytes) -> Any:
        return json.loads(data)


REPLAY_CHARS = 64
"""A replayed stream sends the cached text in chunks of about this many characters (cut after a space)."""


@dataclass(slots=True)
class CachedAnswer:
    """A stored answer: what the model said and what it cost."""

    response: CompletionResponse
    model: ModelRef
    cost: float

    def encode(self) -> bytes:
        r = self.response
        usage = r.usage or Usage()
        return _dumps(
            {
                "v": 1,
                "text": r.text,
                "model": r.model,
                "finish_reason": r.finish_reason,
                "tool_calls": [[t.id, t.name, t.arguments] for t in r.tool_calls],
                "usage": [usage.input_tokens, usage.output_tokens],
                "ref": [self.model.id, self.model.provider, self.model.model],
                "cost": self.cost,
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> CachedAnswer:
        d = _loads(data)
        usage = construct(Usage, input_tokens=d["usage"][0], output_tokens=d["usage"][1])
        response = construct(
            CompletionResponse,
            text=d["text"],
            model=d["model"],
            finish_reason=d["finish_reason"],
            tool_calls=tuple(construct(ToolCall, id=a, name=b, arguments=c) for a, b, c in d["tool_calls"]),
            usage=usage,
            request_id=None,
            raw=None,
        )
        ref = construct(ModelRef, id=d["ref"][0], provider=d["ref"][1], model=d["ref"][2])
        return cls(response, ref, float(d["cost"]))

    def chunks(self) -> list[StreamChunk]:
        """The answer as a stream: text pieces, then a last chunk with the finish reason and usage."""
        text, out, start = self.response.text, [], 0
        while start < len(text):
            end = min(len(text), start + REPLAY_CHARS)
            if end < len(text):
                space = text.rfind(" ", start + 1, end)
                end = space + 1 if space > start else end
            piece = text[start:end]
            out.append(
                construct(StreamChunk, text=piece, finish_reason=None, tool_calls=(), usage=None, request_id=None)
            )
            start = end
        out.append(
            construct(
                StreamChunk,
                text="",
                finish_reason=self.response.finish_reason or "stop",
                tool_calls=(),
                usage=self.response.usage,
                request_id=None,
            )
        )
        return out


@dataclass(slots=True)
class Lookup:
    """What a lookup found, and what storing the answer needs."""

    status: Literal["hit", "semantic", "miss", "bypass"]
    answer: CachedAnswer | None = None
    key: str | None = None
    context: str | None = None
    vector: Any = None
    store: bool = False
    ttl_s: float = 0.0


_NO_OPTIONS = CacheOptions()


class ResponseCache:
    """The policy's ``cache:`` section at work (built once per Router)."""

    def __init__(
        self,
        policy: CachePolicy,
        *,
        route_metadata: frozenset[str] = frozenset(),
        embedders: dict[str, tuple[str, EmbedderFactory]] | None = None,
    ) -> None:
        self.policy = policy
        self.route_metadata = tuple(sorted(route_metadata))
        self.backend: CacheBackend | None = (
            make_backend(policy.backend, url=policy.url, namespace=policy.namespace, max_bytes=policy.max_bytes)
            if policy.exact
            else None
        )
        self.semantic = policy.semantic
        self.index: SemanticIndex | None = None
        self._factory: EmbedderFactory | None = None
        self._embed: Embed | None = None
        if self.semantic is not None:
            found = (embedders or {}).get(self.semantic.embedder)
            if found is None:
                resolve_embedder(self.semantic.embedder, embedders or {}, self.semantic.threads)  # raises
            else:
                self._factory = found[1]
            self.index = SemanticIndex(self.semantic.max_entries)
        self.counts = {"hit": 0, "semantic": 0, "miss": 0, "bypass": 0}
        self._warned = 0.0

    # ----------------------------------------------------------------------------------------------
    # lookups

    async def lookup(self, request: RouteRequest) -> Lookup:
        options = request.cache or _NO_OPTIONS
        ttl = options.ttl_s or self.policy.ttl_s
        store = not options.no_store
        if options.no_cache:
            return self._counted(Lookup("bypass", store=store, ttl_s=ttl, key=self._key(request, store)))
        found = Lookup("miss", store=store, ttl_s=ttl)
        backend = self.backend
        try:
            if backend is not None:
                found.key = key = exact_key(request, self.route_metadata)
                data = await backend.get(key)
                await backend.count(data is not None)
                if data is not None:
                    found.status, found.answer = "hit", CachedAnswer.decode(data)
                    return self._counted(found)
            if self._wants_semantic(options):
                await self._semantic_lookup(request, found)
        except Exception as exc:
            self._warn("lookup", exc)
            found.status = "bypass"
        return self._counted(found)

    def _key(self, request: RouteRequest, store: bool) -> str | None:
        return exact_key(request, self.route_metadata) if store and self.backend is not None else None

    def _wants_semantic(self, options: CacheOptions) -> bool:
        sem = self.semantic
        return sem is not None and (options.semantic if options.semantic is not None else sem.always)

    async def _semantic_lookup(self, request: RouteRequest, found: Lookup) -> None:
        sem, index = self.semantic, self.index
        assert sem is not None
        assert index is not None
        text = semantic_text(request, sem.max_chars)
        if text is None:
            return
        found.context = context = context_key(request, self.route_metadata)

        def embed_and_search() -> tuple[Any, bytes | None]:
            vector = index.unit(self.embedder()([text])[0])
            return vector, index.search(context, vector, sem.threshold)

        found.vector, data = await anyio.to_thread.run_sync(embed_and_search)
        if data is not None:
            found.status, found.answer = "semantic", CachedAnswer.decode(data)

    def embedder(self) -> Embed:
        """The semantic cache's embedding function (loaded on first use, in a worker thread)."""
        if self._embed is None:
            assert self._factory is not None
            assert self.semantic is not None
            self._embed = self._factory(self.semantic.threads)
        return self._embed

    def _counted(self, found: Lookup) -> Lookup:
        self.counts[found.status] += 1
        return found

    def hit_result(self, found: Lookup, decision: RoutingDecision, t0: float) -> RoutingResult:
        """A cache hit as a result of the same shape as a fresh answer: cost 0, ``saved_cost`` what it cost."""
        answer = found.answer
        assert answer is not None
        return construct(
            RoutingResult,
            decision=decision,
            response=answer.response,
            selected_model=answer.model,
            usage=answer.response.usage or Usage(),
            estimated_cost=0.0,
            cost=0.0,
            latency_ms=(time.perf_counter() - t0) * 1000,
            attempts=(),
            cache=found.status,
            saved_cost=answer.cost,
        )

    # ----------------------------------------------------------------------------------------------
    # storing

    async def store(self, found: Lookup, result: RoutingResult) -> None:
        """Keep ``result``'s answer (an answer that reached the caller whole; never an error)."""
        if not found.store or found.answer is not None:
            return
        data = CachedAnswer(result.response, result.selected_model, result.cost).encode()
        try:
            if found.key is not None and self.backend is not None:
                await self.backend.set(found.key, data, found.ttl_s)
            if found.vector is not None and found.context is not None and self.index is not None:
                self.index.add(found.context, found.vector, data, found.ttl_s)
        except Exception as exc:
            self._warn("store", exc)

    def _warn(self, what: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned >= 60:
            self._warned = now
            log.warning("response cache %s failed (answered without the cache): %s: %s", what, type(exc).__name__, exc)

    # ----------------------------------------------------------------------------------------------
    # administration

    async def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"exact": self.policy.exact, "semantic": self.semantic is not None}
        if self.backend is not None:
            out.update(await self.backend.stats())
        if self.index is not None:
            out["semantic_entries"] = self.index.size
        out["this_process"] = dict(self.counts)
        return out

    async def clear(self) -> int:
        n = await self.backend.clear() if self.backend is not None else 0
        if self.index is not None:
            n += self.index.clear()
        return n

    async def aclose(self) -> None:
        if self.backend is not None:
            await self.backend.aclose()
