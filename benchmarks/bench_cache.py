"""The response cache's own costs, in process, pinned to one core:

- semantic index lookup (random-projection pre-selection + exact cosine of the best 64) among N entries of 384
  dimensions (the e5 back-end's size), all in ONE context (the worst case: every entry is a candidate), and
  spread over 1,000 contexts; the embedding itself is not included (it is the back-end's cost: ~20-30 ms for e5);
- exact cache: building the key of a chat request and a memory-LRU lookup + store.

    python benchmarks/bench_cache.py [--entries 100000] [--queries 2000]

Lookup times are this process's CPU time per lookup (a shared, loaded machine inflates wall time, not CPU).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import time

# one BLAS thread: the index's products are small, and several threads only contend (pinned to one core here)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_semantic(entries: int, queries: int, contexts: int) -> tuple[float, float, float]:
    import numpy as np
    from llm_router.cache.semantic import SemanticIndex

    rng = np.random.default_rng(0)
    index = SemanticIndex(entries)
    names = [hashlib.blake2b(str(i).encode(), digest_size=20).hexdigest() for i in range(contexts)]  # as keys.py
    vecs = rng.standard_normal((entries, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    for i in range(entries):
        index.add(names[i % contexts], vecs[i], b"payload", 3600)
    times, found = [], 0
    for _ in range(queries):
        target = int(rng.integers(entries))
        query = vecs[target] + 0.01 * rng.standard_normal(384).astype(np.float32)
        query /= np.linalg.norm(query)
        t0 = time.process_time()
        hit = index.search(names[target % contexts], query, 0.9)
        times.append((time.process_time() - t0) * 1000)
        found += hit is not None
    return statistics.median(times), percentile(times, 0.99), found / queries


def bench_exact(n: int) -> tuple[float, float]:
    import anyio
    from llm_router.cache.backends import MemoryBackend
    from llm_router.cache.keys import exact_key
    from llm_router.types import RouteRequest

    requests = [
        RouteRequest.model_validate(
            {
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Question {i}?"}],
                "max_tokens": 200,
                "metadata": {"request_id": str(i)},
            }
        )
        for i in range(n)
    ]
    t0 = time.perf_counter()
    keys = [exact_key(r) for r in requests]
    key_us = (time.perf_counter() - t0) / n * 1e6
    backend = MemoryBackend(256 * 1024 * 1024)
    value = b"x" * 400

    async def go() -> float:
        t = time.perf_counter()
        for k in keys:
            if await backend.get(k) is None:
                await backend.set(k, value, 3600)
        return (time.perf_counter() - t) / n * 1e6

    return key_us, anyio.run(go)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    for contexts in (1, 1000):
        p50, p99, found = bench_semantic(args.entries, args.queries, contexts)
        print(
            f"semantic lookup, {args.entries:,} entries of 384 dims in {contexts:,} context(s): "
            f"p50 {p50:.3f} ms, p99 {p99:.3f} ms (nearest found {found:.1%})"
        )
    key_us, lru_us = bench_exact(20_000)
    print(f"exact cache: key {key_us:.1f} µs; memory LRU lookup + store on a miss {lru_us:.1f} µs")


if __name__ == "__main__":
    main()
