"""Embed the router in your own async app with the API the CLI and the gateway use.

Run:  python examples/embed_app.py

It needs no key and no network: a tiny in-process provider (``Echo``, registered with ``plugins=[...]``)
stands in for a real one. With a real provider plugin installed, drop ``plugins=`` and name it in the
policy instead (``providers: {openai: {}}``).

The steps a face takes for each request:

1. ``router.build_request(...)``: the prompt, preferences and constraints as a validated ``RouteRequest``
   (``ConfigurationError("invalid request: …")`` for an empty prompt, infinite weights, …);
2. ``await router.adecide(request, for_execution=True)``: the ``RoutingDecision`` (rank, reasons);
3. ``await router.aexecute(request, decision)``: call the winner with retries and fallbacks, or
   ``router.open_stream(request, decision)`` for a stream, whose ``settlement()`` says what it cost however
   it ended (completed, failed midway, abandoned).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

import anyio
import llm_router
from llm_router import (
    CompletionRequest,
    CompletionResponse,
    NoCandidatesError,
    Router,
    StreamChunk,
    Usage,
)
from llm_router.errors import ConfigurationError

POLICY = {
    "providers": {"echo": {}},
    "models": [
        {
            "id": "echo/small",
            "price": {"input_per_mtok": 0.1, "output_per_mtok": 0.4},
            "context_window": 8192,
            "max_output_tokens": 1024,
            "quality": {"chat": 0.6, "code": 0.5},
        },
        {
            "id": "echo/large",
            "price": {"input_per_mtok": 2.0, "output_per_mtok": 8.0},
            "context_window": 128000,
            "max_output_tokens": 8192,
            "quality": {"chat": 0.9, "code": 0.95},
        },
    ],
    "classify": [{"rules": {}}],
    "preferences": {"quality": 0.6, "cost": 0.4},
}


class Echo(llm_router.Provider):
    """Answers with the last user message, word by word when streamed (a stand-in for a real provider)."""

    name = "echo"

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        text = f"[{request.model}] {request.messages[-1].text()}"
        return CompletionResponse(text=text, model=request.model, usage=Usage(input_tokens=12, output_tokens=6))

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamChunk]:
        for word in f"[{request.model}] {request.messages[-1].text()}".split():
            yield StreamChunk(text=word + " ")
        yield StreamChunk(finish_reason="stop", usage=Usage(input_tokens=12, output_tokens=6))


class EchoPlugin:
    @llm_router.hookimpl
    def register_providers(self, register: Callable[[type[llm_router.Provider]], None]) -> None:
        register(Echo)


async def handle(router: Router, prompt: str, *, stream: bool = False) -> None:
    """What a face does with one request."""
    request = router.build_request(prompt, preferences={"cost": 0.8}, stream=stream)
    decision = await router.adecide(request, for_execution=True)
    print(f"{prompt!r}: {decision.explain()}")
    if not stream:
        result = await router.aexecute(request, decision)
        print(f"  answer: {result.response.text!r}  cost ${result.cost:.8f}, {len(result.attempts)} attempt(s)")
        return
    async with router.open_stream(request, decision) as routed:
        text = "".join([chunk.text async for chunk in routed])
    settled = routed.settlement()
    model = settled.model.id if settled.model else "-"
    print(f"  streamed: {text.strip()!r}  by {model}, cost ${settled.cost:.8f}, completed {settled.completed}")


async def main(prompts: Sequence[str] = ("Write a Python function to sort a list", "hello there")) -> None:
    async with Router(POLICY, plugins=[EchoPlugin()]) as router:
        for prompt in prompts:
            await handle(router, prompt)
        await handle(router, "Tell me a story about a lighthouse", stream=True)
        try:
            router.build_request("   ")
        except ConfigurationError as exc:
            print(f"refused: {exc}")
        try:
            await router.adecide(router.build_request("hello", constraints={"max_cost_per_request": 0}))
        except NoCandidatesError as exc:
            print(f"no candidate: {len(exc.rejected)} models rejected, e.g. {exc.rejected[0].reason}")


if __name__ == "__main__":
    anyio.run(main)
