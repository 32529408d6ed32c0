"""Fake Anthropic Messages API.

Per the API reference: ``POST /v1/messages`` returns a ``message`` with ``content`` blocks (``text``,
``tool_use``), ``stop_reason`` and ``usage`` ({input_tokens, output_tokens}); the ``request-id`` header names
the request. Streaming sends ``message_start``, ``content_block_start``, ``ping``, ``content_block_delta``
(``text_delta`` / ``input_json_delta``), ``content_block_stop``, ``message_delta`` (stop_reason, output
usage) and ``message_stop``. Errors are ``{"type": "error", "error": {"type", "message"}, "request_id"}``;
overload is HTTP 529 ``overloaded_error``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .base import FakeUpstream, split_text, sse

ERRORS: dict[str, tuple[int, str, str]] = {
    "rate_limit": (
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit",
    ),
    "auth": (401, "authentication_error", "invalid x-api-key"),
    "context_length": (400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
    "server": (500, "api_error", "Internal server error"),
    "overloaded": (529, "overloaded_error", "Overloaded"),
}


class FakeAnthropic(FakeUpstream):
    name = "anthropic"
    request_id_header = "request-id"

    def routes(self) -> list[Route]:
        return [Route("/v1/messages", self.messages, methods=["POST"])]

    async def messages(self, request: Request) -> Response:
        rec = await self.record(request)
        script = await self.next_script(request)
        request_id = self.new_request_id()
        if script.kind == "error":
            status, type_, message = ERRORS[script.error]
            return self.json(
                {"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id},
                request_id,
                status,
                self.error_headers(script),
            )
        body = rec.json or {}
        model = body.get("model", "claude-haiku-4-5")
        msg_id = f"msg_{request_id[4:]}"
        input_tokens, output_tokens = script.usage
        blocks: list[dict[str, Any]] = []
        if script.text:
            blocks.append({"type": "text", "text": script.text})
        for call in script.tool_calls:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call["id"],
                    "name": call["name"],
                    "input": json.loads(call["arguments"] or "{}"),
                }
            )
        stop = script.finish_reason or ("tool_use" if script.tool_calls else "end_turn")
        if not body.get("stream"):
            return self.json(
                {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": blocks,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
                },
                request_id,
            )
        events = [
            sse(
                {
                    "type": "message_start",
                    "message": {
                        "id": msg_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
                    },
                },
                "message_start",
            )
        ]
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                events.append(
                    sse(
                        {
                            "type": "content_block_start",
                            "index": index,
                            "content_block": {"type": "text", "text": ""},
                        },
                        "content_block_start",
                    )
                )
                if index == 0:
                    events.append(sse({"type": "ping"}, "ping"))
                events += [
                    sse(
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "text_delta", "text": part},
                        },
                        "content_block_delta",
                    )
                    for part in split_text(block["text"])
                ]
            else:
                events.append(
                    sse(
                        {
                            "type": "content_block_start",
                            "index": index,
                            "content_block": {
                                "type": "tool_use",
                                "id": block["id"],
                                "name": block["name"],
                                "input": {},
                            },
                        },
                        "content_block_start",
                    )
                )
                arguments = json.dumps(block["input"])
                half = len(arguments) // 2
                for part in (arguments[:half], arguments[half:]):
                    events.append(
                        sse(
                            {
                                "type": "content_block_delta",
                                "index": index,
                                "delta": {"type": "input_json_delta", "partial_json": part},
                            },
                            "content_block_delta",
                        )
                    )
            events.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        events.append(
            sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": output_tokens},
                },
                "message_delta",
            )
        )
        events.append(sse({"type": "message_stop"}, "message_stop"))
        return self.event_stream(events, request_id, script.chunk_delay_s)
