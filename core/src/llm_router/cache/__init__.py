"""Response caching: exact (in-process LRU or Redis) and semantic (embeddings from a plugin).

Configured by the policy's ``cache:`` section (:class:`CachePolicy`), controlled per request by
:class:`~llm_router.types.CacheOptions`; the executor looks requests up and stores answers
(:class:`ResponseCache`). See docs/cache.md.
"""

from .config import CachePolicy, SemanticCachePolicy

__all__ = ["CachePolicy", "SemanticCachePolicy"]
