"""Where exact-cache entries live: an in-process LRU bounded in bytes (default), or Redis (shared).

Both store opaque bytes under a key with a time to live. Redis is reached with the ``redis`` package's asyncio
client (``pip install 'llm-router[cache-redis]'``), imported only when that back-end is configured.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Protocol

__all__ = ["CacheBackend", "MemoryBackend", "RedisBackend", "make_backend"]

ENTRY_OVERHEAD = 120
"""Bytes counted per entry besides its key and value (the dictionary slot, the tuple, the float)."""


class CacheBackend(Protocol):
    """Bytes by key, each with a time to live."""

    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def count(self, hit: bool) -> None:
        """Count a lookup (shared counters where the back-end is shared)."""

    async def stats(self) -> dict[str, Any]: ...

    async def clear(self) -> int:
        """Remove every entry; return how many there were."""

    async def aclose(self) -> None: ...


class MemoryBackend:
    """An LRU of this process, bounded by ``max_bytes`` (keys, values and a fixed overhead per entry)."""

    name = "memory"

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def get_now(self, key: str, now: float) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= now:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    def set_now(self, key: str, value: bytes, ttl_s: float, now: float) -> None:
        size = len(key) + len(value) + ENTRY_OVERHEAD
        if size > self.max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (now + ttl_s, value)
        self.bytes += size
        while self.bytes > self.max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)
            self.evictions += 1

    def _drop(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self.bytes -= len(key) + len(value) + ENTRY_OVERHEAD

    async def get(self, key: str) -> bytes | None:
        return self.get_now(key, time.monotonic())

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        self.set_now(key, value, ttl_s, time.monotonic())

    async def count(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1

    async def stats(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "entries": len(self._entries),
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
        }

    async def clear(self) -> int:
        n = len(self._entries)
        self._entries.clear()
        self.bytes = 0
        return n

    async def aclose(self) -> None:
        return None


class RedisBackend:
    """Entries in Redis under ``<namespace>:e:<key>`` with Redis's own expiry; lookups counted in the hash
    ``<namespace>:stats`` (shared by every instance)."""

    name = "redis"

    def __init__(self, url: str, namespace: str) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:
            raise ImportError(
                "cache backend redis needs the redis package: pip install 'llm-router[cache-redis]'"
            ) from exc
        self.url = url
        self.namespace = namespace
        self._client: Any = aioredis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)

    def _key(self, key: str) -> str:
        return f"{self.namespace}:e:{key}"

    async def get(self, key: str) -> bytes | None:
        value = await self._client.get(self._key(key))
        return bytes(value) if value is not None else None

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        await self._client.set(self._key(key), value, px=max(1, int(ttl_s * 1000)))

    async def count(self, hit: bool) -> None:
        await self._client.hincrby(f"{self.namespace}:stats", "hits" if hit else "misses", 1)

    async def _keys(self) -> list[bytes]:
        return [k async for k in self._client.scan_iter(match=f"{self.namespace}:e:*", count=1000)]

    async def stats(self) -> dict[str, Any]:
        counters = await self._client.hgetall(f"{self.namespace}:stats")
        keys = await self._keys()
        size = 0
        for i in range(0, len(keys), 500):
            async with self._client.pipeline(transaction=False) as pipe:
                for k in keys[i : i + 500]:
                    pipe.strlen(k)
                size += sum(int(n) for n in await pipe.execute())
        return {
            "backend": self.name,
            "url": _redact(self.url),
            "entries": len(keys),
            "bytes": size,
            "hits": int(counters.get(b"hits", 0)),
            "misses": int(counters.get(b"misses", 0)),
        }

    async def clear(self) -> int:
        keys = await self._keys()
        for i in range(0, len(keys), 500):
            await self._client.unlink(*keys[i : i + 500])
        await self._client.delete(f"{self.namespace}:stats")
        return len(keys)

    async def aclose(self) -> None:
        await self._client.aclose()


def _redact(url: str) -> str:
    """``url`` without its password (``redis://:secret@host`` → ``redis://:***@host``)."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    user, colon, _ = creds.partition(":")
    return f"{scheme}{sep}{user}{':***' if colon else ''}@{host}"


def make_backend(backend: str, *, url: str | None, namespace: str, max_bytes: int) -> CacheBackend:
    if backend == "redis":
        assert url is not None
        return RedisBackend(url, namespace)
    return MemoryBackend(max_bytes)
