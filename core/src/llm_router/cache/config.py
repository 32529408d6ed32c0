"""The policy's ``cache:`` section (exact and semantic response caching)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["CachePolicy", "SemanticCachePolicy"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SemanticCachePolicy(_Strict):
    """A hit when an earlier prompt of the same context (scope, system prompt and other turns, tools, response
    format, model and routing inputs) is within ``threshold`` cosine similarity of this one."""

    embedder: str = Field(
        default="e5",
        description="an embedding back-end registered by a plugin (`register_embedders`): the classify plugin's "
        "`e5` (pip install 'llm-router-classify[e5]')",
    )
    threshold: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.98,
        description="cosine similarity for a hit (0.98: about 1 % false hits for e5 on MRPC); pick it with "
        "`llm-router calibrate cache`",
    )
    always: bool = Field(
        default=False,
        description="look every request up semantically; off: only requests that opt in (router.cache.semantic)",
    )
    max_entries: Annotated[int, Field(gt=0)] = Field(default=100_000, description="oldest entries go first")
    max_chars: Annotated[int, Field(gt=0)] = Field(default=2000, description="characters of the prompt embedded")
    threads: Annotated[int, Field(ge=1)] = 1


class CachePolicy(_Strict):
    """``cache:``: answers kept and replayed for repeated requests. Off unless ``exact`` or ``semantic`` is set."""

    exact: bool = Field(default=False, description="answer a request identical to an earlier one from the cache")
    semantic: SemanticCachePolicy | None = Field(
        default=None, description="answer a paraphrase of an earlier prompt from the cache (opt-in per request)"
    )
    ttl_s: Annotated[float, Field(gt=0)] = Field(default=3600, description="seconds an answer is kept")
    scope: Literal["key", "policy"] = Field(
        default="key", description="key: each gateway key has its own entries; policy: every caller shares them"
    )
    backend: Literal["memory", "redis"] = Field(
        default="memory", description="memory: an LRU in this process; redis: shared by every gateway instance"
    )
    url: str | None = Field(default=None, description="redis://host:port/db for backend: redis")
    max_bytes: Annotated[int, Field(gt=0)] = Field(
        default=256 * 1024 * 1024, description="memory back-end: the LRU's bound, in bytes of stored answers"
    )
    namespace: str = Field(default="llm-router:cache", min_length=1, description="redis key prefix")

    @model_validator(mode="after")
    def _url(self) -> CachePolicy:
        if self.backend == "redis" and not self.url:
            raise ValueError("backend: redis needs url (for example redis://127.0.0.1:6379/0)")
        if self.url is not None and not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("url must start with redis://, rediss:// or unix://")
        return self

    @property
    def enabled(self) -> bool:
        return self.exact or self.semantic is not None
