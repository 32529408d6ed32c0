"""Fake OpenAI API (also what openai_compatible hosts speak): chat completions and embeddings.

Wire format per the OpenAI API reference: ``POST /v1/chat/completions`` returns a ``chat.completion`` object
with ``usage``; with ``stream: true`` it sends ``chat.completion.chunk`` SSE events, a final chunk with empty
``choices`` and ``usage`` when ``stream_options.include_usage`` is set, then ``data: [DONE]``. Errors are
``{"error": {"message", "type", "param", "code"}}`` with ``x-request-id`` and, on 429, ``retry-after``.
"""

from __future__ import annotations

import base64
import struct
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .base import FakeUpstream, Recorded, Script, split_text, sse

ERRORS: dict[str, tuple[int, str, str | None, str]] = {
    "rate_limit": (
        429,
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again later.",
    ),
    "auth": (401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    # what api.openai.com says: the key it was sent, masked but for its first 3 and last 4 characters
    "auth_echo": (
        401,
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: {masked}. You can find your API key at https://platform.openai.com/account/api-keys.",
    ),
    "context_length": (
        400,
        "invalid_request_error",
        "context_length_exceeded",
        "This model's maximum context length is 128000 tokens. However, your messages resulted "
        "in 200000 tokens. Please reduce the length of the messages.",
    ),
    "server": (500, "server_error", None, "The server had an error while processing your request."),
    "overloaded": (503, "server_error", None, "The engine is currently overloaded, please try again later."),
}


class FakeOpenAI(FakeUpstream):
    name = "openai"
    base_path = "/v1"

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/v1/embeddings", self.embeddings, methods=["POST"]),
        ]

    def error(self, script: Script, request_id: str, rec: Recorded | None = None) -> Response:
        status, type_, code, message = ERRORS[script.error]
        if "{masked}" in message:
            key = (rec.headers.get("authorization", "") if rec else "").removeprefix("Bearer ")
            message = message.format(masked=key[:3] + "*" * max(0, len(key) - 7) + key[-4:])
        body = {
            "error": {
                "message": message,
                "type": type_,
                "param": "messages" if code == "context_length_exceeded" else None,
                "code": code,
            }
        }
        return self.json(body, request_id, status, self.error_headers(script))

    async def chat(self, request: Request) -> Response:
        rec = await self.record(request)
        script = await self.next_script(request)
        request_id = self.new_request_id()
        if script.kind == "error":
            return self.error(script, request_id, rec)
        body = rec.json or {}
        model = body.get("model", "gpt-4o-mini")
        cid = f"chatcmpl-{request_id[4:]}"
        created = int(time.time())
        prompt_tokens, completion_tokens = script.usage
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        tool_calls = [
            {"id": t["id"], "type": "function", "function": {"name": t["name"], "arguments": t["arguments"]}}
            for t in script.tool_calls
        ]
        finish = script.finish_reason or ("tool_calls" if tool_calls else "stop")
        if not body.get("stream"):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": script.text if script.text else None,
                "refusal": None,
            }
            if tool_calls:
                message["tool_calls"] = tool_calls
            return self.json(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                    "usage": usage,
                    "system_fingerprint": "fp_fake",
                },
                request_id,
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            data: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                data["usage"] = None
            return sse(data)

        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        if script.text:
            events += [chunk({"content": part}) for part in split_text(script.text)]
        for i, call in enumerate(tool_calls):
            events.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": i,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            )
            events.append(
                chunk({"tool_calls": [{"index": i, "function": {"arguments": call["function"]["arguments"]}}]})
            )
        events.append(chunk({}, finish))
        if include_usage:
            events.append(
                sse(
                    {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "system_fingerprint": "fp_fake",
                        "choices": [],
                        "usage": usage,
                    }
                )
            )
        events.append(sse("[DONE]"))
        return self.event_stream(events, request_id, script.chunk_delay_s)

    async def embeddings(self, request: Request) -> Response:
        rec = await self.record(request)
        script = await self.next_script(request)
        request_id = self.new_request_id()
        if script.kind == "error":
            return self.error(script, request_id, rec)
        body = rec.json or {}
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        data = []
        for i, text in enumerate(texts):
            vector = fake_vector(text)
            if body.get("encoding_format") == "base64":
                encoded: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            else:
                encoded = vector
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        tokens = sum(len(t.split()) for t in texts)
        return self.json(
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
            request_id,
        )


def fake_vector(text: str, dims: int = 4) -> list[float]:
    """A deterministic small vector for ``text`` (exactly representable as float32)."""
    return [float((len(text) + i) % 7) / 4 for i in range(dims)]
