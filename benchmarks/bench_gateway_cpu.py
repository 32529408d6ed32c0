"""CPU per gateway request, in process, without a network: the app is called as ASGI with a provider that
answers at once, so the figure is the gateway's own work (parsing and validating the OpenAI request, the
routing decision, the call's bookkeeping, the answer and its headers, the ledger row, the metrics).

    python benchmarks/bench_gateway_cpu.py [--requests 20000] [--profile]

Pinned to one core when the OS allows. The ledger is written (to a temporary file) by its thread as in
production. Complements bench_gateway.py, which measures the whole server under wrk.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

POLICY = """
providers:
  upstream: {type: instant}
models:
  - id: upstream/fake-model
    price: {input_per_mtok: 0.15, output_per_mtok: 0.6}
    context_window: 128000
    max_output_tokens: 16384
    quality: {summarization: 0.8, chat: 0.8}
classify: [rules]
fallback: {retries: 0}
"""
PROMPT = "Summarise this paragraph in one sentence: the quick brown fox jumps over the lazy dog."


def instant_plugin() -> Any:
    import llm_router
    from llm_router.types import CompletionRequest, CompletionResponse, Usage

    class InstantProvider(llm_router.Provider):
        """Answers at once (benchmark scaffolding: no I/O)."""

        name = "instant"

        async def complete(self, request: CompletionRequest) -> CompletionResponse:
            return CompletionResponse(
                text="A fox jumps over a dog.",
                model=request.model,
                finish_reason="stop",
                usage=Usage(input_tokens=25, output_tokens=8),
                request_id="req-1",
            )

    class Plugin:
        @llm_router.hookimpl
        def register_providers(self, register: Any) -> None:
            register(InstantProvider)

    return Plugin()


def scope_for(app: Any, length: int) -> dict[str, Any]:
    """The ASGI scope of a POST /v1/chat/completions with a JSON body of ``length`` bytes."""
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(length).encode())],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "app": app,
    }


async def one(app: Any, body: bytes) -> None:
    """One chat completion request through the ASGI app; exits unless it answers 200."""
    import anyio

    done = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope_for(app, len(body)), receive, send)
    if status != 200:
        raise SystemExit(f"the gateway answered {status}")


def run_loop(bench: Callable[[], Awaitable[None]]) -> None:
    """Run ``bench`` on uvloop (the gateway's loop under ``serve``) when it is installed, else on asyncio."""
    import anyio

    try:
        import uvloop  # noqa: F401
    except ImportError:
        anyio.run(bench)
    else:
        anyio.run(bench, backend_options={"use_uvloop": True})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="also print the top functions (cProfile)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})

    from llm_router import Router
    from llm_router.gateway import create_app

    workdir = Path(tempfile.mkdtemp(prefix="bench-gateway-cpu-"))
    (workdir / "policy.yaml").write_text(POLICY)
    router = Router(workdir / "policy.yaml", plugins=[instant_plugin()])
    app = create_app(router, ledger_path=workdir / "usage.sqlite3")
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": PROMPT}]}).encode()

    async def run(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            await one(app, body)
        return time.perf_counter() - t0

    async def bench() -> None:
        async with app.router.lifespan_context(app):
            await run(args.warmup)
            seconds = await run(args.requests)
            print(
                f"gateway CPU per request (in process, instant provider): {seconds / args.requests * 1e6:.1f} µs "
                f"over {args.requests} requests"
            )
            if args.profile:
                import cProfile
                import pstats

                profiler = cProfile.Profile()
                profiler.enable()
                await run(min(args.requests, 5000))
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(25)

    run_loop(bench)


if __name__ == "__main__":
    main()
