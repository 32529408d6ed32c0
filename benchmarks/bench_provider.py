"""Time per call of the OpenAI provider plugin against a fast local upstream, by HTTP client.

    python benchmarks/bench_provider.py [--calls 2000]

Starts the gateway benchmark's fake OpenAI upstream (pinned to CPU 1), pins itself to CPU 0, and times
sequential `complete()` calls of `openai_compatible` with `http_client: aiohttp` and `http_client: httpx`,
after 200 warm-up calls each. Needs the plugin `llm-router-provider-openai` and uvloop installed.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def per_call_us(base_url: str, client: str, calls: int) -> float:
    from llm_router.testing import make_provider, request_for
    from llm_router_openai import OpenAICompatibleProvider

    provider = make_provider(OpenAICompatibleProvider, {"base_url": base_url, "api_key": "x", "http_client": client})
    request = request_for("fake-model")
    try:
        for _ in range(200):
            await provider.complete(request)
        t0 = time.perf_counter()
        for _ in range(calls):
            await provider.complete(request)
        return (time.perf_counter() - t0) / calls * 1e6
    finally:
        await provider.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    args = ap.parse_args()
    port = free_port()
    upstream = subprocess.Popen(
        ["taskset", "-c", "1", sys.executable, str(HERE / "bench_gateway.py"), "_upstream", str(port)]
    )
    try:
        time.sleep(2)
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {0})
        import uvloop

        for client in ("aiohttp", "httpx"):
            us = uvloop.run(per_call_us(f"http://127.0.0.1:{port}/v1", client, args.calls))
            print(f"openai_compatible complete(), http_client={client}: {us:.0f} µs per call ({args.calls} calls)")
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)


if __name__ == "__main__":
    main()
