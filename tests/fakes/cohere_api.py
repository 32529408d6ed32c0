"""Fake Cohere v2 API: ``POST /v2/chat`` and ``POST /v2/embed``.

Per the API reference: a chat response has ``id``, ``finish_reason`` (COMPLETE, MAX_TOKENS, STOP_SEQUENCE,
TOOL_CALL), ``message`` {role, content: [{type: text, text}], tool_calls} and ``usage`` {billed_units,
tokens}. Streaming (``stream: true``) sends SSE events message-start, content-start, content-delta,
content-end, tool-call-start / -delta / -end, and message-end carrying finish_reason and usage. Errors are
``{"message": ...}`` with the HTTP status.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .base import FakeUpstream, Script, split_text, sse
from .openai_api import fake_vector

ERRORS: dict[str, tuple[int, str]] = {
    "rate_limit": (429, "You are using a Trial key, which is limited to 10 API calls / minute."),
    "auth": (401, "invalid api token"),
    "context_length": (
        400,
        "too many tokens: size limit exceeded by 12000 tokens. Try using shorter or fewer "
        "inputs, or setting prompt_truncation='AUTO'.",
    ),
    "server": (500, "internal server error, this has been reported to our developers"),
    "overloaded": (503, "service unavailable"),
}


class FakeCohere(FakeUpstream):
    name = "cohere"

    def routes(self) -> list[Route]:
        return [
            Route("/v2/chat", self.chat, methods=["POST"]),
            Route("/v2/embed", self.embed, methods=["POST"]),
        ]

    def error(self, script: Script, request_id: str) -> Response:
        status, message = ERRORS[script.error]
        return self.json({"id": request_id, "message": message}, request_id, status, self.error_headers(script))

    async def chat(self, request: Request) -> Response:
        rec = await self.record(request)
        script = await self.next_script(request)
        request_id = self.new_request_id()
        if script.kind == "error":
            return self.error(script, request_id)
        body = rec.json or {}
        input_tokens, output_tokens = script.usage
        usage = {
            "billed_units": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            "tokens": {"input_tokens": input_tokens + 200, "output_tokens": output_tokens},
        }
        tool_calls = [
            {"id": t["id"], "type": "function", "function": {"name": t["name"], "arguments": t["arguments"]}}
            for t in script.tool_calls
        ]
        finish = script.finish_reason or ("TOOL_CALL" if tool_calls else "COMPLETE")
        if not body.get("stream"):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": [{"type": "text", "text": script.text}] if script.text else [],
            }
            if tool_calls:
                message["tool_calls"] = tool_calls
                message["tool_plan"] = "I will call the tool."
            return self.json(
                {"id": request_id, "finish_reason": finish, "message": message, "usage": usage}, request_id
            )
        events = [
            sse(
                {
                    "id": request_id,
                    "type": "message-start",
                    "delta": {
                        "message": {
                            "role": "assistant",
                            "content": [],
                            "tool_plan": "",
                            "tool_calls": [],
                            "citations": [],
                        }
                    },
                },
                "message-start",
            )
        ]
        if script.text:
            events.append(
                sse(
                    {
                        "type": "content-start",
                        "index": 0,
                        "delta": {"message": {"content": {"type": "text", "text": ""}}},
                    },
                    "content-start",
                )
            )
            events += [
                sse(
                    {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": part}}}},
                    "content-delta",
                )
                for part in split_text(script.text)
            ]
            events.append(sse({"type": "content-end", "index": 0}, "content-end"))
        for i, call in enumerate(tool_calls):
            events.append(
                sse(
                    {
                        "type": "tool-call-start",
                        "index": i,
                        "delta": {
                            "message": {
                                "tool_calls": {
                                    "id": call["id"],
                                    "type": "function",
                                    "function": {"name": call["function"]["name"], "arguments": ""},
                                }
                            }
                        },
                    },
                    "tool-call-start",
                )
            )
            events.append(
                sse(
                    {
                        "type": "tool-call-delta",
                        "index": i,
                        "delta": {
                            "message": {"tool_calls": {"function": {"arguments": call["function"]["arguments"]}}}
                        },
                    },
                    "tool-call-delta",
                )
            )
            events.append(sse({"type": "tool-call-end", "index": i}, "tool-call-end"))
        events.append(sse({"type": "message-end", "delta": {"finish_reason": finish, "usage": usage}}, "message-end"))
        return self.event_stream(events, request_id, script.chunk_delay_s)

    async def embed(self, request: Request) -> Response:
        rec = await self.record(request)
        script = await self.next_script(request)
        request_id = self.new_request_id()
        if script.kind == "error":
            return self.error(script, request_id)
        body = rec.json or {}
        texts = list(body.get("texts") or [])
        return self.json(
            {
                "id": request_id,
                "texts": texts,
                "response_type": "embeddings_by_type",
                "embeddings": {"float": [fake_vector(t) for t in texts]},
                "meta": {
                    "api_version": {"version": "2"},
                    "billed_units": {"input_tokens": sum(len(t.split()) for t in texts)},
                },
            },
            request_id,
        )
