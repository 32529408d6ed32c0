"""How far two router instances together exceed a deployment's rpm, with its window in each process
(``state: memory``) and shared on Redis (``state: {backend: redis}``), side by side in one run.

A model is served by two deployments: ``eu`` with ``rpm: --rpm`` and ``us`` without a limit. Two routers
(two instances of a fleet, each its own state) send ``--requests`` calls in all, ``--concurrency`` at a time
each, every call taking ``--call-ms``; the test plugin's scripted provider answers (no network). Prints, per
backend, how many calls reached ``eu`` within the minute against its rpm. Redis is a real ``redis-server`` on
a free port (tests/services.py). Needs the test plugin installed (the ``tests`` nox venv has it):

    nox -s tests --install-only && .nox/tests/bin/python benchmarks/bench_deployment_fleet.py
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from deployed_policy import deployed_policy
from llm_router import Router
from services import redis_server


async def burst(routers: list[Router], requests: int, concurrency: int) -> dict[str, int]:
    """``requests`` calls spread over ``routers``, ``concurrency`` in flight per router; calls per deployment."""
    counts: dict[str, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)

    async def worker(router: Router) -> None:
        while not queue.empty():
            queue.get_nowait()
            result = await router.aroute_and_execute("hello")
            name = result.attempts[-1].deployment or "?"
            counts[name] = counts.get(name, 0) + 1

    await asyncio.gather(*(worker(r) for r in routers for _ in range(concurrency)))
    return counts


async def run(state: str, args: argparse.Namespace, tmp: Path) -> dict[str, int]:
    routers = []
    for i in range(2):
        path = tmp / f"{'redis' if state else 'memory'}-{i}.yaml"
        path.write_text(deployed_policy(eu=f", rpm: {args.rpm}", extra=state))
        router = Router(path)
        await router.awarm_up()
        routers.append(router)
    try:
        return await burst(routers, args.requests, args.concurrency)
    finally:
        for router in routers:
            await router.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rpm", type=int, default=100)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--call-ms", type=float, default=20.0)
    parser.add_argument("--refresh-ms", type=float, default=250.0)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the test plugins' start-up warnings
    from llm_router_test_plugin import plugin as tp

    with tempfile.TemporaryDirectory() as tmp, redis_server() as redis:
        print(f"two routers, {args.requests} calls, {args.concurrency} in flight each, {args.call_ms:g} ms a call")
        print(f"deployment eu: rpm {args.rpm}; us: no limit")
        for label, state in (
            ("memory (per process)", ""),
            (
                f"redis (shared, refresh {args.refresh_ms:g} ms)",
                f"state: {{backend: redis, url: '{redis.url}', refresh_ms: {args.refresh_ms}}}",
            ),
        ):
            tp.SCRIPTS.clear()
            tp.SCRIPTS["eu"] = tp.SCRIPTS["us"] = [f"stall:{args.call_ms / 1000}"]
            counts = asyncio.run(run(state, args, Path(tmp)))
            eu = counts.get("eu/small", 0)
            us = counts.get("us/small", 0)
            print(f"{label:<36} calls to eu {eu:>4} (rpm {args.rpm}: {eu / args.rpm:.2f}x), to us {us}")


if __name__ == "__main__":
    main()
